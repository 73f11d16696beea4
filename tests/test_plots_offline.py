"""`dvc plots show` through the offline template of `make plots` (make/plots.mk) draws its
vega-lite plots with the network off.

The real `dvc plots show` runs on the repository's results in a temporary copy (the pipeline
files, `.dvc/plots/` and `results/*/report/`), then headless Chromium, with every host
unresolvable and a dead proxy, opens the page and dumps its DOM after a virtual-time budget. The
template draws SVG, so each vega-lite plot's marks are elements of that DOM: the test counts the
points and lines of the learning curves and the bars of the final returns against the CSV rows.
A page whose libraries did not load (the CDN `<script>` tags of DVC's default page, offline) has
no SVG at all and fails.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plots" / "build" / "template.html"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The network off: no host resolves and every request would go through a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
)
PLOT_DIV = re.compile(r"vegaEmbed\('#([^']+)'")
REPORT = Path("results", "smoke", "report")
CURVES_DIV, FINALS_DIV = "results_smoke_report_curves_csv", "results_smoke_report_finals_csv"
# A drawn mark of vega's SVG renderer: a <path> with an outline, or a <line> (rule) of some length.
PATH_MARK = re.compile(
    r'<path [^>]*role="graphics-symbol" aria-roledescription="([^"]+)"[^>]*\sd="M'
)
LINE_MARK = re.compile(
    r'<line [^>]*role="graphics-symbol" aria-roledescription="([^"]+)"[^>]*'
    r'\sx2="(-?[\d.e-]+)" y2="(-?[\d.e-]+)"'
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium not installed: make setup-browser (apt-get install -y chromium)")
    return found


def _template() -> Path:
    if not TEMPLATE.is_file():
        if not shutil.which("npm") or not shutil.which("node"):
            pytest.skip("npm not found: the offline plots template needs Node.js and npm")
        subprocess.run(["make", "-s", "plots-template"], cwd=ROOT, check=True, timeout=600)
    return TEMPLATE


def _copy_plot_inputs(dest: Path) -> None:
    """What `dvc plots show` reads: the pipeline, DVC's config and templates, the reports."""
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")
    for report in ROOT.glob("results/*/report"):
        shutil.copytree(report, dest / report.relative_to(ROOT))


def _marks(dom: str, div_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per plot div: how many drawn marks (SVG paths with a non-empty outline) of each kind."""
    starts = sorted((dom.index(f'<div id="{i}"'), i) for i in div_ids)
    counts: dict[str, dict[str, int]] = {}
    for (start, div_id), (end, _) in zip(starts, [*starts[1:], (len(dom), "")], strict=True):
        kinds: dict[str, int] = {}
        section = dom[start:end]
        drawn = PATH_MARK.findall(section)
        drawn += [kind for kind, x2, y2 in LINE_MARK.findall(section) if float(x2) or float(y2)]
        for kind in drawn:
            kinds[kind] = kinds.get(kind, 0) + 1
        counts[div_id] = kinds
    return counts


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _draw(repo: Path, tmp_path: Path) -> dict[str, dict[str, int]]:
    """`dvc plots show` in `repo` through the offline template, opened offline in Chromium:
    the drawn marks of each vega-lite plot."""
    chromium = _chromium()
    template = _template()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    dvc = Path(sys.executable).parent / "dvc"
    out = subprocess.run(
        [str(dvc), "plots", "show", "--html-template", str(template), "-o", "page"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    page = repo / "page" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "<script src=" not in html and "cdn.jsdelivr" not in html  # nothing to fetch
    div_ids = PLOT_DIV.findall(html)
    assert sorted(div_ids) == [CURVES_DIV, FINALS_DIV]
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    assert "<svg" in dom, "no plot was drawn: the page's vega libraries did not run"
    return _marks(dom, div_ids)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    _copy_plot_inputs(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def test_dvc_plots_page_draws_offline(repo: Path, tmp_path: Path) -> None:
    marks = _draw(repo, tmp_path)
    curves = _rows(repo / REPORT / "curves.csv")
    finals = _rows(repo / REPORT / "finals.csv")
    assert marks[CURVES_DIV].get("point") == len(curves), marks
    assert marks[CURVES_DIV].get("line mark") == len({(r["task"], r["variant"]) for r in curves})
    assert "rule mark" not in marks[CURVES_DIV]  # CI rules only on curves of one point
    assert marks[FINALS_DIV].get("bar") == len(finals), marks
    assert marks[FINALS_DIV].get("tick") == len(finals), marks


def test_one_point_curves_and_zero_bars_are_drawn(repo: Path, tmp_path: Path) -> None:
    """A curve of one evaluation draws its point and CI rule (its line and band have no
    extent); a final return of 0 draws its tick (its bar has no length)."""
    curves = _rows(repo / REPORT / "curves.csv")
    first: dict[tuple[str, str], dict[str, str]] = {}
    for row in curves:
        first.setdefault((row["task"], row["variant"]), row)
    _write_rows(repo / REPORT / "curves.csv", list(first.values()))
    finals = _rows(repo / REPORT / "finals.csv")
    finals[0].update(iqm="0.0", iqm_low="0.0", iqm_high="0.0")
    _write_rows(repo / REPORT / "finals.csv", finals)

    marks = _draw(repo, tmp_path)
    assert marks[CURVES_DIV].get("point") == len(first), marks
    assert marks[CURVES_DIV].get("rule mark") == len(first), marks
    assert marks[FINALS_DIV].get("tick") == len(finals), marks
