"""The READMEs' Python examples run as written.

Every ```python block of `README.md` and `packages/*/README.md` is written to `example.py` in a
temporary directory and run as a script with the interpreter running the tests (the repository's
virtualenv), so an example that uses a name it never defines, or that only works pasted into a
REPL (worker processes import the main module), fails. Other fences (```bash, plain ```) are
never run: they start long jobs.

A Python block that is not meant to run (it needs a GPU or StarCraft II, or it is a sketch of
signatures) carries a marker on the line right before its fence, with the reason:

    <!-- not-run: the reason -->

Its test is skipped with that reason. A marker without a reason, or one that is not right before
a ```python fence, fails `test_not_run_markers_are_well_formed`. The `*_catches_*` tests feed the
checks known bad input, so a check that stopped detecting anything would fail there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", *sorted((ROOT / "packages").glob("*/README.md")))
TIMEOUT_S = 180
"""Per example; each takes seconds (an example that trains trains a few hundred steps)."""

OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)[^`]*$")
MARKER = re.compile(r"<!--\s*not-run\b(?P<rest>.*?)-->", re.DOTALL)
LOOKS_LIKE_A_MARKER = re.compile(r"<!--\s*not[\s_-]*run", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it starts, its language and code, and its not-run marker."""

    path: str
    line: int
    """1-based line of the opening fence."""
    lang: str
    code: str
    not_run: str | None
    """The marker's reason ("" for a marker without one); None without a marker."""

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def marker_reason(line: str) -> str | None:
    """The reason of a `<!-- not-run: reason -->` line ("" when it has none), else None."""
    m = MARKER.fullmatch(line.strip())
    if m is None:
        return None
    rest = m.group("rest").strip()
    return rest[1:].strip() if rest.startswith(":") else ""


def code_blocks(text: str, path: str = "README.md") -> list[Block]:
    """Every fenced block of a markdown text, indented ones (in lists) dedented."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = OPENING.match(lines[i])
        if m is None:
            i += 1
            continue
        fence = m.group("fence")
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        code = textwrap.dedent("\n".join(lines[i + 1 : j])) + "\n"
        reason = marker_reason(lines[i - 1]) if i > 0 else None
        blocks.append(Block(path, i + 1, m.group("info").lower(), code, reason))
        i = j + 1
    return blocks


def marker_problems(text: str, path: str = "README.md") -> list[str]:
    """Markers without a reason, and markers that are not right before a ```python fence."""
    attached = {b.line - 1 for b in code_blocks(text, path) if b.lang == "python"}
    problems = []
    for n, line in enumerate(text.splitlines(), start=1):
        reason = marker_reason(line)
        if reason is None:
            if LOOKS_LIKE_A_MARKER.search(line):
                problems.append(f"{path}:{n}: write the marker as <!-- not-run: reason -->")
            continue
        if not reason:
            problems.append(f"{path}:{n}: not-run marker without a reason")
        if n not in attached:
            problems.append(f"{path}:{n}: not-run marker not right before a ```python fence")
    return problems


def run_example(code: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`code` as `workdir/example.py`, run there as a script. One torch thread (what `mmsa
    train` uses by default): on a loaded 2-core machine two threads make a short run several
    times slower."""
    (workdir / "example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "example.py"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


PYTHON_BLOCKS = [
    b
    for readme in READMES
    for b in code_blocks(readme.read_text(encoding="utf-8"), str(readme.relative_to(ROOT)))
    if b.lang == "python"
]


# ---------------------------------------------------------------------- the READMEs
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.id for b in PYTHON_BLOCKS])
def test_readme_example_runs(block: Block, tmp_path: Path) -> None:
    if block.not_run is not None:
        pytest.skip(f"not-run: {block.not_run}")
    out = run_example(block.code, tmp_path)
    assert out.returncode == 0, (
        f"{block.id} failed (exit {out.returncode}):\n{out.stderr[-4000:]}\n{out.stdout[-2000:]}"
    )


def test_not_run_markers_are_well_formed() -> None:
    problems = [
        p
        for readme in READMES
        for p in marker_problems(readme.read_text(encoding="utf-8"), str(readme.relative_to(ROOT)))
    ]
    assert not problems, "\n".join(problems)


def test_the_readmes_have_python_examples_and_their_shell_blocks_are_not_run() -> None:
    every = [
        b
        for readme in READMES
        for b in code_blocks(readme.read_text(encoding="utf-8"), str(readme.relative_to(ROOT)))
    ]
    assert len(PYTHON_BLOCKS) >= 8  # envs 1, marl_core 6, sale 2, worldmodel 1
    assert {b.path for b in PYTHON_BLOCKS} >= {
        f"packages/{p}/README.md" for p in ("envs", "marl_core", "sale", "worldmodel")
    }
    shell = [b for b in every if b.lang == "bash"]
    assert shell and not set(shell) & set(PYTHON_BLOCKS)


# ---------------------------------------------------------------------- the checks catch
CASES = """\
Text.

```bash
make train
```

```python
print("runs")
```

- In a list:

  ```python
  if True:
      print("indented")
  ```

<!-- not-run: needs StarCraft II -->
```python
import smacv2
```

````python
```not a fence inside a longer one```
````

```
plain
```
"""


def test_code_blocks_catches_languages_indents_and_markers() -> None:
    blocks = code_blocks(CASES)
    assert [b.lang for b in blocks] == ["bash", "python", "python", "python", "python", ""]
    assert blocks[2].code == 'if True:\n    print("indented")\n'
    assert [b.not_run for b in blocks] == [None, None, None, "needs StarCraft II", None, None]
    assert blocks[4].code == "```not a fence inside a longer one```\n"
    assert blocks[1].line == 7


def test_marker_problems_catches_bad_markers() -> None:
    assert marker_problems(CASES) == []
    bad = (
        "<!-- not-run -->\n```python\nx\n```\n"
        "<!-- not-run: a reason -->\n\n```python\nx\n```\n"
        "<!-- not-run: a reason -->\n```bash\nx\n```\n"
        "<!-- not run: a reason -->\n```python\nx\n```\n"
    )
    problems = marker_problems(bad)
    assert len(problems) == 4, problems
    assert "without a reason" in problems[0]
    assert "not right before" in problems[1] and "not right before" in problems[2]
    assert "<!-- not-run: reason -->" in problems[3]


def test_run_example_catches_an_undefined_name(tmp_path: Path) -> None:
    out = run_example("result = train(config)\n", tmp_path)
    assert out.returncode != 0 and "NameError" in out.stderr
