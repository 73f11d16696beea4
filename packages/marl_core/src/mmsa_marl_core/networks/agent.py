"""Shared-parameter recurrent agent and epsilon-greedy action selection (PyMARL RNNAgent).

Every agent runs the same network; its input is `x_t^i = [o_t^i, onehot(a_{t-1}^i), onehot(i)]`
(the last two optional), then `MLP -> GRUCell -> Linear` gives `Q_i(h_t^i, a)` for all actions.
The recurrent state `h` starts at zero at every episode start (QMIX, Rashid et al. 2018).

Exploration runs in numpy with the caller's `numpy.random.Generator`, so acting is reproducible
on any device and its RNG state is checkpointed with the loop's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "RNNAgent",
    "LinearSchedule",
    "onehot_last_actions",
    "onehot_taken",
    "epsilon_greedy",
    "greedy",
]


def onehot_taken(actions: np.ndarray, n_actions: int, device: torch.device) -> Tensor:
    """The actions just chosen (`[B, N]` int64, host) as the next step's last action `[B, N, A]`
    float32 on `device`: made on the host, so a GPU gets one copy, no kernel and no range
    check that waits for it."""
    return torch.from_numpy(np.eye(n_actions, dtype=np.float32)[actions]).to(device)


def onehot_last_actions(action: Tensor, n_actions: int) -> Tensor:
    """`[T, B, N]` int64 actions -> `[T+1, B, N, A]` one-hot of the *previous* action.

    Row 0 (episode start) is all zeros, row t holds `onehot(action[t-1])`.
    """
    t, b, n = action.shape
    out = torch.zeros(t + 1, b, n, n_actions, device=action.device)
    out[1:].scatter_(-1, action.unsqueeze(-1), 1.0)
    return out


class RNNAgent(nn.Module):
    """`Q_i = fc2(GRUCell(relu(fc1(x_i)), h_i))` with parameters shared over agents."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        n_agents: int,
        hidden_dim: int = 64,
        *,
        last_action: bool = True,
        agent_id: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("obs_dim", obs_dim),
            ("n_actions", n_actions),
            ("n_agents", n_agents),
            ("hidden_dim", hidden_dim),
        ):
            if value < 1:
                raise ValueError(f"RNNAgent {name}={value} must be a positive int")
        self.obs_dim, self.n_actions, self.n_agents = obs_dim, n_actions, n_agents
        self.hidden_dim = hidden_dim
        self.use_last_action, self.use_agent_id = last_action, agent_id
        self.input_dim = obs_dim + (n_actions if last_action else 0) + (n_agents if agent_id else 0)
        self.fc1 = nn.Linear(self.input_dim, hidden_dim)
        self.rnn = nn.GRUCell(hidden_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, n_actions)

    def build_inputs(self, obs: Tensor, last_action: Tensor) -> Tensor:
        """`obs [..., N, O]` + `last_action [..., N, A]` (one-hot) -> inputs `[..., N, I]`."""
        if obs.shape[-2:] != (self.n_agents, self.obs_dim):
            raise ValueError(
                f"obs must end in [N={self.n_agents}, O={self.obs_dim}], got {tuple(obs.shape)}"
            )
        parts = [obs]
        if self.use_last_action:
            if last_action.shape != (*obs.shape[:-1], self.n_actions):
                raise ValueError(
                    f"last_action must have shape {(*obs.shape[:-1], self.n_actions)}, "
                    f"got {tuple(last_action.shape)}"
                )
            parts.append(last_action)
        if self.use_agent_id:
            eye = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
            parts.append(eye.expand(*obs.shape[:-1], self.n_agents))
        return torch.cat(parts, dim=-1)

    def initial_hidden(self, batch_shape: tuple[int, ...], device: torch.device) -> Tensor:
        """Zero recurrent state `[*batch_shape, N, H]` (episode start)."""
        return torch.zeros(*batch_shape, self.n_agents, self.hidden_dim, device=device)

    def forward(self, inputs: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """One step: `inputs [..., N, I]`, `hidden [..., N, H]` -> `q [..., N, A]`, `hidden`."""
        lead = inputs.shape[:-1]
        x = torch.relu(self.fc1(inputs)).reshape(-1, self.hidden_dim)
        h = self.rnn(x, hidden.reshape(-1, self.hidden_dim))
        q = self.fc2(h)
        return q.reshape(*lead, self.n_actions), h.reshape(*lead, self.hidden_dim)

    def unroll(self, inputs: Tensor) -> Tensor:
        """Whole episodes from a zero state: `inputs [T, B, N, I]` -> `q [T, B, N, A]`.

        The input layer runs on all T at once; only the GRU cell steps through time.
        """
        t, b, n, _ = inputs.shape
        x = torch.relu(self.fc1(inputs)).reshape(t, b * n, self.hidden_dim)
        h = torch.zeros(b * n, self.hidden_dim, device=inputs.device, dtype=inputs.dtype)
        hs = []
        for step in range(t):
            h = self.rnn(x[step], h)
            hs.append(h)
        q = self.fc2(torch.stack(hs))
        return q.reshape(t, b, n, self.n_actions)


class LinearSchedule:
    """`start -> finish` linearly over `steps` env steps, then constant (PyMARL epsilon)."""

    def __init__(self, start: float, finish: float, steps: int) -> None:
        if steps < 0:
            raise ValueError(f"LinearSchedule steps={steps} must be >= 0")
        self.start, self.finish, self.steps = float(start), float(finish), int(steps)

    def __call__(self, env_steps: int) -> float:
        if self.steps == 0 or env_steps >= self.steps:
            return self.finish
        frac = env_steps / self.steps
        return self.start + frac * (self.finish - self.start)


def greedy(q: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Masked argmax: `q [..., A]`, `avail [..., A]` bool -> `[...]` int64 best available action."""
    if not avail.any(axis=-1).all():
        raise ValueError("every agent needs at least one available action")
    return np.where(avail, q, -np.inf).argmax(axis=-1).astype(np.int64)


def epsilon_greedy(
    q: np.ndarray, avail: np.ndarray, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """With probability `epsilon` a uniformly random *available* action, else `greedy`.

    Draws exactly two arrays from `rng` per call (coins `[...]`, then uniforms `[..., A]`), so
    the RNG stream does not depend on epsilon.
    """
    best = greedy(q, avail)
    coins = rng.random(best.shape)
    # A uniform random available action: argmax of iid uniforms over the available set.
    random_actions = np.where(avail, rng.random(avail.shape), -1.0).argmax(axis=-1)
    return np.where(coins < epsilon, random_actions, best).astype(np.int64)
