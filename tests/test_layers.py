"""The layers of docs/architecture.md §1: the library ``bts/`` imports nothing from ``datasets/`` or ``evaluation/``.

Every file under ``bts/`` is parsed with ``ast`` and every import in it is looked at, at module level and inside
functions, classes and ``if`` blocks (``import x``, ``from x import y``, and ``importlib.import_module("x")`` /
``__import__("x")`` with a literal name).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "bts"
FORBIDDEN = ("datasets", "evaluation", "scripts")

# The applications (command lines, subprocess drivers, reports) live in scripts/, above the library.
SCRIPTS = REPO / "scripts"


def _imported_names(node: ast.AST) -> list[str]:
    """The absolute module names an AST node imports (none for relative imports, which stay inside ``bts``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in ("import_module", "__import__"):
            return [node.args[0].value]
    return []


def forbidden_imports(path: Path, shown_as: str) -> list[str]:
    """``"<shown_as>:<line>: <module>"`` for every import of a ``datasets`` or ``evaluation`` module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        for name in _imported_names(node):
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"{shown_as}:{node.lineno}: {name}")
    return sorted(found, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def library_files() -> dict[str, Path]:
    return {p.relative_to(REPO).as_posix(): p for p in sorted(LIBRARY.rglob("*.py"))}


def test_the_library_imports_neither_datasets_nor_evaluation():
    files = library_files()
    assert len(files) > 50 and "bts/training/engine.py" in files  # the walk really sees the package
    found = [hit for name, path in files.items() for hit in forbidden_imports(path, name)]
    assert not found, ("bts/ is the library and may import only bts/ (docs/architecture.md §1); move these imports "
                       "out or hand the objects in from an entry point:\n" + "\n".join(found))


def test_no_application_lives_in_the_library():
    """Command-line modules are applications: they belong in scripts/, and the check sees what they import."""
    mains = [name for name, path in library_files().items() if "__main__" in path.read_text(encoding="utf-8")
             or "argparse" in path.read_text(encoding="utf-8")]
    assert not mains, f"command-line modules inside bts/ (move them to scripts/): {mains}"
    demo = SCRIPTS / "demo.py"
    found = forbidden_imports(demo, "scripts/demo.py")
    assert any(hit.endswith(": datasets.factory") for hit in found), found


def test_the_check_catches_module_level_and_lazy_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib\n"
        "import datasets\n"                                   # 2
        "from bts.geometry import rotation_x\n"
        "import datasetsx, numpy as np\n"                     # a different package
        "from . import evaluation\n"                          # relative: bts.evaluation, not the top-level package
        "\n"
        "def f():\n"
        "    from evaluation.metrics import depth_metrics\n"  # 8
        "    return depth_metrics\n"
        "\n"
        "class C:\n"
        "    def g(self):\n"
        "        if True:\n"
        "            import torch, datasets.kitti_360.frames as frames\n"    # 14
        "        return importlib.import_module('evaluation.occupancy')\n"  # 15
        "\n"
        "h = lambda: __import__('datasets.factory')\n",       # 17
        encoding="utf-8",
    )
    assert forbidden_imports(bad, "bad.py") == [
        "bad.py:2: datasets",
        "bad.py:8: evaluation.metrics",
        "bad.py:14: datasets.kitti_360.frames",
        "bad.py:15: evaluation.occupancy",
        "bad.py:17: datasets.factory",
    ]


def test_the_moved_names_stay_importable_from_their_old_places():
    import bts.metrics
    import bts.models.views
    import datasets.kitti_360
    import datasets.kitti_360.frames
    import evaluation.metrics
    from bts.geometry import level_from_camera
    from evaluation.lidar_occupancy import level_transform

    for module in (datasets.kitti_360.frames, datasets.kitti_360):
        assert module.VIEW_SUBSETS is bts.models.views.VIEW_SUBSETS
        assert module.view_subset is bts.models.views.view_subset
    for name in ("DEPTH_METRICS", "depth_metrics", "median_scale_ratio"):
        assert getattr(evaluation.metrics, name) is getattr(bts.metrics, name)
    for pitch in (5.0, -3.25, 0.0):
        assert level_transform(pitch).dtype == level_from_camera(pitch).dtype
        assert level_transform(pitch).numpy().tobytes() == level_from_camera(pitch).numpy().tobytes()


def test_test_modules_do_not_import_each_other():
    """What several test files share is a helper module or a fixture, never another test file or a conftest."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                last = name.rsplit(".", 1)[-1]
                if last.startswith("test_") or last == "conftest":  # also a bare `from test_x import` of a folder
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "\n".join(offenders)
