"""Every citation of the project's documents names a file of ``docs/`` and a section that exists in it.

The convention (docs/architecture.md §6): a numbered heading ``## N. Title`` or ``### N.M Title`` of
``docs/<file>.md`` is section N or N.M, cited as ``docs/<file>.md §N.M``; a range of sections is cited with
both ends (docs/method.md §3.3-3.7); item M of the numbered list directly under section N (lines starting with
``M.``) is cited as ``§N-M`` (docs/method.md §11-4). Sections named right after one file belong to it
(docs/method.md §8.1, §11-10). Inside ``docs/<file>.md`` a section sign without a file name means that file's own
section; anywhere else it must follow a file name. The team's design notes (method, decisions, synthetic_world, ...)
live outside the repository, so they are cited only through the project's own ``docs/`` files.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The names of the team's notes: cited without "docs/" they point outside the repository.
NOTE_NAMES = ("method", "decisions", "synthetic_world", "architecture", "users", "distillation",
              "original_checkpoints")
SUFFIXES = (".py", ".yaml", ".md")

_DOC = r"(?<![\w.-])(?P<path>(?:[\w.-]+/)*(?P<name>[\w-]+)\.md)\b"
_SECTION = r"\u00a7\s?(?P<ref>\d+(?:\.\d+)*(?:-\d+(?:\.\d+)*)?)"
TOKEN = re.compile(f"{_DOC}|{_SECTION}")
# What may stand between a file name and its sections, or between two sections of one file.
GLUE = re.compile(r"(?:[\s,;#*`'\"()]|\band\b|\bor\b)*")
HEADING = re.compile(r"#{2,6}\s+(\d+(?:\.\d+)*)\.?\s")
ITEM = re.compile(r"(\d+)\.\s")


def repo_files() -> list[str]:
    """The files git tracks or would add (tracked plus untracked, not ignored) with a checked suffix."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted({p for p in out.split("\0") if p.endswith(SUFFIXES) and (REPO / p).is_file()})


def outline(text: str) -> dict[str, set[int]]:
    """Numbered sections of a markdown file, each with the numbers of the list items directly under it."""
    sections: dict[str, set[int]] = {}
    current, fenced = None, False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("#"):
            m = HEADING.match(line)
            current = m.group(1) if m else None
            if current is not None:
                sections.setdefault(current, set())
            continue
        m = ITEM.match(line)
        if m and current is not None:
            sections[current].add(int(m.group(1)))
    return sections


def section_problem(ref: str, sections: dict[str, set[int]]) -> str | None:
    """Why ``ref`` (``3.4``, ``3.3-3.7`` or ``11-4``) names nothing in ``sections``; None when it does."""
    if "-" in ref:
        first, last = ref.split("-")
        if "." not in last:  # item `last` of section `first`
            if first not in sections:
                return f"no section {first}"
            if int(last) not in sections[first]:
                return f"section {first} has no numbered item {last}"
            return None
        missing = [s for s in (first, last) if s not in sections]
        return f"no section {', '.join(missing)}" if missing else None
    return None if ref in sections else f"no section {ref}"


def citation_problems(path: str, text: str, outlines: dict[str, dict[str, set[int]] | None]) -> list[str]:
    """Problems of every citation in one file, as ``path:line: ...``."""
    own = path if path.startswith("docs/") and path.endswith(".md") else None
    problems: list[str] = []
    doc, end = None, 0  # the file the next section sign belongs to, and where the last token ended

    def where(pos: int) -> str:
        return f"{path}:{text.count(chr(10), 0, pos) + 1}"

    for m in TOKEN.finditer(text):
        if m.group("path"):
            cited, name = m.group("path"), m.group("name")
            doc, end = None, m.end()
            if name in NOTE_NAMES and cited != f"docs/{name}.md":
                problems.append(f"{where(m.start())}: cites {cited}, which is not in the repository: "
                                f"cite docs/{name}.md (or the docs file that covers it)")
                doc = ""  # its sections are part of this one problem
            elif cited.startswith("docs/"):
                if outlines.setdefault(cited, None) is None and (REPO / cited).is_file():
                    outlines[cited] = outline((REPO / cited).read_text(encoding="utf-8"))
                if outlines[cited] is None:
                    problems.append(f"{where(m.start())}: cites {cited}, which does not exist")
                else:
                    doc = cited
            continue
        chained = doc is not None and GLUE.fullmatch(text, end, m.start())
        end = m.end()
        if chained and doc == "":
            continue
        target = doc if chained else own
        if target is None:
            problems.append(f"{where(m.start())}: \u00a7{m.group('ref')} without the docs/<file>.md it belongs to")
            doc = None
            continue
        doc = target
        if outlines.get(target) is None:
            outlines[target] = outline((REPO / target).read_text(encoding="utf-8"))
        problem = section_problem(m.group("ref"), outlines[target])
        if problem:
            problems.append(f"{where(m.start())}: {target} \u00a7{m.group('ref')}: {problem}")
    return problems


def test_outline_and_references():
    text = "## 3. A\n\n### 3.4 B\n1. one\n\n## 11. C\n1. x\n   2. nested\n4. four\n```\n## 12. in code\n```\n"
    sections = outline(text)
    assert sections == {"3": set(), "3.4": {1}, "11": {1, 4}}
    assert section_problem("3.4", sections) is None and section_problem("11-4", sections) is None
    assert section_problem("3-3.4", sections) is None
    assert section_problem("11-2", sections) == "section 11 has no numbered item 2"
    assert section_problem("12", sections) == "no section 12"


def test_citation_parsing(tmp_path):
    outlines = {"docs/x.md": outline("## 1. A\n### 1.2 B\n## 4. C\n2. item\n")}
    good = "see docs/x.md \u00a71.2, \u00a74-2 and\n    # \u00a71 here"
    assert citation_problems("a.py", good, outlines) == []
    bad = "method.md \u00a71\nsee (\u00a74)\nshared/spec/decisions.md\ndocs/x.md \u00a79\ndocs/none_such.md\n"
    problems = citation_problems("a.py", bad, outlines)
    assert [p.split(": ")[0] for p in problems] == ["a.py:1", "a.py:2", "a.py:3", "a.py:4", "a.py:5"]
    assert citation_problems("docs/x.md", "as in \u00a74-2", outlines) == []


def test_every_citation_resolves():
    outlines: dict[str, dict[str, set[int]] | None] = {}
    problems = []
    for path in repo_files():
        text = (REPO / path).read_text(encoding="utf-8", errors="replace")
        if path == "tests/test_docs.py":  # its tests cite made-up files on purpose: check its docstring only
            text = __doc__
        if "\u00a7" in text or ".md" in text:
            problems += citation_problems(path, text, outlines)
    assert not problems, "citations that do not resolve:\n" + "\n".join(problems)


MACHINE_PATH = re.compile(r"(?:^|[^\w.~])/(?:home|root|work|Users|mnt|scratch)/\w")


def test_no_file_names_a_folder_of_one_machine():
    """Committed files (code, configs, docs, the results under docs/reproduce/) never name a user's or a
    machine's folders: recorded commands use paths relative to the repository (scripts.reproduce.portable_command)."""
    assert MACHINE_PATH.search("checkpoint=/work/main/outputs/x.pt") and MACHINE_PATH.search('"/home/u/x"')
    assert not MACHINE_PATH.search("checkpoint=outputs/x.pt ~/work/x docs/work/x")
    problems = []
    for path in subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                               capture_output=True, check=True).stdout.decode().split("\0"):
        if not path.endswith((".py", ".yaml", ".md", ".json", ".toml", ".txt", ".yml")) or path == "tests/test_docs.py":
            continue
        for number, line in enumerate((REPO / path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                problems.append(f"{path}:{number}: {line.strip()[:120]}")
    assert not problems, "machine-specific paths:\n" + "\n".join(problems)
