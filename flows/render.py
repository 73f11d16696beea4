"""`mmsa render RUN_DIR`: watch a run's greedy policy, drawn frame by frame into a GIF (or MP4).

The policy is the run's latest readable checkpoint (or `checkpoint`), acting greedily on
episodes seeded like the run's evaluations (`seed + EVAL_SEED_OFFSET + episode`). Each backend
is drawn from its own state, with no window and no display:

- LBF: the grid, the food with its level, the agents with their level (and a green border on
  those that chose LOAD);
- SMAX: the map, allied (blue) and enemy (red) units as discs sized by type, each with a health
  bar; dead units as grey crosses;
- MaMuJoCo: MuJoCo's offscreen renderer (`MUJOCO_GL=egl` by default here: it needs libEGL and a
  GPU or Mesa's EGL; where neither is available the error names what is missing);
- `dummy`: the step counter and the agents' actions as bars (for tests).

    mmsa render runs/x --episodes 2 --out episode.gif
    mmsa render runs/x --out episode.mp4          # needs imageio-ffmpeg
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RenderError", "RenderResult", "draw_frame", "render_run", "write_animation"]


class RenderError(ValueError):
    """A run or env that cannot be drawn here (no renderer, no GL library, no MP4 writer)."""


CELL = 48
"""Pixels per LBF grid cell."""
SMAX_SIZE = 480
"""Side of a SMAX frame in pixels."""


@dataclass(frozen=True)
class RenderResult:
    out: Path
    frames: int
    episodes: int
    returns: list[float]
    checkpoint: Path


def _image(size: tuple[int, int]) -> Any:
    from PIL import Image

    return Image.new("RGB", size, (250, 250, 250))


def _draw_lbf(raw: Any, actions: np.ndarray | None) -> np.ndarray:
    from PIL import ImageDraw

    rows, cols = raw.field.shape
    img = _image((cols * CELL, rows * CELL + 20))
    draw = ImageDraw.Draw(img)
    for r in range(rows + 1):
        draw.line([(0, r * CELL), (cols * CELL, r * CELL)], fill=(200, 200, 200))
    for c in range(cols + 1):
        draw.line([(c * CELL, 0), (c * CELL, rows * CELL)], fill=(200, 200, 200))
    for r, c in zip(*np.nonzero(raw.field), strict=True):
        box = (c * CELL + 8, r * CELL + 8, (c + 1) * CELL - 8, (r + 1) * CELL - 8)
        draw.rectangle(box, fill=(90, 170, 60))
        draw.text((c * CELL + CELL // 2 - 3, r * CELL + CELL // 2 - 6), str(raw.field[r, c]),
                  fill=(255, 255, 255))  # fmt: skip
    palette = [(40, 90, 200), (200, 120, 30), (150, 50, 170), (30, 160, 160), (180, 40, 60)]
    for i, player in enumerate(raw.players):
        if player.position is None:
            continue
        r, c = player.position
        loading = actions is not None and int(actions[i]) == 5
        box = (c * CELL + 6, r * CELL + 6, (c + 1) * CELL - 6, (r + 1) * CELL - 6)
        draw.ellipse(box, fill=palette[i % len(palette)],
                     outline=(0, 200, 0) if loading else None, width=4)  # fmt: skip
        draw.text((c * CELL + CELL // 2 - 3, r * CELL + CELL // 2 - 6), str(player.level),
                  fill=(255, 255, 255))  # fmt: skip
    draw.text((4, rows * CELL + 4), f"step {raw.current_step}", fill=(0, 0, 0))
    return np.asarray(img)


def _draw_smax(env: Any, state: Any) -> np.ndarray:
    from PIL import ImageDraw

    inner = state.state if hasattr(state, "state") else state
    pos = np.asarray(inner.unit_positions, np.float64)
    health = np.asarray(inner.unit_health, np.float64)
    alive = np.asarray(inner.unit_alive, bool)
    types = np.asarray(inner.unit_types, np.int64)
    raw = env._core.env
    width, height = float(raw.map_width), float(raw.map_height)
    max_health = np.asarray(raw.unit_type_health, np.float64)[types]
    radius = np.asarray(raw.unit_type_radiuses, np.float64)[types]
    n_allies = env._core.n_allies
    img = _image((SMAX_SIZE, SMAX_SIZE + 20))
    draw = ImageDraw.Draw(img)
    scale = SMAX_SIZE / max(width, height)
    for i in range(len(pos)):
        x, y = pos[i, 0] * scale, SMAX_SIZE - pos[i, 1] * scale
        if not alive[i]:
            draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=(150, 150, 150), width=2)
            draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=(150, 150, 150), width=2)
            continue
        rad = max(6.0, radius[i] * scale)
        color = (40, 90, 200) if i < n_allies else (200, 50, 50)
        draw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=color)
        frac = float(np.clip(health[i] / max(max_health[i], 1e-9), 0.0, 1.0))
        draw.rectangle((x - rad, y - rad - 5, x + rad, y - rad - 2), fill=(220, 220, 220))
        draw.rectangle((x - rad, y - rad - 5, x - rad + 2 * rad * frac, y - rad - 2),
                       fill=(60, 180, 60))  # fmt: skip
    t = int(getattr(inner, "step", getattr(inner, "time", 0)))
    allies, enemies = int(alive[:n_allies].sum()), int(alive[n_allies:].sum())
    draw.text((4, SMAX_SIZE + 4), f"step {t}  allies {allies}  enemies {enemies}", fill=(0, 0, 0))
    return np.asarray(img)


def _draw_mamujoco(env: Any, renderers: dict[Any, Any]) -> np.ndarray:
    try:
        import mujoco

        raw = env._single.unwrapped
        key = id(raw)
        if key not in renderers:
            renderers[key] = mujoco.Renderer(raw.model, 240, 320)
        renderer = renderers[key]
        camera = mujoco.MjvCamera()  # follow the robot's root body from the side
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = 1
        camera.distance = 0.6 * float(raw.model.stat.extent)
        camera.elevation = -15.0
        camera.azimuth = 90.0
        renderer.update_scene(raw.data, camera=camera)
        return np.asarray(renderer.render())
    except Exception as err:  # noqa: BLE001 - any GL failure becomes one clear line
        raise RenderError(
            f"MaMuJoCo frames need MuJoCo's offscreen renderer, which failed here "
            f"(MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); install libEGL (Debian: "
            "libegl1) or OSMesa (libosmesa6, MUJOCO_GL=osmesa)"
        ) from err


def _draw_dummy(step_index: int, actions: np.ndarray | None, n_actions: int) -> np.ndarray:
    from PIL import ImageDraw

    img = _image((160, 120))
    draw = ImageDraw.Draw(img)
    draw.text((4, 4), f"step {step_index}", fill=(0, 0, 0))
    if actions is not None:
        for i, a in enumerate(np.asarray(actions).reshape(-1)):
            h = int(80 * (float(a) + 1) / (n_actions + 1))
            draw.rectangle((10 + 20 * i, 110 - h, 24 + 20 * i, 110), fill=(40, 90, 200))
    return np.asarray(img)


def draw_frame(
    env: Any, step_index: int, actions: np.ndarray | None = None, cache: dict | None = None
) -> np.ndarray:
    """One RGB frame `[H, W, 3]` uint8 of `env` (an `mmsa_envs` env) as it is now; `actions`
    are the ones about to be taken (None: at the end)
    (MaMuJoCo: set `MUJOCO_GL`, e.g. to `egl`, before the env is made.)"""
    backend = env.spec.id.split(":", 1)[0]
    if backend == "lbf":
        return _draw_lbf(env._raw, actions)
    if backend == "smax":
        return _draw_smax(env, env._state)
    if backend == "mamujoco":
        return _draw_mamujoco(env, {} if cache is None else cache)
    if backend == "dummy":
        return _draw_dummy(step_index, actions, env.spec.n_actions)
    raise RenderError(
        f"env {env.spec.id!r} has no renderer; renderable backends: lbf, smax, mamujoco, dummy"
    )


def _check_writer(out: Path) -> None:
    """Refuse an output this machine cannot write, before any episode is played."""
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise RenderError(f"--out {out} must end in .gif or .mp4")
    if suffix == ".mp4":
        try:
            import imageio.v2  # noqa: F401
            import imageio_ffmpeg  # noqa: F401
        except ImportError as err:
            raise RenderError(
                f"{out} needs an MP4 writer: pip install imageio-ffmpeg (or use .gif)"
            ) from err


def write_animation(frames: list[np.ndarray], out: Path, fps: float) -> Path:
    """Frames to `out`: `.gif` (Pillow) or `.mp4` (imageio with imageio-ffmpeg)."""
    out = Path(out)
    _check_writer(out)
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    padded = [np.pad(f, ((0, height - f.shape[0]), (0, width - f.shape[1]), (0, 0)),
                     constant_values=250) for f in frames]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in padded]
        images[0].save(out, save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0)  # fmt: skip
        return out
    _check_writer(out)
    import imageio.v2 as imageio

    even = [f[: height - height % 2, : width - width % 2] for f in padded]
    imageio.mimsave(out, even, fps=fps)
    return out


def render_run(
    run_dir: Path | str,
    *,
    episodes: int = 2,
    out: Path | str = "episode.gif",
    fps: float = 4.0,
    checkpoint: Path | None = None,
    device: str = "cpu",
) -> RenderResult:
    """Play `episodes` greedy episodes of the run's checkpoint and write them to `out`."""
    import torch

    from mmsa_envs import make
    from mmsa_marl_core import get_algo
    from mmsa_marl_core.training.evaluate import run_checkpoint
    from mmsa_marl_core.training.train import EVAL_SEED_OFFSET

    if episodes < 1:
        raise ValueError(f"--episodes {episodes} must be >= 1")
    if fps <= 0:
        raise ValueError(f"--fps {fps} must be > 0")
    out = Path(out)
    _check_writer(out)
    config, checkpoint, payload = run_checkpoint(run_dir, checkpoint, purpose="render")
    # MuJoCo picks its GL platform when it is first imported (by the env): headless EGL.
    os.environ.setdefault("MUJOCO_GL", "egl")
    env = make(config.env, **dict(config.env_kwargs))
    frames: list[np.ndarray] = []
    returns: list[float] = []
    cache: dict = {}
    rng = np.random.default_rng(config.seed)
    try:
        learner = get_algo(config.algo).factory(env.spec, config.algo_config, torch.device(device))
        learner.load_state_dict(payload["learner"])
        for episode in range(episodes):
            step = env.reset(seed=config.seed + EVAL_SEED_OFFSET + episode)
            acting = learner.initial_state(1)
            total, t = 0.0, 0
            while True:
                actions, acting = learner.act(
                    step.obs[None], step.avail_actions[None], acting,
                    env_steps=int(payload["env_steps"]), explore=False, rng=rng,
                )  # fmt: skip
                frames.append(draw_frame(env, t, actions[0], cache))
                step = env.step(actions[0])
                total += float(step.reward)
                t += 1
                if step.done or t >= env.spec.episode_limit:
                    break
            frames.append(draw_frame(env, t, None, cache))
            returns.append(total)
    finally:
        env.close()
    write_animation(frames, out, fps)
    return RenderResult(out, len(frames), episodes, returns, Path(checkpoint))
