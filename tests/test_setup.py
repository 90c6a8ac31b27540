"""The set-up files agree with each other and the project's packages are the ones imported."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(p for p in pip if not p.startswith("-e")) == sorted(deps)
    assert not any("tensorflow" in d for d in deps + pip)


def test_datasets_package_is_the_projects_own():
    import datasets

    assert Path(datasets.__file__).resolve().parent == ROOT / "datasets", (
        "the PyPI package 'datasets' shadows the project's datasets/ package; uninstall it from the venv")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test   # the test suite" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
