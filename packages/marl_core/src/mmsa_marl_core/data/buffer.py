"""`EpisodeBuffer`: a preallocated numpy ring of whole episodes (PyMARL-style replay).

Capacity is counted in episodes; each slot holds up to `max_len` transitions (the env's
`episode_limit`). Sampling is stateless: `sample(batch_size, rng)` draws slots with the caller's
`numpy.random.Generator` and returns them in `Batch.indices`. This is the only place that turns
numpy into torch.

    buffer = EpisodeBuffer(spec, capacity=5000, max_len=spec.episode_limit)
    buffer.add_episodes(obs=..., state=..., avail_actions=..., action=..., reward=...,
                        terminated=..., lengths=...)          # batch-major numpy, E episodes
    batch = buffer.sample(32, rng, device=device)             # time-major torch Batch
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmsa_envs import EnvSpec

from .batch import Batch

__all__ = ["EpisodeBuffer"]

_FIELDS = ("obs", "state", "avail_actions", "action", "reward", "terminated")


class EpisodeBuffer:
    """Ring buffer of `capacity` episodes of at most `max_len` transitions each."""

    def __init__(self, spec: EnvSpec, capacity: int, max_len: int) -> None:
        if capacity < 1:
            raise ValueError(f"EpisodeBuffer capacity={capacity} must be a positive int")
        if max_len < 1:
            raise ValueError(f"EpisodeBuffer max_len={max_len} must be a positive int")
        self.spec = spec
        self.capacity = int(capacity)
        self.max_len = int(max_len)
        c, length = self.capacity, self.max_len
        n, o, s, a = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
        self._shapes: dict[str, tuple[int, ...]] = {
            "obs": (length + 1, n, o),
            "state": (length + 1, s),
            "avail_actions": (length + 1, n, a),
            "action": (length, n) if spec.discrete else (length, n, a),
            "reward": (length,),
            "terminated": (length,),
        }
        dtypes: dict[str, Any] = {
            "obs": np.float32,
            "state": np.float32,
            "avail_actions": np.bool_,
            "action": np.int64 if spec.discrete else np.float32,
            "reward": np.float32,
            "terminated": np.bool_,
        }
        self._data = {k: np.zeros((c, *shape), dtypes[k]) for k, shape in self._shapes.items()}
        self._lengths = np.zeros(c, np.int64)
        self._pos = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes_filled(self) -> int:
        """Bytes of the slots that hold an episode: the arrays are allocated zeroed and their
        pages become resident as episodes are written, so this is what the buffer adds to the
        process's memory as it fills (up to ``capacity`` slots)."""
        per_slot = sum(x.nbytes for x in self._data.values()) // self.capacity
        return self._size * (per_slot + self._lengths.itemsize)

    # ------------------------------------------------------------------ writing
    def add_episodes(
        self,
        *,
        obs: np.ndarray,
        state: np.ndarray,
        avail_actions: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        lengths: np.ndarray,
    ) -> np.ndarray:
        """Store E episodes given batch-major: `obs [E, L+1, N, O]`, `state [E, L+1, S]`,
        `avail_actions [E, L+1, N, A]`, `action [E, L, N]` (or `[E, L, N, A]`), `reward [E, L]`,
        `terminated [E, L]`, `lengths [E]` (real transitions; `L <= max_len`). Entries past an
        episode's length are ignored. Returns the slots written, oldest episodes are overwritten.
        """
        given = {
            "obs": obs,
            "state": state,
            "avail_actions": avail_actions,
            "action": action,
            "reward": reward,
            "terminated": terminated,
        }
        lengths = np.asarray(lengths, np.int64)
        e = lengths.shape[0]
        if lengths.ndim != 1 or (lengths < 1).any() or (lengths > self.max_len).any():
            raise ValueError(
                f"lengths must be a [E] array with values in [1, max_len={self.max_len}], "
                f"got {lengths.tolist()}"
            )
        max_t = int(lengths.max()) if e else 0
        for k, arr in given.items():
            full = self._shapes[k]
            time_rows = arr.shape[1] if arr.ndim > 1 else -1
            extra = 1 if k in ("obs", "state", "avail_actions") else 0
            if (
                arr.ndim != len(full) + 1
                or arr.shape[0] != e
                or arr.shape[2:] != full[1:]
                or not max_t + extra <= time_rows <= full[0]
            ):
                time_axis = "L+1" if extra else "L"
                raise ValueError(
                    f"add_episodes: {k} has shape {arr.shape}; expected [E={e}, {time_axis}, "
                    f"{', '.join(map(str, full[1:]))}] with max(lengths)={max_t} <= L <= "
                    f"max_len={self.max_len}"
                )
        slots = (self._pos + np.arange(e)) % self.capacity
        for i, slot in enumerate(slots):
            n_t = int(lengths[i])
            for k, arr in given.items():
                dest = self._data[k][slot]
                rows = n_t + 1 if k in ("obs", "state", "avail_actions") else n_t
                dest[:rows] = arr[i, :rows]
                # Padding convention of `Batch`: zeros, and all actions available.
                dest[rows:] = True if k == "avail_actions" else 0
            self._lengths[slot] = n_t
        self._pos = int((self._pos + e) % self.capacity)
        self._size = min(self._size + e, self.capacity)
        return slots

    # ------------------------------------------------------------------ reading
    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        *,
        device: torch.device | str | None = None,
    ) -> Batch:
        """`batch_size` distinct episodes drawn uniformly with `rng`, padded to the longest.

        Stateless: the same `rng` state gives the same batch; the buffer keeps no cursor.
        """
        if batch_size > self._size:
            raise ValueError(
                f"cannot sample batch_size={batch_size} episodes from a buffer holding {self._size}"
            )
        indices = np.sort(rng.choice(self._size, size=batch_size, replace=False)).astype(np.int64)
        return self.get(indices, device=device)

    def get(self, indices: np.ndarray, *, device: torch.device | str | None = None) -> Batch:
        """The episodes in `indices` as a time-major `Batch` (on `device`, CPU if None)."""
        indices = np.asarray(indices, np.int64)
        if indices.ndim != 1 or (indices < 0).any() or (indices >= self._size).any():
            raise ValueError(
                f"indices must be a 1-d array of slots in [0, {self._size}), got {indices.tolist()}"
            )
        lengths = self._lengths[indices]
        t = int(lengths.max())
        out: dict[str, torch.Tensor] = {}
        for k in _FIELDS:
            rows = t + 1 if k in ("obs", "state", "avail_actions") else t
            chunk = self._data[k][indices, :rows]  # [B, T(+1), ...]
            out[k] = torch.from_numpy(np.ascontiguousarray(np.swapaxes(chunk, 0, 1)))
        mask = (np.arange(t)[:, None] < lengths[None, :]).astype(np.float32)  # [T, B]
        out["mask"] = torch.from_numpy(mask)
        out["terminated"] = out["terminated"].float()
        batch = Batch(
            obs=out["obs"],
            state=out["state"],
            avail_actions=out["avail_actions"],
            action=out["action"],
            reward=out["reward"],
            terminated=out["terminated"],
            mask=out["mask"],
            indices=indices,
        )
        return batch if device is None else batch.to(device)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the buffer, as tensors and ints (`weights_only`-safe)."""
        n = self._size
        return {
            "capacity": self.capacity,
            "max_len": self.max_len,
            "pos": self._pos,
            "size": n,
            "lengths": torch.from_numpy(self._lengths[:n].copy()),
            "data": {k: torch.from_numpy(v[:n].copy()) for k, v in self._data.items()},
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore from `state_dict()`; raises ValueError naming any mismatching field."""
        for key in ("capacity", "max_len"):
            if int(sd[key]) != getattr(self, key):
                raise ValueError(
                    f"buffer checkpoint has {key}={sd[key]}, this buffer has "
                    f"{key}={getattr(self, key)}"
                )
        n = int(sd["size"])
        for k, arr in self._data.items():
            stored = sd["data"][k]
            if tuple(stored.shape) != (n, *arr.shape[1:]):
                raise ValueError(
                    f"buffer checkpoint field {k!r} has shape {tuple(stored.shape)}, "
                    f"expected {(n, *arr.shape[1:])} for env {self.spec.id}"
                )
        for k, arr in self._data.items():
            arr[:] = 0
            arr[:n] = sd["data"][k].numpy()
        self._lengths[:] = 0
        self._lengths[:n] = sd["lengths"].numpy()
        self._pos = int(sd["pos"])
        self._size = n
