"""`mmsa render`: a run's greedy policy drawn frame by frame, for every backend that has a
renderer; frames change as the episode moves, and bad input is one clear line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence

from flows.cli import main
from flows.render import RenderError, draw_frame, render_run, write_animation
from mmsa_envs import make
from mmsa_marl_core.training.checkpoint import list_checkpoints

TINY = [
    "--steps", "300", "--seed", "2", "--device", "cpu", "--no-progress", "--no-tensorboard",
    "n_envs=2", "batch_size=4", "buffer_size=20", "eval_episodes=2", "eval_every=1000",
    "log_every=100", "checkpoint_every=100", "algo_config.agent_hidden=8",
    "algo_config.mixer_embed_dim=4", "algo_config.hypernet_hidden=8",
]  # fmt: skip


def _gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as img:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(img)]


def _moving(frames: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))


@pytest.fixture(scope="module")
def lbf_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("render") / "lbf"
    env = ["--env", "lbf:Foraging-5x5-2p-1f-v3"]
    assert main(["train", "--run-dir", str(run), *env, *TINY]) == 0
    return run


def test_render_cli_writes_a_gif_of_the_episodes(lbf_run, tmp_path, capsys):
    out = tmp_path / "episode.gif"
    assert main(["render", str(lbf_run), "--episodes", "2", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "frames of 2 episode(s)" in said and str(out) in said
    frames = _gif_frames(out)
    shown = int(said.split("mmsa render: ")[1].split(" frames")[0])
    assert len(frames) == shown >= 4  # at least a first and a last frame per episode
    assert frames[0].shape[2] == 3 and frames[0].shape[:2] == (5 * 48 + 20, 5 * 48)
    assert _moving(frames)


def test_render_matches_the_runs_evaluation_seeds(lbf_run, tmp_path):
    a = render_run(lbf_run, episodes=1, out=tmp_path / "a.gif")
    b = render_run(lbf_run, episodes=1, out=tmp_path / "b.gif")
    assert a.returns == b.returns  # greedy on the same seeds: the same episode
    assert np.array_equal(np.stack(_gif_frames(a.out)), np.stack(_gif_frames(b.out)))
    assert a.checkpoint == list_checkpoints(lbf_run / "checkpoints")[-1]  # the newest


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["render", "RUN", "--out", "x.png"], "must end in .gif or .mp4"),
        (["render", "RUN", "--episodes", "0"], "'0'"),
        (["render", "RUN", "--fps", "0"], "--fps 0.0"),
        (["render", "nope_dir"], "nope_dir"),
    ],
)
def test_render_bad_input_is_one_line(lbf_run, tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    argv = [str(lbf_run) if a == "RUN" else a for a in argv]
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert status == 2 and len(err) == 1 and needle in err[0], err
    assert not any(tmp_path.iterdir())  # nothing written


def _frames_of(env_id: str, steps: int, seed: int = 0, **kwargs) -> list[np.ndarray]:
    env = make(env_id, **kwargs)
    rng = np.random.default_rng(seed)
    cache: dict = {}
    try:
        step = env.reset(seed=seed)
        frames = [draw_frame(env, 0, None, cache)]
        for t in range(steps):
            if env.spec.action_kind == "discrete":
                act = np.array([rng.choice(np.flatnonzero(m)) for m in step.avail_actions])
            else:
                act = rng.uniform(-1, 1, (env.spec.n_agents, env.spec.n_actions))
            step = env.step(act)
            frames.append(draw_frame(env, t + 1, act, cache))
            if step.done:
                break
    finally:
        env.close()
    return frames


def test_lbf_frames_show_the_grid_and_move():
    frames = _frames_of("lbf:Foraging-8x8-2p-2f-v3", 6)
    assert all(f.shape == (8 * 48 + 20, 8 * 48, 3) and f.dtype == np.uint8 for f in frames)
    assert _moving(frames)


@pytest.mark.slow  # imports JAX (~10 s)
def test_smax_frames_show_units_and_move():
    frames = _frames_of("smax:3m", 8)
    assert frames[0].shape == (500, 480, 3)
    blue = ((frames[0][..., 2] > 150) & (frames[0][..., 0] < 80)).sum()
    red = ((frames[0][..., 0] > 150) & (frames[0][..., 2] < 80)).sum()
    assert blue > 50 and red > 50  # allied and enemy units are drawn
    assert _moving(frames)


_MUJOCO_FRAMES = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_render import _frames_of, _moving
from flows.render import RenderError
try:
    frames = _frames_of("mamujoco:HalfCheetah-2x3", 5)
except RenderError as err:
    print("NOGL", err)
    raise SystemExit(0)
print("FRAMES", frames[0].shape, float(frames[0].std()), _moving(frames))
"""


@pytest.mark.slow  # MuJoCo's offscreen renderer, in a fresh interpreter
def test_mamujoco_frames_move_or_the_error_names_what_is_missing():
    """MuJoCo picks its GL platform when it is first imported, and other tests import it
    before: so this runs where `mmsa render` does, in a process that sets MUJOCO_GL first."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "MUJOCO_GL": "egl"}
    here = str(Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", _MUJOCO_FRAMES, here], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith(("NOGL", "FRAMES")))
    if line.startswith("NOGL"):  # no EGL here: the one line says what to install
        assert "libEGL" in line or "OSMesa" in line
        pytest.skip(f"no offscreen GL here: {line}")
    assert line.startswith("FRAMES (240, 320, 3)"), line
    _, _, _, _, std, moving = line.replace(",", " ").replace("(", " ").replace(")", " ").split()
    assert float(std) > 5  # a scene, not a blank image
    assert moving == "True"


def test_unknown_backend_and_mp4_without_writer(tmp_path):
    class Fake:
        class spec:  # noqa: N801
            id = "pettingzoo:x"

    with pytest.raises(RenderError, match="has no renderer"):
        draw_frame(Fake(), 0)
    frames = [np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 200, np.uint8)]
    gif = write_animation(frames, tmp_path / "two.gif", fps=2)
    assert len(_gif_frames(gif)) == 2
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        with pytest.raises(RenderError, match="imageio-ffmpeg"):
            write_animation(frames, tmp_path / "two.mp4", fps=2)
        assert not (tmp_path / "two.mp4").exists()
