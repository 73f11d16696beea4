"""The MMSA agent network: a shared recurrent agent whose Q head reads SALE embeddings.

docs/design.md §4.1 (paper, Figure 1; SALE from TD7). Per agent ``i`` at time ``t`` the input is
``x = [o, onehot(a_{t-1}), onehot(i)]`` and

    h        = GRU(MLP(x), h_{t-1})                    history (partial observability)
    z^o      = f(x)                                     mmsa_sale ``Encoder.zs`` (ends in AvgL1Norm)
    z^oa(a)  = g(z^o, onehot(a))                        mmsa_sale ``Encoder.zsa``
    phi^oa(a)= AvgL1Norm(Linear([h, onehot(a)]))        mmsa_sale ``Phi``
    Q_i(a)   = head([z^o, z^oa(a), phi^oa(a)])              head="sale"
    Q_i(a)   = Linear(h)[a] + head([z^o, z^oa(a), phi^oa(a)])  head="residual"

The residual form (``head="residual"``) adds QMIX's per-action linear read-out of ``h`` to the
SALE head and starts the SALE head's last layer at zero, so the agent starts as the PyMARL RNN
agent and the SALE head learns a correction from ``[z^o, z^oa, phi^oa]`` (see the package README,
"how this reads the paper"). For a general action vector ``a`` (the continuous critic) the linear
term is ``<Linear(h), a>``, which is ``Linear(h)[a]`` for a one-hot ``a``.

Every action is evaluated in one pass as a ``[..., N, A, F]`` tensor: no Python loop over agents
or actions. The encoder is *passed in* rather than owned: the learner keeps TD7's three copies
(online, fixed, fixed target) and hands the fixed copy to the online agent and the fixed-target copy
to the target agent. ``z^o`` and ``z^oa`` depend only on ``x``, so over a batch of episodes they are
computed for all ``[T+1, B, N]`` at once; only the GRU runs step by step.

With ``use_sale=False`` (the No-SALE ablation, docs/design.md §4.6) the head reads the raw recurrent
state, ``Q_i = Linear(h)``: exactly the PyMARL RNN agent, with no encoder and no phi.

``action_values`` takes an arbitrary ``[..., K, A]`` action tensor, so the same head serves as the
per-agent critic for continuous actions (docs/design.md §4.2); ``q_of_action`` evaluates only the
one given discrete action per agent (the taken action in the TD loss, the greedy one in its target).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa_sale import Encoder, Phi, encoder_loss

from ..ops.td import gather_actions
from .agent import onehot_last_actions

__all__ = [
    "HEADS",
    "SALEAgent",
    "agent_inputs",
    "agent_sale_terms",
    "all_actions",
    "embedding_stats",
    "fixed_embedding_stats",
    "masked_greedy",
    "q_of_action",
]

HEADS = ("sale", "residual")
"""Allowed values of ``SALEAgent(head=...)`` (and of ``MMSAConfig.agent_head``)."""


def agent_inputs(obs: Tensor, last_action: Tensor) -> Tensor:
    """Build ``x = [o, a_{t-1}, onehot(i)]``.

    obs ``[..., N, O]``; last_action ``[..., N, A]`` (one-hot, or zeros at episode start; a
    continuous action vector for continuous control) -> ``[..., N, O + A + N]``.
    """
    if obs.shape[:-1] != last_action.shape[:-1]:
        raise ValueError(
            f"obs {tuple(obs.shape)} and last_action {tuple(last_action.shape)} must share "
            "leading axes [..., N]"
        )
    n_agents = obs.shape[-2]
    ids = torch.eye(n_agents, dtype=obs.dtype, device=obs.device)
    ids = ids.expand(*obs.shape[:-2], n_agents, n_agents)
    return torch.cat([obs, last_action.to(obs.dtype), ids], dim=-1)


def all_actions(n_actions: int, like: Tensor) -> Tensor:
    """One-hot of every action, ``[A, A]``, on ``like``'s device and dtype."""
    return torch.eye(n_actions, dtype=like.dtype, device=like.device)


def masked_greedy(q: Tensor, avail: Tensor) -> Tensor:
    """Best available action: q ``[..., A]``, avail ``[..., A]`` bool -> ``[...]`` int64."""
    if q.shape != avail.shape:
        raise ValueError(f"q {tuple(q.shape)} and avail {tuple(avail.shape)} must match")
    return q.masked_fill(~avail, float("-inf")).argmax(dim=-1)


class SALEAgent(nn.Module):
    """Shared-parameter recurrent agent with a SALE Q head (docs/design.md §4.1).

    Args:
        input_dim: size of ``x`` (``O + A + N``; see ``agent_inputs``).
        n_actions: ``A``, the number of discrete actions (or the action dims for a critic).
        hidden_dim: size of the MLP and of the GRU state ``h``.
        zs_dim: size ``Z`` of ``z^o`` and ``z^oa`` (must match the encoder passed in).
        phi_dim: size of ``phi^oa``.
        head_hidden: width of the two hidden layers of the Q head.
        use_sale: False gives the No-SALE agent ``Q = Linear(h)``.
        head: ``"sale"`` (the SALE head alone) or ``"residual"`` (``Linear(h)[a]`` plus the SALE
            head, whose last layer starts at zero); ignored without SALE.
    """

    def __init__(
        self,
        *,
        input_dim: int,
        n_actions: int,
        hidden_dim: int = 64,
        zs_dim: int = 64,
        phi_dim: int = 64,
        head_hidden: int = 64,
        use_sale: bool = True,
        head: str = "sale",
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head={head!r} must be one of {', '.join(HEADS)}")
        for name, value in [
            ("input_dim", input_dim),
            ("n_actions", n_actions),
            ("hidden_dim", hidden_dim),
            ("zs_dim", zs_dim),
            ("phi_dim", phi_dim),
            ("head_hidden", head_hidden),
        ]:
            if value < 1:
                raise ValueError(f"{name}={value} must be a positive integer")
        self.input_dim = input_dim
        self.n_actions = n_actions
        self.hidden_dim = hidden_dim
        self.zs_dim = zs_dim
        self.use_sale = use_sale
        self.head_kind = head if use_sale else "linear"
        self.mlp = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU())
        self.gru = nn.GRUCell(hidden_dim, hidden_dim)
        self.phi: Phi | None
        self.head: nn.Module
        self.linear_head: nn.Linear | None = None
        if use_sale:
            self.phi = Phi(hidden_dim, n_actions, phi_dim)
            # TD7's critic body: ELU layers over [embedding, zsa, zs].
            self.head = nn.Sequential(
                nn.Linear(2 * zs_dim + phi_dim, head_hidden),
                nn.ELU(),
                nn.Linear(head_hidden, head_hidden),
                nn.ELU(),
                nn.Linear(head_hidden, 1),
            )
            if head == "residual":
                # QMIX's read-out of h; the SALE head starts as a zero correction to it.
                self.linear_head = nn.Linear(hidden_dim, n_actions)
                last = self.head[-1]
                assert isinstance(last, nn.Linear)
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)
        else:
            self.phi = None
            self.head = nn.Linear(hidden_dim, n_actions)

    def initial_hidden(self, batch_shape: tuple[int, ...], device: torch.device) -> Tensor:
        """Zero GRU state ``[*batch_shape, H]`` (episode start)."""
        return torch.zeros(*batch_shape, self.hidden_dim, device=device)

    def recurrent(self, inputs: Tensor, hidden: Tensor) -> Tensor:
        """One GRU step: inputs ``[..., In]``, hidden ``[..., H]`` -> next hidden ``[..., H]``."""
        lead = inputs.shape[:-1]
        if inputs.shape[-1] != self.input_dim or hidden.shape != (*lead, self.hidden_dim):
            raise ValueError(
                f"inputs {tuple(inputs.shape)} / hidden {tuple(hidden.shape)} do not match "
                f"input_dim={self.input_dim}, hidden_dim={self.hidden_dim}"
            )
        flat = self.gru(
            self.mlp(inputs.reshape(-1, self.input_dim)), hidden.reshape(-1, self.hidden_dim)
        )
        return flat.reshape(*lead, self.hidden_dim)

    def unroll(self, inputs: Tensor, hidden0: Tensor | None = None) -> Tensor:
        """GRU over time: inputs ``[T, ..., In]`` -> hidden after each step ``[T, ..., H]``."""
        if hidden0 is None:
            hidden0 = self.initial_hidden(tuple(inputs.shape[1:-1]), inputs.device)
        # Project every step in one matmul; only the GRU cell is sequential.
        embedded = self.mlp(inputs)
        hidden = hidden0.reshape(-1, self.hidden_dim)
        outs = []
        for t in range(inputs.shape[0]):
            hidden = self.gru(embedded[t].reshape(-1, self.hidden_dim), hidden)
            outs.append(hidden)
        return torch.stack(outs).reshape(*inputs.shape[:-1], self.hidden_dim)

    def action_values(
        self, inputs: Tensor, hidden: Tensor, actions: Tensor, encoder: Encoder | None
    ) -> Tensor:
        """Q of K candidate actions: inputs ``[..., In]``, hidden ``[..., H]`` (the state *after*
        reading ``inputs``), actions ``[..., K, A]`` or ``[K, A]`` (broadcast) -> ``[..., K]``."""
        if not self.use_sale:
            raise RuntimeError("action_values needs the SALE head (use_sale=True)")
        if encoder is None or self.phi is None:
            raise ValueError("the SALE head needs an encoder (the fixed or fixed-target copy)")
        zs = encoder.zs(inputs).unsqueeze(-2)  # [..., 1, Z]: once per input, not per action
        # Leading axes broadcast in mmsa_sale: [..., 1, Z] with [..., K, A] -> [..., K, Z].
        zsa = encoder.zsa(zs, actions)
        phi = self.phi(hidden.unsqueeze(-2), actions)  # [..., K, P]
        # First head layer on [zs, zsa, phi] with its weight split in three (== Linear on the
        # concatenation): the zs part is computed once per input and broadcast over the K
        # actions, and the [.., K, 2Z+P] concatenation is never built.
        head = self.head
        assert isinstance(head, nn.Sequential)
        first = head[0]
        assert isinstance(first, nn.Linear)
        w_zs, w_zsa, w_phi = first.weight.split([self.zs_dim, self.zs_dim, phi.shape[-1]], 1)
        pre = F.linear(zsa, w_zsa, first.bias) + F.linear(phi, w_phi)
        pre = pre + F.linear(zs, w_zs)
        q = head[1:](pre).squeeze(-1)
        if self.linear_head is not None:
            # <Linear(h), a> for each candidate: Linear(h)[a] for one-hot actions.
            base = self.linear_head(hidden).unsqueeze(-2)  # [..., 1, A]
            q = q + (base * actions.to(base.dtype)).sum(-1)
        return q

    def q_values(self, inputs: Tensor, hidden: Tensor, encoder: Encoder | None) -> Tensor:
        """Q of every discrete action: inputs ``[..., In]``, hidden ``[..., H]`` -> ``[..., A]``."""
        if not self.use_sale:
            return self.head(hidden)
        return self.action_values(inputs, hidden, all_actions(self.n_actions, inputs), encoder)

    def forward(
        self, inputs: Tensor, hidden: Tensor, encoder: Encoder | None
    ) -> tuple[Tensor, Tensor]:
        """One acting step: ``(q [..., N, A], next hidden [..., N, H])``."""
        next_hidden = self.recurrent(inputs, hidden)
        return self.q_values(inputs, next_hidden, encoder), next_hidden


def q_of_action(
    agent: SALEAgent, x: Tensor, hidden: Tensor, action: Tensor, encoder: Encoder | None
) -> Tensor:
    """``Q_i`` of one given action per agent: x ``[M, N, In]``, hidden ``[M, N, H]``, action
    ``[M, N]`` int64 -> ``[M, N]``. The SALE head evaluates only that action (not all A)."""
    if not agent.use_sale:
        return gather_actions(agent.q_values(x, hidden, None), action)
    onehot = F.one_hot(action, agent.n_actions).to(x.dtype).unsqueeze(-2)  # [M, N, 1, A]
    return agent.action_values(x, hidden, onehot, encoder).squeeze(-1)


def embedding_stats(z: Tensor) -> tuple[Tensor, Tensor]:
    """Spread and effective rank of embeddings ``z [M, Z]`` (rows are samples).

    spread: the standard deviation over samples, averaged over the ``Z`` dimensions (for an
    AvgL1Norm'd ``z^o`` each row has mean ``|z|`` of 1, so this is relative to the scale);
    effective rank: ``exp(entropy(s / sum(s)))`` of the singular values ``s`` of the centred
    ``z`` (Roy & Vetterli 2007), between 1 (every sample on one line) and ``min(M, Z)``.
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"z {tuple(z.shape)} must be [M >= 2, Z]")
    z = z.float()
    spread = z.std(dim=0).mean()
    s = torch.linalg.svdvals(z - z.mean(dim=0, keepdim=True))
    p = s / s.sum().clamp(min=1e-12)
    erank = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
    return spread, erank


def agent_sale_terms(
    encoder: Encoder,
    task_head: nn.Linear | None,
    task_weight: float,
    x: Tensor,
    action: Tensor,
    next_x: Tensor,
    reward: Tensor,
    terminated: Tensor,
) -> dict[str, Tensor]:
    """The agent-side SALE loss terms of the online `encoder` on real steps: x, next_x
    ``[M, N, In]``, action ``[M, N, A]`` one-hot, reward and terminated ``[M]``.

    ``sale_agent``: TD7's ``||g(f(x_t), a_t) - sg(f(x_{t+1}))||^2``; with a `task_head` also
    ``sale_agent_task``, `task_weight` x (squared error of the reward read-out plus logistic
    loss of the termination read-out of ``z^oa(x_t, a_t)``, averaged over steps and agents:
    MR.Q's reward and termination targets)."""
    terms = {"sale_agent": encoder_loss(encoder, x, action, next_x)}
    if task_head is not None:
        out = task_head(encoder.zsa(encoder.zs(x), action))  # [M, N, 2]
        reward_loss = ((out[..., 0] - reward[:, None]) ** 2).mean()
        done = terminated.to(out.dtype)[:, None].expand(-1, x.shape[1])
        task = reward_loss + F.binary_cross_entropy_with_logits(out[..., 1], done)
        terms["sale_agent_task"] = task_weight * task
    return terms


def fixed_embedding_stats(
    encoder: Encoder, obs: Tensor, action: Tensor, mask: Tensor, n_actions: int
) -> dict[str, float]:
    """``diag_zs_spread`` / ``diag_zs_erank`` (`embedding_stats`) of `encoder`'s ``z^o`` on the
    rows of a batch that hold a real observation: obs ``[T+1, B, N, O]``, action ``[T, B, N]``,
    mask ``[T, B]``; {} with fewer than two rows."""
    with torch.no_grad():
        real = torch.cat([mask[:1] > 0, mask > 0])  # rows with a real observation
        x = agent_inputs(obs, onehot_last_actions(action, n_actions))[real]  # [M, N, In]
        if x.shape[0] * x.shape[1] < 2:
            return {}
        spread, erank = embedding_stats(encoder.zs(x).flatten(0, 1))
        return {"diag_zs_spread": float(spread), "diag_zs_erank": float(erank)}
