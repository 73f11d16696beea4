"""`QLearner`: QMIX and VDN with double Q, masked TD and hard target updates (PyMARL/EPyMARL).

`update(batch)` reads top to bottom:
1. unroll the agent over all `T+1` observation rows (recurrent state from zero) -> `Q_i`;
2. unroll the target agent the same way; pick next actions with the online network (double Q),
   evaluate them with the target network, mix with the target mixer -> `Q_tot^-(t+1)`;
3. `y_t = r_t + gamma (1 - terminated_t) Q_tot^-(t+1)` (truncation bootstraps);
4. masked mean squared TD error over real transitions, one guarded Adam/RMSprop step with
   gradient-norm clipping; every `target_update_interval` applied updates, hard target copy.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from mmsa_envs import EnvSpec

from ..data.batch import Batch
from ..networks.agent import (
    LinearSchedule,
    RNNAgent,
    epsilon_greedy,
    greedy,
    onehot_last_actions,
    onehot_taken,
)
from ..networks.mixers import QMIX, VDN, Mixer
from ..ops.optim import RunningMeanStd, guarded_step, make_optimizer, scalars
from ..ops.precision import low_precision
from ..ops.td import gather_actions, masked_argmax, masked_mean, td_metrics, td_targets
from ..registry import register_algo

__all__ = ["EpsilonGreedyActing", "QLearnerConfig", "QLearner"]


@dataclass(frozen=True)
class QLearnerConfig:
    """Hyper-parameters of QMIX/VDN (defaults: docs/design.md §4.7, PyMARL/EPyMARL)."""

    gamma: float = 0.99
    """Discount factor."""
    lr: float = 5e-4
    """Learning rate."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Optimiser: 'adam' (EPyMARL) or 'rmsprop' (PyMARL)."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant (PyMARL optim_alpha)."""
    rmsprop_eps: float = 1e-5
    """RMSprop epsilon (PyMARL optim_eps)."""
    grad_norm_clip: float = 10.0
    """Global gradient-norm clip."""
    target_update_interval: int = 200
    """Hard copy online -> target every this many applied updates."""
    double_q: bool = True
    """Select next actions with the online agent, evaluate with the target (double Q)."""
    standardise_rewards: bool = False
    """Standardise rewards with a running mean/std before the TD target (EPyMARL)."""
    agent_hidden: int = 64
    """Width of the agent MLP and GRU."""
    obs_last_action: bool = True
    """Feed the one-hot previous action to the agent."""
    obs_agent_id: bool = True
    """Feed the one-hot agent index to the agent (shared parameters)."""
    mixer_embed_dim: int = 32
    """QMIX mixing-network width (ignored by VDN)."""
    hypernet_hidden: int = 64
    """QMIX hypernetwork hidden width (ignored by VDN)."""
    epsilon_start: float = 1.0
    """Exploration epsilon at env step 0."""
    epsilon_finish: float = 0.05
    """Exploration epsilon after the anneal."""
    epsilon_anneal_steps: int = 50_000
    """Env steps over which epsilon falls linearly from start to finish."""

    def __post_init__(self) -> None:
        unit, positive = (0.0, 1.0), (0.0, math.inf)
        checks = {  # name: (allowed range, whether its lower end is allowed)
            "gamma": (unit, True),
            "lr": (positive, False),
            "adam_eps": (positive, False),
            "rmsprop_alpha": (unit, True),
            "rmsprop_eps": (positive, False),
            "grad_norm_clip": (positive, False),
            "target_update_interval": ((1, math.inf), True),
            "agent_hidden": ((1, math.inf), True),
            "mixer_embed_dim": ((1, math.inf), True),
            "hypernet_hidden": ((1, math.inf), True),
            "epsilon_start": (unit, True),
            "epsilon_finish": (unit, True),
            "epsilon_anneal_steps": ((0, math.inf), True),
        }
        for name, ((low, high), closed) in checks.items():
            value = getattr(self, name)
            above = low <= value if closed else low < value
            if not (math.isfinite(value) and above and value <= high):
                allowed = (
                    f"in [{low}, {high}]"
                    if high != math.inf
                    else (f">= {low}" if closed else f"> {low}")
                )
                raise ValueError(
                    f"QLearnerConfig.{name}={value!r} is out of range (allowed: {allowed})"
                )
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(
                f"QLearnerConfig.optimizer={self.optimizer!r} is not allowed; "
                "use 'adam' or 'rmsprop'"
            )

    def build_optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The configured optimiser over `params` (parameters or param-group dicts), default
        learning rate `lr`."""
        return make_optimizer(
            params,
            self.optimizer,
            self.lr,
            adam_eps=self.adam_eps,
            rmsprop_alpha=self.rmsprop_alpha,
            rmsprop_eps=self.rmsprop_eps,
        )

    def build_epsilon(self) -> LinearSchedule:
        """The exploration schedule: epsilon by env step."""
        return LinearSchedule(self.epsilon_start, self.epsilon_finish, self.epsilon_anneal_steps)


class EpsilonGreedyActing:
    """Acting of the discrete learners (`QLearner`, `HPNQLearner`, `MMSALearner`): epsilon-greedy
    (explore) or greedy actions over the available ones from the agents' `q_values`, the taken
    actions one-hot as the next step's previous action. Needs `spec`, `device`, `epsilon`."""

    spec: EnvSpec
    device: torch.device
    epsilon: LinearSchedule

    def q_values(
        self, obs: np.ndarray, state: tuple[Tensor, Tensor]
    ) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        """Agent Q-values `[B, N, A]` for one step, and the next recurrent state (hidden only)."""
        raise NotImplementedError

    def act(
        self,
        obs: np.ndarray,
        avail_actions: np.ndarray,
        state: tuple[Tensor, Tensor],
        *,
        env_steps: int,
        explore: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        """Epsilon-greedy (explore) or greedy actions `[B, N]` over available actions."""
        q, (hidden, _) = self.q_values(obs, state)
        if explore:
            actions = epsilon_greedy(q, avail_actions, self.epsilon(env_steps), rng)
        else:
            actions = greedy(q, avail_actions)
        return actions, (hidden, onehot_taken(actions, self.spec.n_actions, self.device))

    def exploration_rate(self, env_steps: int) -> float:
        return self.epsilon(env_steps)


class QLearner(EpsilonGreedyActing):
    """Value-decomposition Q-learning; `mixer` is 'qmix' or 'vdn'. Implements `Learner`."""

    def __init__(
        self,
        spec: EnvSpec,
        config: QLearnerConfig,
        device: torch.device | str,
        mixer: Literal["qmix", "vdn"] = "qmix",
    ) -> None:
        if not spec.discrete:
            raise ValueError(
                f"QLearner needs discrete actions; env {spec.id!r} is {spec.action_kind}"
            )
        self.spec, self.config, self.device = spec, config, torch.device(device)
        agent = RNNAgent(
            spec.obs_dim,
            spec.n_actions,
            spec.n_agents,
            config.agent_hidden,
            last_action=config.obs_last_action,
            agent_id=config.obs_agent_id,
        )
        self.mixer: Mixer
        if mixer == "qmix":
            self.mixer = QMIX(
                spec.n_agents, spec.state_dim, config.mixer_embed_dim, config.hypernet_hidden
            )
        elif mixer == "vdn":
            self.mixer = VDN(spec.n_agents, spec.state_dim)
        else:
            raise ValueError(f"mixer={mixer!r} is not allowed; use 'qmix' or 'vdn'")
        self.mixer.to(self.device)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.use_agent(agent)
        self.epsilon = config.build_epsilon()
        self.reward_stats = RunningMeanStd()
        self.updates = 0
        self.nonfinite_updates = 0

    def use_agent(self, agent: RNNAgent) -> None:
        """Make `agent` (on this learner's device) the online agent, with its target copy and
        a fresh optimiser over it and the mixer (a subclass swaps in its own agent this way)."""
        self.agent = agent.to(self.device)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.params: list[nn.Parameter] = [*self.agent.parameters(), *self.mixer.parameters()]
        self.optimizer = self.config.build_optimizer(self.params)

    # ------------------------------------------------------------------ acting
    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Zero GRU state `[B, N, H]` and no previous action `[B, N, A]`."""
        n, a = self.spec.n_agents, self.spec.n_actions
        hidden = self.agent.initial_hidden((batch_size,), self.device)
        return hidden, torch.zeros(batch_size, n, a, device=self.device)

    @torch.no_grad()
    def q_values(
        self, obs: np.ndarray, state: tuple[Tensor, Tensor]
    ) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        """Agent Q-values `[B, N, A]` for one step, and the next recurrent state (hidden only)."""
        hidden, last_action = state
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        q, hidden = self.agent(self.agent.build_inputs(obs_t, last_action), hidden)
        return q.cpu().numpy(), (hidden, last_action)

    # ------------------------------------------------------------------ learning
    def unroll(self, agent: RNNAgent, batch: Batch) -> Tensor:
        """Q-values of every agent at every observation row: `[T+1, B, N, A]`."""
        last = onehot_last_actions(batch.action, self.spec.n_actions)
        return agent.unroll(agent.build_inputs(batch.obs, last))

    def update(self, batch: Batch) -> dict[str, float]:
        cfg = self.config
        reward, mask, terminated = batch.reward, batch.mask, batch.terminated
        if cfg.standardise_rewards:
            self.reward_stats.update(reward[mask > 0])
            reward = self.reward_stats.normalise(reward)

        # --- online Q_i at every observation row, and the Q_i of the actions taken
        q_all = self.unroll(self.agent, batch)  # [T+1, B, N, A]
        q_taken = gather_actions(q_all[:-1], batch.action)  # [T, B, N]

        # --- target: Q_tot^-(t+1) with double-Q action selection under availability masks
        with torch.no_grad():
            with low_precision(self.device):
                target_q_all = self.unroll(self.target_agent, batch)[1:].float()  # [T, B, N, A]
            next_avail = batch.avail_actions[1:]
            if cfg.double_q:
                next_actions = masked_argmax(q_all[1:].detach(), next_avail)
                target_q = gather_actions(target_q_all, next_actions)
            else:
                target_q = target_q_all.masked_fill(~next_avail, float("-inf")).amax(dim=-1)
            next_q_tot = self.target_mixer(target_q, batch.state[1:])  # [T, B]
            targets = td_targets(reward, terminated, next_q_tot, cfg.gamma)

        # --- masked TD loss and one guarded optimiser step
        q_tot = self.mixer(q_taken, batch.state[:-1])  # [T, B]
        td_error = q_tot - targets
        loss = masked_mean(td_error**2, mask)
        applied, grad_norm = guarded_step(loss, self.optimizer, self.params, cfg.grad_norm_clip)
        if applied:
            self.updates += 1
            if self.updates % cfg.target_update_interval == 0:
                self.update_targets()
        else:
            self.nonfinite_updates += 1

        return scalars(  # one device sync for all of them
            {
                "loss": loss,
                **td_metrics(td_error, q_tot, targets, mask),
                "grad_norm": grad_norm,
                "skipped": 0.0 if applied else 1.0,
            }
        )

    def update_targets(self) -> None:
        """Hard copy online -> target (QMIX/DQN)."""
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "mixer": self.mixer.state_dict(),
            "target_agent": self.target_agent.state_dict(),
            "target_mixer": self.target_mixer.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "reward_stats": self.reward_stats.state_dict(),
            "updates": self.updates,
            "nonfinite_updates": self.nonfinite_updates,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        modules = {
            "agent": self.agent,
            "mixer": self.mixer,
            "target_agent": self.target_agent,
            "target_mixer": self.target_mixer,
        }
        missing = [k for k in (*modules, "optimizer", "updates") if k not in state_dict]
        if missing:
            raise ValueError(f"QLearner checkpoint lacks {missing}")
        for name, module in modules.items():
            try:
                module.load_state_dict(state_dict[name])
            except RuntimeError as err:
                raise ValueError(f"QLearner checkpoint does not match this {name}: {err}") from err
        # deepcopy: Optimizer.load_state_dict keeps references to the given state tensors.
        self.optimizer.load_state_dict(copy.deepcopy(state_dict["optimizer"]))
        self.reward_stats.load_state_dict(state_dict["reward_stats"])
        self.updates = int(state_dict["updates"])
        self.nonfinite_updates = int(state_dict["nonfinite_updates"])


def _qmix(spec: EnvSpec, config: QLearnerConfig, device: torch.device) -> QLearner:
    return QLearner(spec, config, device, mixer="qmix")


def _vdn(spec: EnvSpec, config: QLearnerConfig, device: torch.device) -> QLearner:
    return QLearner(spec, config, device, mixer="vdn")


register_algo("qmix", _qmix, QLearnerConfig)
register_algo("vdn", _vdn, QLearnerConfig)
