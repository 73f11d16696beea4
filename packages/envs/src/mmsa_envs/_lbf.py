"""`lbf:` Level-Based Foraging (lbforaging 2.0, `-v3` ids).

Any `Foraging-[2s-]NxN-Pp-Ff[-coop]-v3` resolves. Ids lbforaging registers are built with
`gymnasium.make`; the rest (e.g. the paper's `10x10-3p-5f`: lbforaging registers only 1-4 foods)
are built from the same keyword arguments lbforaging registers, with our size, players, foods,
sight and cooperation. Extra keyword arguments go to `ForagingEnv` (e.g. `max_episode_steps`,
which sets `episode_limit` and where truncation happens, or `penalty`).

What the adapter adds to the raw env:
- team reward = sum of the agents' rewards; `info["per_agent_reward"]` keeps them;
- the step limit is truncation: lbforaging reports it as `terminated=True`, so an episode that
  ends with food left on the field is reported `truncated` (an end with no food left is a true
  termination, even on the last step);
- available actions come from `env.unwrapped._valid_actions`: lbforaging silently turns an
  invalid action into NONE, so the mask is what keeps learners honest;
- global state = the agents' observations concatenated (`S = N * O`; LBF has no `state()`;
  with full sight each agent already sees the whole field, with `-2s` the union is the
  team's joint view).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from ._backend import require, unknown, versions
from ._core import EnvSpec, MultiAgentEnv, Step

__all__ = ["LBFEnv", "list_ids", "make_env", "parse_id"]

EXTRA = "lbf"
_ID = re.compile(
    r"^Foraging(?P<po>-2s)?-(?P<s>\d+)x(?P<s2>\d+)-(?P<p>\d+)p-(?P<f>\d+)f(?P<coop>-coop)?-v3$"
)
_N_ACTIONS = 6  # NONE, NORTH, SOUTH, WEST, EAST, LOAD
_MASKS = np.array([[(m >> a) & 1 for a in range(_N_ACTIONS)] for m in range(1 << _N_ACTIONS)], bool)
"""`_MASKS[bits]` is the `[A]` availability row of the action bit mask `bits`."""
_BIT = [1 << a for a in range(_N_ACTIONS)]
PAPER_MAPS = (
    "Foraging-2s-8x8-2p-2f-coop-v3",
    "Foraging-10x10-3p-5f-v3",
    "Foraging-10x10-4p-3f-v3",
)
"""The maps the method is judged on (the paper used the lbforaging v2 ids of these)."""


def parse_id(name: str) -> dict[str, Any]:
    """`Foraging-2s-8x8-2p-2f-coop-v3` -> the keyword arguments of lbforaging's ForagingEnv."""
    m = _ID.match(name)
    if m is None or m["s"] != m["s2"]:
        raise unknown(
            "lbf",
            name,
            _example_ids(),
            hint="LBF ids look like Foraging-[2s-]NxN-Pp-Ff[-coop]-v3, "
            "e.g. lbf:Foraging-8x8-2p-2f-coop-v3.",
        )
    size, players, foods = int(m["s"]), int(m["p"]), int(m["f"])
    if size < 2 or players < 1 or foods < 1 or players + foods > size * size:
        raise unknown("lbf", name, _example_ids(), hint=f"{players} players and {foods} foods "
                      f"do not fit a {size}x{size} field.")  # fmt: skip
    return {
        "players": players,
        "field_size": (size, size),
        "max_num_food": foods,
        "sight": 2 if m["po"] else size,
        "force_coop": bool(m["coop"]),
    }


def _example_ids() -> list[str]:
    out = list(PAPER_MAPS)
    for s in (5, 8, 10, 15):
        for p in (2, 3, 4):
            for f in (1, 2, 3, 4, 5):
                for coop in ("", "-coop"):
                    out.append(f"Foraging-{s}x{s}-{p}p-{f}f{coop}-v3")
                    out.append(f"Foraging-2s-{s}x{s}-{p}p-{f}f{coop}-v3")
    return out


def list_ids() -> list[str]:
    """The Foraging ids lbforaging registers, plus the paper's maps it does not."""
    require("lbforaging", "lbf", EXTRA)
    gym = require("gymnasium", "lbf", EXTRA)
    ids = [k for k in gym.registry if k.startswith("Foraging") and _ID.match(k)]
    return sorted(set(ids) | set(PAPER_MAPS))


def make_env(name: str, **kwargs: Any) -> LBFEnv:
    return LBFEnv(name, **kwargs)


class LBFEnv(MultiAgentEnv):
    """One LBF env behind the `MultiAgentEnv` contract (see the module docstring)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__()
        parsed = parse_id(name)
        require("lbforaging", "lbf", EXTRA)
        gym = require("gymnasium", "lbf", EXTRA)
        limit = kwargs.get("max_episode_steps", 50)
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
            raise ValueError(
                f"lbf: max_episode_steps={limit!r} is not allowed; use a positive int "
                "(lbforaging's default is 50)"
            )
        # Every keyword goes into the spec's kwargs, i.e. to ForagingEnv itself: passed to
        # `gymnasium.make` directly, `max_episode_steps` would only size a TimeLimit wrapper,
        # which this adapter never steps through, and the env would still end at 50 steps.
        registered = name in gym.registry
        # lbforaging lacks this id: same registration kwargs, our sizes (docs/design.md §7.1).
        base = gym.spec(name if registered else "Foraging-8x8-2p-1f-v3")
        env_kwargs = {**base.kwargs, **({} if registered else parsed), **kwargs}
        self._env = gym.make(dataclasses.replace(base, kwargs=env_kwargs))
        # Step the unwrapped env: gymnasium's checker wrappers only validate the first call and
        # would cost about 10% of a step.
        self._raw = self._env.unwrapped
        raw = self._raw
        n = raw.n_agents
        obs_dim = int(raw.observation_space[0].shape[0])
        self._n = n
        self.spec = EnvSpec(
            id=f"lbf:{name}",
            n_agents=n,
            obs_dim=obs_dim,
            state_dim=n * obs_dim,
            action_kind="discrete",
            n_actions=_N_ACTIONS,
            episode_limit=int(raw._max_episode_steps),
            backend_versions=versions("lbforaging", "gymnasium", "mmsa-envs"),
        )

    def _observe(self, nobs: Any, reward: float, term: bool, trunc: bool, info: Any) -> Step:
        obs = np.array(nobs, dtype=np.float32)
        # Each agent's valid actions as a bit mask, then one table lookup for all agents: the
        # cheapest way we measured to turn lbforaging's lists of enums into a [N, A] mask.
        valid, bit = self._raw._valid_actions, _BIT
        masks = []
        for player in self._raw.players:
            bits = 0
            for action in valid[player]:
                bits += bit[action._value_]
            masks.append(bits)
        return Step(obs, obs.reshape(-1), _MASKS.take(masks, axis=0), reward, term, trunc, info)

    def _reset(self, seed: int | None) -> Step:
        # lbforaging spawns players on cells that are free of food *and of the players' old
        # positions*, so without this a reset depends on the previous episode, not only on the
        # seed (which would break exact resume from episode seeds).
        for player in self._raw.players:
            player.position = None
        nobs, _ = self._raw.reset(seed=seed)
        return self._observe(nobs, 0.0, False, False, {})

    def _step(self, actions: np.ndarray) -> Step:
        nobs, rewards, done, _, _ = self._raw.step(actions.tolist())
        terminated = truncated = False
        if done:
            # lbforaging ends an episode when the field is empty or at the step limit and
            # calls both "done"; only the first is a true end (docs/design.md §7.1).
            terminated = not self._raw.field.any()
            truncated = not terminated
        info = {"per_agent_reward": np.array(rewards, np.float32)}
        return self._observe(nobs, float(sum(rewards)), terminated, truncated, info)

    def close(self) -> None:
        self._env.close()
