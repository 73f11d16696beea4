"""The numpy-side contract every adapter implements: `EnvSpec`, `Step` and `MultiAgentEnv`.

Shapes use the axis letters of docs/design.md §3.1: `N` agents, `O` per-agent observation
(padded to the largest agent), `S` global state, `A` actions (count if discrete, dims if
continuous).

A loop over one env reads::

    env = make("dummy")
    step = env.reset(seed=0)
    while not step.done:
        actions = policy(step.obs, step.avail_actions)      # [N] int64 or [N, A] float32
        step = env.step(actions)
    env.close()
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

__all__ = ["ActionKind", "EntityLayout", "EnvSpec", "MultiAgentEnv", "Step", "validate_actions"]

ActionKind = Literal["discrete", "continuous"]


@dataclass(frozen=True)
class EntityLayout(Mapping[str, Any]):
    """Where each entity sits in one agent's observation `[O]`, for entity-based agents (HPN).

    Ally `j` (the `j`-th other ally the agent sees, `j < n_allies`) occupies
    `obs[ally_start + j * ally_dim : ally_start + (j + 1) * ally_dim]`, enemy `j` likewise from
    `enemy_start`; the agent's own features are the `own` ranges. Action `attack_actions[j]`
    attacks enemy `j`; every other action is a "normal" one (no-op, stop, moves). SMACv2 reads::

        [move | enemy 0 | ... | enemy M-1 | ally 0 | ... | ally N-2 | own]

    with `own = ((0, move), (own_start, O))` and `attack_actions = (6, ..., 6 + M - 1)`.

    It is also a read-only mapping of its fields, so run records store it as plain data.
    """

    own: tuple[tuple[int, int], ...]
    """Half-open `(start, stop)` observation ranges of the agent's own (non-entity) features,
    in the order they are read (SMACv2: the move features, then the own-unit features)."""
    n_allies: int
    """Allies each agent observes (usually `N - 1`)."""
    ally_start: int
    """Observation index where ally 0's features start."""
    ally_dim: int
    """Features per ally."""
    n_enemies: int
    """Enemies each agent observes."""
    enemy_start: int
    """Observation index where enemy 0's features start."""
    enemy_dim: int
    """Features per enemy."""
    attack_actions: tuple[int, ...]
    """`attack_actions[j]`: the action index that attacks enemy `j` (`n_enemies` of them)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "own", tuple((int(a), int(b)) for a, b in self.own))
        object.__setattr__(self, "attack_actions", tuple(int(a) for a in self.attack_actions))
        for name in ("n_allies", "ally_start", "ally_dim", "n_enemies", "enemy_start"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"EntityLayout.{name}={value!r} must be an int >= 0")
        if not isinstance(self.enemy_dim, int | np.integer) or self.enemy_dim < 1:
            raise ValueError(f"EntityLayout.enemy_dim={self.enemy_dim!r} must be a positive int")
        if self.n_allies and self.ally_dim < 1:
            raise ValueError(f"EntityLayout.ally_dim={self.ally_dim!r} must be a positive int")
        if self.n_enemies < 1:
            raise ValueError("EntityLayout.n_enemies must be >= 1 (attack actions need enemies)")
        if len(self.attack_actions) != self.n_enemies or len(set(self.attack_actions)) != len(
            self.attack_actions
        ):
            raise ValueError(
                f"EntityLayout.attack_actions={self.attack_actions} must be n_enemies="
                f"{self.n_enemies} distinct action indices"
            )
        if any(not 0 <= a < b for a, b in self.own):
            raise ValueError(f"EntityLayout.own={self.own} must be ranges 0 <= start < stop")

    # ------------------------------------------------------------------ derived
    @property
    def own_dim(self) -> int:
        """Number of own features (the total length of the `own` ranges)."""
        return sum(b - a for a, b in self.own)

    @property
    def own_indices(self) -> tuple[int, ...]:
        """Observation indices of the own features, in order."""
        return tuple(i for a, b in self.own for i in range(a, b))

    @property
    def ally_stop(self) -> int:
        return self.ally_start + self.n_allies * self.ally_dim

    @property
    def enemy_stop(self) -> int:
        return self.enemy_start + self.n_enemies * self.enemy_dim

    def check(self, obs_dim: int, n_actions: int, env_id: str = "") -> None:
        """ValueError unless the blocks fit in `obs_dim`, overlap nowhere, and every attack
        action is one of `n_actions`."""
        where = f"{env_id}: " if env_id else ""
        ranges = [*self.own, (self.enemy_start, self.enemy_stop)]
        if self.n_allies:
            ranges.append((self.ally_start, self.ally_stop))
        ranges.sort()
        if ranges[-1][1] > obs_dim:
            raise ValueError(f"{where}entity layout reaches index {ranges[-1][1]} > O={obs_dim}")
        for (_, stop), (start, _) in zip(ranges, ranges[1:], strict=False):
            if start < stop:
                raise ValueError(f"{where}entity layout blocks overlap: {ranges}")
        if not all(0 <= a < n_actions for a in self.attack_actions):
            raise ValueError(
                f"{where}attack_actions={self.attack_actions} must lie in [0, {n_actions - 1}]"
            )
        if len(self.attack_actions) >= n_actions:
            raise ValueError(f"{where}entity layout leaves no non-attack action")

    # ------------------------------------------------------------------ Mapping
    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a multi-agent env; stored with every result."""

    id: str
    """Full id, `backend:name`."""
    n_agents: int
    obs_dim: int
    """Per-agent observation size, padded to the largest agent (`O`)."""
    state_dim: int
    """Global state size (`S`)."""
    action_kind: ActionKind
    n_actions: int
    """Number of actions (discrete) or action dimensions per agent (continuous) (`A`)."""
    episode_limit: int
    """Maximum number of steps in an episode; reaching it is truncation, not termination."""
    agent_obs_dims: tuple[int, ...] = ()
    """True observation size of each agent before padding (defaults to `obs_dim` for all)."""
    action_low: tuple[float, ...] | None = None
    """Lower bound of each action dimension (continuous only)."""
    action_high: tuple[float, ...] | None = None
    """Upper bound of each action dimension (continuous only)."""
    has_win: bool = False
    """Whether `info["battle_won"]` is meaningful at the end of an episode."""
    backend_versions: Mapping[str, str] = field(default_factory=dict)
    """Package name -> version of the backend packages this env runs on."""
    entities: EntityLayout | None = None
    """Where allies, enemies and the agent's own features sit in each observation, and which
    actions attack which enemy (SMAX, SMACv2); None where the observation has no such layout.
    Entity-based learners (`hpn_qmix`) need it; resume fingerprints leave it out."""

    def __post_init__(self) -> None:
        if self.action_kind not in ("discrete", "continuous"):
            raise ValueError(
                f"action_kind={self.action_kind!r} is not allowed; use 'discrete' or 'continuous'"
            )
        for name in ("n_agents", "obs_dim", "state_dim", "n_actions", "episode_limit"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"EnvSpec.{name}={value!r} must be a positive int")
        if not self.agent_obs_dims:
            object.__setattr__(self, "agent_obs_dims", (self.obs_dim,) * self.n_agents)
        if len(self.agent_obs_dims) != self.n_agents or max(self.agent_obs_dims) > self.obs_dim:
            raise ValueError(
                f"agent_obs_dims={self.agent_obs_dims} must have {self.n_agents} entries, "
                f"each at most obs_dim={self.obs_dim}"
            )
        if self.action_kind == "continuous":
            if self.action_low is None or self.action_high is None:
                raise ValueError(f"continuous env {self.id!r} needs action_low and action_high")
            if len(self.action_low) != self.n_actions or len(self.action_high) != self.n_actions:
                raise ValueError(
                    f"action bounds of {self.id!r} must have n_actions={self.n_actions} entries"
                )
        if self.entities is not None:
            if not self.discrete:
                raise ValueError(f"entity layout of {self.id!r} needs discrete actions")
            if len(set(self.agent_obs_dims)) != 1:
                raise ValueError(f"entity layout of {self.id!r} needs equal observation sizes")
            self.entities.check(self.obs_dim, self.n_actions, self.id)

    @property
    def discrete(self) -> bool:
        return self.action_kind == "discrete"


@dataclass(frozen=True, init=False)
class Step:
    """What an env returns from `reset` and `step`.

    `obs [N, O] float32`, `state [S] float32`, `avail_actions [N, A] bool` (all true for
    continuous actions), team `reward` (0 after reset). `truncated` marks a time limit: learners
    bootstrap through it. `info` is for logging only (`battle_won`, per-agent rewards, ...).
    """

    obs: np.ndarray
    state: np.ndarray
    avail_actions: np.ndarray
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        obs: np.ndarray,
        state: np.ndarray,
        avail_actions: np.ndarray,
        reward: float = 0.0,
        terminated: bool = False,
        truncated: bool = False,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        # Every env step builds one Step: writing the instance dict directly costs a third of
        # the frozen dataclass __init__ (which goes through object.__setattr__ per field).
        d = self.__dict__
        d["obs"], d["state"], d["avail_actions"] = obs, state, avail_actions
        d["reward"], d["terminated"], d["truncated"] = reward, terminated, truncated
        d["info"] = {} if info is None else info

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class MultiAgentEnv(ABC):
    """Base class of every adapter: validates actions once, here, so adapters stay thin.

    Subclasses set `self.spec` and implement `_reset(seed)` and `_step(actions)`.
    """

    spec: EnvSpec
    reproducible_resets: bool = True
    """Whether `reset(seed)` with the same seed and the same actions replays an episode exactly
    (False only where the backend cannot be seeded per episode, e.g. StarCraft II)."""

    def __init__(self) -> None:
        self._needs_reset = True
        self._avail: np.ndarray | None = None
        self.elapsed_steps = 0

    # ------------------------------------------------------------------ public API
    def reset(self, seed: int | None = None) -> Step:
        """Start an episode. `seed` makes the episode reproducible."""
        step = self._reset(seed)
        self._needs_reset = False
        self._avail = step.avail_actions
        self.elapsed_steps = 0
        return step

    def step(self, actions: np.ndarray | Any) -> Step:
        """Apply one joint action: `[N]` int64 (discrete) or `[N, A]` float (continuous)."""
        if self._needs_reset:
            raise RuntimeError(
                f"{self.spec.id}: step() called on a finished or never-started episode; "
                "call reset() first"
            )
        step = self._step(self.validate_actions(actions))
        self.elapsed_steps += 1
        self._avail = step.avail_actions
        if step.terminated or step.truncated:
            self._needs_reset = True
        return step

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources."""

    def __enter__(self) -> MultiAgentEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ checks
    def validate_actions(self, actions: np.ndarray | Any) -> np.ndarray:
        """Return `actions` as a checked array, or raise ValueError naming agent and value."""
        return validate_actions(self.spec, self._avail, actions)

    # ------------------------------------------------------------------ adapter hooks
    @abstractmethod
    def _reset(self, seed: int | None) -> Step: ...

    @abstractmethod
    def _step(self, actions: np.ndarray) -> Step: ...


def validate_actions(
    spec: EnvSpec, avail: np.ndarray | None, actions: np.ndarray | Any
) -> np.ndarray:
    """Check one joint action against `spec` and the current mask `avail [N, A]` (None: no mask).

    Returns `[N]` int64 (discrete) or `[N, A]` float32 (continuous); raises ValueError naming the
    agent and the value. `VectorEnv` calls it before sending actions to its workers.
    """
    arr = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
    if spec.discrete:
        if arr.shape != (spec.n_agents,):
            raise ValueError(
                f"{spec.id}: actions must have shape ({spec.n_agents},) "
                f"(one int per agent), got {arr.shape}"
            )
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{spec.id}: discrete actions must be integers, got dtype {arr.dtype}")
        # A Python loop over N ints is faster than numpy calls at these sizes (N <= ~30),
        # and this runs on every step of every env.
        values = arr.tolist()
        n_actions = spec.n_actions
        is_available = None if avail is None else avail.item
        for i, a in enumerate(values):
            if not 0 <= a < n_actions:
                raise ValueError(
                    f"{spec.id}: agent {i} action {a} is out of range [0, {n_actions - 1}]"
                )
            if is_available is not None and not is_available(i, a):
                allowed = np.flatnonzero(avail[i]).tolist()  # type: ignore[index]
                raise ValueError(
                    f"{spec.id}: agent {i} action {a} is not available now; "
                    f"available actions: {allowed}"
                )
        return arr if arr.dtype == np.int64 else arr.astype(np.int64)
    if arr.shape != (spec.n_agents, spec.n_actions):
        raise ValueError(
            f"{spec.id}: actions must have shape ({spec.n_agents}, {spec.n_actions}), "
            f"got {arr.shape}"
        )
    if arr.dtype.kind != "f":
        raise ValueError(f"{spec.id}: continuous actions must be floats, got dtype {arr.dtype}")
    assert spec.action_low is not None and spec.action_high is not None
    low, high, lo, hi = _bounds(spec.action_low, spec.action_high)
    # NaN fails every comparison, so these tests also reject non-finite values. With the same
    # bounds on every dimension (the usual case) two reductions do.
    if lo is not None and hi is not None:
        inside = lo <= arr.min() and arr.max() <= hi
    else:
        inside = (arr >= low).all() and (arr <= high).all()
    if not inside:
        outside = ~((arr >= low) & (arr <= high))
        i, j = (int(v) for v in np.argwhere(outside)[0])
        raise ValueError(
            f"{spec.id}: agent {i} action dim {j} = {str(arr[i, j])} is outside "
            f"[{spec.action_low[j]:.6g}, {spec.action_high[j]:.6g}]"
        )
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


@functools.lru_cache(maxsize=64)
def _bounds(
    low: tuple[float, ...], high: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, float | None, float | None]:
    """Action bounds as arrays, widened by 1e-6 so values cast from float32 pass, plus the
    common scalar bounds when every dimension shares them."""
    low_arr, high_arr = np.asarray(low, np.float64) - 1e-6, np.asarray(high, np.float64) + 1e-6
    same = len(set(low)) == 1 and len(set(high)) == 1
    return (
        low_arr,
        high_arr,
        float(low_arr[0]) if same else None,
        float(high_arr[0]) if same else None,
    )
