"""The documentation is self-contained and its references resolve.

- No tracked file points at a design document that is not in the repository (the old
  upper-case design file name, or that name followed by a section number) or at a folder
  outside it.
- Every `§N` citation names a section heading of `docs/design.md`. In this repository the sign
  `§` only ever cites that file (`docs/design.md §4.4`, or `§4.4` next to such a citation).
- Every relative markdown link of the READMEs and of `docs/design.md` resolves to a file of the
  repository (and, with a `#fragment` into a markdown file, to one of its headings).

Each check is a small function over text; the `*_catches_*` tests feed it a known bad input, so
a check that stopped detecting anything would fail there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN_DOC = ROOT / "docs" / "design.md"
LINKED_DOCS = (
    ROOT / "README.md",
    DESIGN_DOC,
    ROOT / "flows" / "README.md",
    *sorted((ROOT / "packages").glob("*/README.md")),
)

# Patterns are assembled from pieces so that this file does not match them itself.
_UPPER = "DE" + "SIGN"
OUTSIDE = re.compile(
    "|".join(
        (
            rf"\b{_UPPER}\b",  # the old file name, "<that word> 4.3", "<that word>'s", ...
            r"\.\./+" + "shared" + r"\b",  # a sibling folder of the checkout
            r"(?<![\w.])/work/" + "shared" + r"\b",  # the same by absolute path
        )
    )
)
SECTION_REF = re.compile(r"§\s?(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
SECTION_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
WORDY_REF = re.compile(r"design\.md\)?,?\s+(?:section|sec\.)\s*\d", re.IGNORECASE)
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^[ ]{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


# ---------------------------------------------------------------------- the checks
def outside_references(text: str) -> list[str]:
    """Every match of a reference to a design file or folder outside the repository."""
    return [m.group(0) for m in OUTSIDE.finditer(text)]


def section_numbers(design_text: str) -> list[str]:
    """The numbers of the numbered headings (`## 3. Data contracts` -> "3", `### 4.4 ...`)."""
    numbers = []
    for m in HEADING.finditer(design_text):
        number = SECTION_HEADING.match(m.group(2))
        if number:
            numbers.append(number.group(1))
    return numbers


def section_references(text: str) -> list[str]:
    """The section numbers cited with `§` in `text`."""
    return SECTION_REF.findall(text)


def missing_sections(design_text: str, refs: list[str]) -> list[str]:
    """The cited numbers that no heading of `design_text` has."""
    have = set(section_numbers(design_text))
    return sorted({r for r in refs if r not in have})


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {slug(m.group(2)) for m in HEADING.finditer(FENCE.sub("", markdown))}


def link_targets(markdown: str) -> list[str]:
    """Targets of inline and reference-style links outside code blocks and code spans."""
    prose = INLINE_CODE.sub("", FENCE.sub("", markdown))
    return [*INLINE_LINK.findall(prose), *REFERENCE_LINK.findall(prose)]


def broken_links(path: Path, markdown: str, root: Path = ROOT) -> list[str]:
    """Relative link targets of `markdown` (the text of `path`) that do not resolve to a file
    inside `root`, or whose `#fragment` names no heading of the markdown file it points to."""
    broken = []
    for target in link_targets(markdown):
        if not target or SCHEME.match(target):
            continue  # http(s), mailto, ...: not ours to check offline
        file_part, _, fragment = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        dest = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not dest.is_relative_to(root.resolve()) or not dest.exists():
            broken.append(target)
        elif fragment and dest.suffix == ".md" and dest.is_file():
            text = markdown if dest == path.resolve() else dest.read_text(encoding="utf-8")
            if unquote(fragment).lower() not in anchors(text):
                broken.append(target)
    return broken


# ---------------------------------------------------------------------- the repository
def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no tracked files to check")
    paths = {ROOT / p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}
    paths.add(DESIGN_DOC)  # checked even before it is first committed
    return sorted(p for p in paths if p.is_file())


def _text(path: Path) -> str | None:
    """The file's text, or None for binary files (NUL bytes or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.fixture(scope="module")
def tracked_texts() -> dict[str, str]:
    texts = {}
    for path in _tracked_files():
        text = _text(path)
        if text is not None:
            texts[path.relative_to(ROOT).as_posix()] = text
    return texts


def test_no_reference_outside_the_repository(tracked_texts: dict[str, str]) -> None:
    found = {
        f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for name, text in tracked_texts.items()
        for m in OUTSIDE.finditer(text)
    }
    assert not found, "references to files outside the repository:\n" + "\n".join(sorted(found))


def test_design_sections_are_numbered_once() -> None:
    numbers = section_numbers(DESIGN_DOC.read_text(encoding="utf-8"))
    assert len(numbers) >= 20, numbers
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not duplicates, f"docs/design.md numbers these sections twice: {duplicates}"


def test_every_section_citation_exists(tracked_texts: dict[str, str]) -> None:
    design = DESIGN_DOC.read_text(encoding="utf-8")
    cited = {name: section_references(text) for name, text in tracked_texts.items()}
    assert sum(len(refs) for refs in cited.values()) >= 50, "expected the code to cite the design"
    problems = [
        f"{name}: §{number}"
        for name, refs in sorted(cited.items())
        for number in missing_sections(design, refs)
    ]
    assert not problems, "sections cited but not in docs/design.md:\n" + "\n".join(problems)
    wordy = [name for name, text in tracked_texts.items() if WORDY_REF.search(text)]
    assert not wordy, f"cite sections as 'docs/design.md §N', not 'section N': {wordy}"


@pytest.mark.parametrize("path", LINKED_DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path: Path) -> None:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    broken = broken_links(path, path.read_text(encoding="utf-8"))
    assert not broken, f"{path.relative_to(ROOT)} links to what does not exist: {broken}"


def test_readme_points_to_the_design() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:2000]
    assert "](docs/design.md)" in head


# ---------------------------------------------------------------------- the checks can fail
def test_outside_check_catches_the_old_names() -> None:
    assert outside_references(f"see {_UPPER}.md, section 5")
    assert outside_references(f"({_UPPER} 4.4)")
    assert outside_references("cat ../" + "shared/notes.md")
    assert outside_references("/work/" + "shared/x")
    assert not outside_references("see docs/design.md §5; the design's axis letters")


def test_section_check_catches_a_renamed_section() -> None:
    design = DESIGN_DOC.read_text(encoding="utf-8")
    refs = section_references("docs/design.md §4.4 and §3.7, §4.1-§4.5")
    assert refs == ["4.4", "3.7", "4.1", "4.5"]
    assert missing_sections(design, refs) == []
    renamed = re.sub(r"^### 4\.4 ", "### 4.9 ", design, flags=re.MULTILINE)
    assert renamed != design
    assert missing_sections(renamed, refs) == ["4.4"]
    assert missing_sections(design, ["12.3"]) == ["12.3"]


def test_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "there.md").write_text("# Title\n\n## 2. A section\n")
    doc = tmp_path / "docs" / "page.md"
    text = (
        "[ok](../there.md) [ok](../there.md#2-a-section) [web](https://example.org/x)\n"
        "[gone](../missing.md) [bad anchor](../there.md#nope) [out](../../elsewhere.md)\n"
        "`[code](not-a-link.md)`\n```\n[fenced](also-not.md)\n```\n"
    )
    assert broken_links(doc, text, root=tmp_path) == [
        "../missing.md",
        "../there.md#nope",
        "../../elsewhere.md",
    ]
