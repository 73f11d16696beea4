"""Report figures draw what they are given, down to a single evaluation point."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from flows.figures import plot_finals, plot_learning_curves


def _longest_vertical_run(png, rgb, tol=0.08) -> int:
    """The longest run of pixels of colour `rgb` down any one column of the image."""
    img = imread(png)[..., :3]
    mask = np.all(np.abs(img - np.asarray(rgb)) < tol, axis=-1)
    best = 0
    for col in mask.T:
        run = 0
        for hit in col:
            run = run + 1 if hit else 0
            best = max(best, run)
    return best


def _curves(steps, iqm, low, high):
    n = len(steps)
    return pl.DataFrame(
        {"task": ["t"] * n, "variant": ["mmsa"] * n, "env_steps": steps, "iqm": iqm,
         "low": low, "high": high, "n_seeds": [2] * n}
    )  # fmt: skip


def test_a_one_point_curve_draws_the_point_and_its_interval(tmp_path):
    blue = to_rgb("tab:blue")  # the first variant's colour
    one = plot_learning_curves(
        _curves([1000], [0.5], [0.1], [0.9]), pl.DataFrame(), tmp_path / "a.png"
    )
    # The CI of the only point spans 80% of the y range: a tall vertical bar in the variant's
    # colour (a line of one point and a band of zero width draw none; the legend is horizontal).
    assert _longest_vertical_run(one, blue) > 100
    two = plot_learning_curves(
        _curves([1000, 2000], [0.5, 0.6], [0.4, 0.5], [0.6, 0.7]),
        pl.DataFrame(),
        tmp_path / "b.png",
    )
    img = imread(two)[..., :3]
    assert np.all(np.abs(img - np.asarray(blue)) < 0.08, axis=-1).sum() > 200  # line + markers


def test_empty_inputs_say_so_instead_of_failing(tmp_path):
    empty = pl.DataFrame(schema={"task": pl.Utf8, "variant": pl.Utf8, "env_steps": pl.Int64})
    assert plot_learning_curves(empty, pl.DataFrame(), tmp_path / "c.png").stat().st_size > 0
    assert plot_finals(pl.DataFrame(schema={"task": pl.Utf8}), tmp_path / "d.png").exists()
