"""Networks for continuous control: the per-agent deterministic policy and a plain critic.

docs/design.md §4.2 (paper, Figure 1 top; TD7; FACMAC). Every agent shares the parameters; the agent
input ``x_i = [o_i, onehot(i)]`` (``sale_agent.agent_inputs``) carries the agent id, and
``h_i`` is the recurrent state of the shared agent GRU (``SALEAgent.unroll``). The policy is TD7's
actor with the agent's history added to its input::

    pi_i = scale(tanh(MLP([AvgL1Norm(Linear(x_i ++ h_i)), z^o_i])))      use_sale=True
    pi_i = scale(tanh(MLP([x_i ++ h_i])))                                 use_sale=False (FACMAC)

``z^o_i`` comes from the *fixed* SALE encoder (the *fixed target* one for the target policy), as
in TD7, and ``scale`` maps ``(-1, 1)`` onto the env's action bounds ``[low, high]``.

The SALE critic is ``SALEAgent.action_values`` with a continuous action vector
(docs/design.md §4.1/§4.2).
``MLPCritic`` is the plain per-agent critic of the FACMAC baseline, ``Q_i = MLP([x_i, h_i, a_i])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmsa_sale import avg_l1_norm

__all__ = ["ActionScale", "DeterministicActor", "MLPCritic"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive int")


def _check_last(where: str, name: str, tensor: Tensor, size: int, letter: str) -> None:
    if tensor.ndim < 1 or tensor.shape[-1] != size:
        raise ValueError(
            f"{where}: expected {name} of shape [..., {letter}={size}], got {list(tensor.shape)}"
        )


class ActionScale(nn.Module):
    """Affine map between the unit box ``(-1, 1)^A`` and the env's bounds ``[low, high]^A``.

    TD7 and TD3 add their noises in units of ``max_action``; with asymmetric bounds the natural
    unit is the half range, so noises here are in units of ``(high - low) / 2`` per dimension.
    The bounds are buffers (they move with ``.to(device)`` and live in the state dict).
    """

    low: Tensor
    high: Tensor

    def __init__(self, low: Sequence[float], high: Sequence[float]) -> None:
        super().__init__()
        low_t = torch.as_tensor(list(low), dtype=torch.float32)
        high_t = torch.as_tensor(list(high), dtype=torch.float32)
        if low_t.ndim != 1 or low_t.shape != high_t.shape or low_t.numel() == 0:
            raise ValueError(
                f"ActionScale: low {list(low)} and high {list(high)} must be equal-length, "
                "non-empty sequences"
            )
        if not bool(torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ValueError(
                f"ActionScale: bounds must be finite, got low={list(low)}, high={list(high)}"
            )
        if not bool((high_t > low_t).all()):
            raise ValueError(
                f"ActionScale: need high > low everywhere, got low={list(low)}, high={list(high)}"
            )
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)

    @property
    def action_dim(self) -> int:
        return int(self.low.shape[0])

    @property
    def half_range(self) -> Tensor:
        """``(high - low) / 2``, ``[A]``."""
        return (self.high - self.low) / 2

    def from_unit(self, unit: Tensor) -> Tensor:
        """``[..., A]`` in ``[-1, 1]`` -> ``[..., A]`` in ``[low, high]``."""
        _check_last("ActionScale.from_unit", "unit", unit, self.action_dim, "A")
        return self.low + (unit + 1) * self.half_range

    def to_unit(self, action: Tensor) -> Tensor:
        """``[..., A]`` in ``[low, high]`` -> ``[..., A]`` in ``[-1, 1]``."""
        _check_last("ActionScale.to_unit", "action", action, self.action_dim, "A")
        return (action - self.low) / self.half_range - 1

    def clip(self, action: Tensor) -> Tensor:
        """Clamp ``[..., A]`` into the bounds (after adding exploration or smoothing noise)."""
        _check_last("ActionScale.clip", "action", action, self.action_dim, "A")
        return torch.maximum(torch.minimum(action, self.high), self.low)

    def add_noise(
        self,
        action: Tensor,
        std: float,
        clip: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``clip_to_bounds(action + eps * half_range)``, ``eps ~ N(0, std)`` clipped to ``+-clip``.

        TD3/TD7: exploration uses ``std=0.1`` and no ``clip``; target policy smoothing uses
        ``std=0.2, clip=0.5``. ``generator`` makes the noise reproducible (exact resume).
        """
        if std < 0 or (clip is not None and clip < 0):
            raise ValueError(f"add_noise: std={std!r} and clip={clip!r} must be >= 0")
        noise = torch.randn(
            action.shape, generator=generator, device=action.device, dtype=action.dtype
        )
        noise = noise * std
        if clip is not None:
            noise = noise.clamp(-clip, clip)
        return self.clip(action + noise * self.half_range)


class DeterministicActor(nn.Module):
    """Shared deterministic policy head over agents (TD7 actor + the agent's history).

    Args:
        input_dim: size of the agent input ``x_i`` (``O + A + N``).
        hidden_dim: size of the agent GRU state ``h_i`` it reads.
        action_low, action_high: the env's bounds per action dimension (``A`` entries each).
        zs_dim: size of ``z^o`` (ignored when ``use_sale`` is False).
        width: width of the hidden layers (TD7 uses 256; 4.7's agent width is 64).
        use_sale: False gives the plain FACMAC actor, ``tanh(MLP([x_i, h_i]))``.
    """

    def __init__(
        self,
        *,
        input_dim: int,
        hidden_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        zs_dim: int = 64,
        width: int = 128,
        use_sale: bool = True,
    ) -> None:
        super().__init__()
        _check_positive(input_dim=input_dim, hidden_dim=hidden_dim, zs_dim=zs_dim, width=width)
        self.scale = ActionScale(action_low, action_high)
        self.input_dim, self.hidden_dim, self.zs_dim = input_dim, hidden_dim, zs_dim
        self.use_sale = use_sale
        self.embed = nn.Linear(input_dim + hidden_dim, width)
        body_in = width + zs_dim if use_sale else width
        # TD7 actor: ReLU body over [AvgL1Norm(Linear(s)), zs], tanh output.
        self.body = nn.Sequential(
            nn.Linear(body_in, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, self.scale.action_dim),
        )

    @property
    def action_dim(self) -> int:
        return self.scale.action_dim

    def pre_activation(self, inputs: Tensor, hidden: Tensor, zs: Tensor | None = None) -> Tensor:
        """The actor's output before ``tanh``: inputs ``[..., N, In]``, hidden ``[..., N, H]``,
        zs ``[..., N, Z]`` (SALE only) -> ``[..., N, A]``."""
        _check_last("DeterministicActor", "inputs", inputs, self.input_dim, "In")
        _check_last("DeterministicActor", "hidden", hidden, self.hidden_dim, "H")
        if inputs.shape[:-1] != hidden.shape[:-1]:
            raise ValueError(
                f"DeterministicActor: inputs {list(inputs.shape)} and hidden {list(hidden.shape)} "
                "must share leading axes [..., N]"
            )
        embedded = self.embed(torch.cat([inputs, hidden], dim=-1))
        if self.use_sale:
            if zs is None:
                raise ValueError(
                    "DeterministicActor(use_sale=True) needs zs (the fixed encoder's z^o)"
                )
            _check_last("DeterministicActor", "zs", zs, self.zs_dim, "Z")
            # TD7: AvgL1Norm on the state embedding before it meets zs (keeps scales comparable).
            body_in = torch.cat([avg_l1_norm(embedded), zs], dim=-1)
        else:
            body_in = torch.relu(embedded)
        return self.body(body_in)

    def unit_action(self, inputs: Tensor, hidden: Tensor, zs: Tensor | None = None) -> Tensor:
        """``tanh(pre_activation)`` in ``(-1, 1)``, ``[..., N, A]``."""
        return torch.tanh(self.pre_activation(inputs, hidden, zs))

    def forward(self, inputs: Tensor, hidden: Tensor, zs: Tensor | None = None) -> Tensor:
        """Deterministic action in ``[low, high]``, ``[..., N, A]``."""
        return self.scale.from_unit(self.unit_action(inputs, hidden, zs))


class MLPCritic(nn.Module):
    """Plain per-agent critic of the FACMAC baseline: ``Q_i = MLP([x_i, h_i, a_i])``.

    Shared over agents (the agent id is in ``x_i``). ``forward`` takes inputs ``[..., In]``,
    hidden ``[..., H]`` and actions ``[..., A]`` and returns ``[...]``.
    """

    def __init__(
        self, *, input_dim: int, hidden_dim: int, action_dim: int, width: int = 128
    ) -> None:
        super().__init__()
        _check_positive(
            input_dim=input_dim, hidden_dim=hidden_dim, action_dim=action_dim, width=width
        )
        self.input_dim, self.hidden_dim, self.action_dim = input_dim, hidden_dim, action_dim
        self.net = nn.Sequential(
            nn.Linear(input_dim + hidden_dim + action_dim, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 1),
        )

    def forward(self, inputs: Tensor, hidden: Tensor, actions: Tensor) -> Tensor:
        _check_last("MLPCritic", "inputs", inputs, self.input_dim, "In")
        _check_last("MLPCritic", "hidden", hidden, self.hidden_dim, "H")
        _check_last("MLPCritic", "actions", actions, self.action_dim, "A")
        return self.net(torch.cat([inputs, hidden, actions], dim=-1)).squeeze(-1)
