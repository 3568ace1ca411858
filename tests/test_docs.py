"""The docs and the code point at each other: every `docs/` path the code cites exists, every section a
comment names (`docs/traps.md, a killed worker`) is a heading there, every file and test the docs name
exists, and nothing cites the notes that lived outside the repository. Plain files, no database."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TRAPS = DOCS / "traps.md"
CITING = [ROOT / "search", ROOT / "project", ROOT / "bench", ROOT / "tests", ROOT / "README.md"]
SKIP_DIRS = {".git", ".venv", "var", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
OLD_NOTES = "HAZARDS" + ".md"  # spelled in two parts so this file does not cite it itself

DOC_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*\w")
SECTION = re.compile(re.escape("docs/traps.md") + r", ([^()\[\]{}.,;:`'\"]+)")
HEADING = re.compile(r"^## (.+?)\s*$", re.M)
# Repository paths the docs name in backticks: `search/services/units.py`, `tests/test_x.py::test_y`.
NAMED_PATH = re.compile(r"`((?:search|project|tests|bench|docs|static|templates|examples)/[\w./-]*)(?:::(\w+))?`")


def _text_files(*places: Path) -> Iterator[Path]:
    for place in places:
        if place.is_file():
            yield place
            continue
        for folder, dirs, files in os.walk(place):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                path = Path(folder, name)
                with path.open("rb") as f:
                    if b"\0" not in f.read(4096):  # text, not a binary file
                        yield path


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _flatten(text: str) -> str:
    """Line breaks (and a `#` that continues a comment) as single spaces, so a citation may wrap."""
    return re.sub(r"[ \t]*\n[ \t]*(?:#[ \t]*)?", " ", text)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_cited_docs_path_exists() -> None:
    cited = {(_rel(path), cite) for path in _text_files(*CITING) for cite in DOC_PATH.findall(_read(path))}
    assert cited, "nothing cites docs/ any more?"
    missing = sorted((where, cite) for where, cite in cited if not (ROOT / cite).exists())
    assert not missing, f"cited but not in the repository: {missing}"


def test_every_cited_section_is_a_heading_of_traps() -> None:
    headings = [h.lower() for h in HEADING.findall(_read(TRAPS))]
    assert len(headings) >= 7, headings
    unknown = []
    for path in _text_files(*CITING):
        for phrase in SECTION.findall(_flatten(_read(path))):
            words = " ".join(phrase.lower().split())
            if not any(words.startswith(h) or (len(words) >= 4 and h.startswith(words)) for h in headings):
                unknown.append((_rel(path), phrase.strip()))
    assert not unknown, f"sections cited but not headings of docs/traps.md: {unknown}"


def _anchor(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule: lower case, punctuation dropped)."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", sorted(p.name for p in DOCS.glob("*.md")))
def test_the_docs_name_only_what_exists(doc: str) -> None:
    text = _read(DOCS / doc)
    anchors = {_anchor(h) for h in HEADING.findall(text)}
    bad_anchors = [a for a in re.findall(r"\]\(#([\w-]+)\)", text) if a not in anchors]
    bad_links = [link for link in re.findall(r"\]\(([\w./-]+\.md)\)", text) if not (DOCS / link).exists()]
    missing = []
    for path, test in NAMED_PATH.findall(text):
        target = ROOT / path.rstrip("/")
        if not target.exists():
            missing.append(path)
        elif test and not re.search(rf"^\s*def {test}\(", _read(target), re.M):
            missing.append(f"{path}::{test}")
    assert not (bad_anchors or bad_links or missing), f"{doc}: anchors {bad_anchors}, links {bad_links}, {missing}"


def test_nothing_cites_the_old_notes() -> None:
    citing = [_rel(path) for path in _text_files(ROOT) if OLD_NOTES in _read(path)]
    assert not citing, f"{OLD_NOTES} is not in the repository; cite docs/traps.md instead: {citing}"
