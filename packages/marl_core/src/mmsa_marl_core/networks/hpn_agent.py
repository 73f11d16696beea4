"""HPN's agent: a hyper-policy-network over entities (Hao et al., ICLR 2023).

"Boosting Multiagent Reinforcement Learning via Permutation Invariant and Permutation
Equivariant Networks" (public code: pymarl3, `hpns_rnn_agent.py`). The observation of agent `i`
splits, by the env's `EnvSpec.entities`, into own features `o_own`, allies `o_al^j` and enemies
`o_en^j`. The agent reads::

    x    = relu(W_own [o_own, onehot(a_prev), onehot(i)] + merge_heads(
               sum_j o_en^j W_en(o_en^j) + sum_j o_al^j W_al(o_al^j)))   # invariant (API)
    h    = GRUCell(x, h)
    Q(normal actions)  = W_q h + b_q                                     # no-op, stop, moves
    Q(attack enemy j)  = merge_heads(h . w_att(o_en^j) + b_att(o_en^j))   # equivariant (APE)

`W_en`, `W_al`, `w_att`, `b_att` are hypernetworks of the entity's own features (one MLP for
the enemies yields both `W_en` and the attack output, as pymarl3's `hpns` agent), so each
entity gets its own input weights and the sum over entities does not depend on their order;
permuting the enemies permutes the attack Q values the same way. HPN-QMIX
(`learners.hpn`) is `QLearner`'s QMIX with this agent.

`a_prev` (`obs_last_action`, off by default as in pymarl3's SMACv2 configs) names attack actions
by enemy index, so with it on, the agent is equivariant only where the previous action was not
an attack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa_envs import EntityLayout

from .agent import RNNAgent

__all__ = ["HPNAgent"]


class _MergeHeads(nn.Module):
    """`[..., heads, F] -> [..., F]`: a softmax-weighted sum over heads per feature (pymarl3
    `Merger`, weights start equal); the identity for one head."""

    def __init__(self, heads: int, features: int) -> None:
        super().__init__()
        self.heads = heads
        self.weight = nn.Parameter(torch.ones(heads, features)) if heads > 1 else None

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None:
            return x.squeeze(-2)
        return (torch.softmax(self.weight, dim=0) * x).sum(dim=-2)


def _hypernet(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _entity_sum(entities: Tensor, g: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """`sum_j sum_d e_j[d] W(e_j)[d, :]` for entities `e [..., M, D]` whose input weights come
    from a hypernetwork, `W(e_j) = reshape(weight @ g_j + bias, [D, F])` with `g_j [..., M, K]`
    the hypernetwork's hidden layer; `weight [D*F, K]`, `bias [D*F]` -> `[..., F]`.

    The same sum without building any `W(e_j)`: it equals
    `sum_{d,k} P[d, k] weight[(d, f), k] + sum_d E[d] bias[(d, f)]` with
    `P = sum_j e_j g_j^T [..., D, K]` and `E = sum_j e_j`, so each row costs one `D*K x F`
    matmul instead of `M` hypernetwork outputs of `D*F` values each.
    """
    d, k = entities.shape[-1], g.shape[-1]
    f = weight.shape[0] // d
    p = torch.einsum("...md,...mk->...dk", entities, g).flatten(-2)  # [..., D*K]
    v = weight.reshape(d, f, k).transpose(1, 2).reshape(d * k, f)
    return p @ v + entities.sum(-2) @ bias.reshape(d, f)


class HPNAgent(RNNAgent):
    """The HPN recurrent agent (module docstring), with `RNNAgent`'s interface.

    It takes the same inputs (`build_inputs`: `[obs, onehot(a_prev), onehot(i)]`), the same GRU
    state and returns Q values of all `A` actions in the env's action order, so `QLearner` drives
    it unchanged. It does not run `RNNAgent.__init__`: it has no `fc1`/`fc2`, only `rnn`.
    """

    own_index: Tensor
    """`[own_dim]` observation indices of the own features (buffer)."""
    action_order: Tensor
    """`[A]` position of each env action in `cat([normal, attack])` (buffer)."""

    def __init__(
        self,
        layout: EntityLayout,
        obs_dim: int,
        n_actions: int,
        n_agents: int,
        hidden_dim: int = 64,
        hyper_hidden: int = 64,
        heads: int = 1,
        *,
        last_action: bool = False,
        agent_id: bool = True,
    ) -> None:
        nn.Module.__init__(self)
        for name, value in (
            ("obs_dim", obs_dim),
            ("n_actions", n_actions),
            ("n_agents", n_agents),
            ("hidden_dim", hidden_dim),
            ("hyper_hidden", hyper_hidden),
            ("heads", heads),
        ):
            if value < 1:
                raise ValueError(f"HPNAgent {name}={value} must be a positive int")
        layout.check(obs_dim, n_actions)
        self.layout = layout
        self.obs_dim, self.n_actions, self.n_agents = obs_dim, n_actions, n_agents
        self.hidden_dim, self.heads = hidden_dim, heads
        self.use_last_action, self.use_agent_id = last_action, agent_id
        extra = (n_actions if last_action else 0) + (n_agents if agent_id else 0)
        self.input_dim = obs_dim + extra
        h, m = hidden_dim, layout.n_enemies

        # Own features plus the one-hot previous action and agent id: one linear map, the same
        # as pymarl3's fc1_own plus its id/action embedding tables (an embedding is a linear
        # map of a one-hot).
        self.own_in = nn.Linear(layout.own_dim + extra, h)
        # Enemies: one hypernetwork gives each enemy its input weight [De, heads*H], its
        # attack-Q weight [heads, H] and bias [heads] (pymarl3 hpns: hyper_enemy).
        de = layout.enemy_dim
        self.enemy_hyper = _hypernet(de, hyper_hidden, (de * h + h + 1) * heads)
        self.ally_hyper = (
            _hypernet(layout.ally_dim, hyper_hidden, layout.ally_dim * h * heads)
            if layout.n_allies
            else None
        )
        self.merge_in = _MergeHeads(heads, h)
        self.merge_out = _MergeHeads(heads, 1)
        self.rnn = nn.GRUCell(h, h)
        normal = [a for a in range(n_actions) if a not in set(layout.attack_actions)]
        self.normal_q = nn.Linear(h, len(normal))
        # q = cat([normal, attack])[..., order] puts every action back at its env index.
        order = torch.empty(n_actions, dtype=torch.long)
        order[torch.tensor([*normal, *layout.attack_actions])] = torch.arange(n_actions)
        self.register_buffer("own_index", torch.tensor(layout.own_indices), persistent=False)
        self.register_buffer("action_order", order, persistent=False)
        self._n_enemies = m

    # ------------------------------------------------------------------ layers
    def encode(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The permutation-invariant input layer: `inputs [..., N, I]` -> GRU input
        `x [..., N, H]`, and each enemy's attack-Q weight `[..., N, M, heads, H]` and bias
        `[..., N, M, heads]` for `q_from`."""
        lay, h, k = self.layout, self.hidden_dim, self.heads
        obs, extra = inputs[..., : self.obs_dim], inputs[..., self.obs_dim :]
        lead = obs.shape[:-1]
        own = torch.cat([obs.index_select(-1, self.own_index), extra], dim=-1)
        enemies = obs[..., lay.enemy_start : lay.enemy_stop].reshape(
            *lead, lay.n_enemies, lay.enemy_dim
        )
        first, last = self.enemy_hyper[0], self.enemy_hyper[2]
        assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
        g = torch.relu(first(enemies))  # [..., M, hyper_hidden]
        rows = lay.enemy_dim * h * k  # of the last layer: W_en; the rest: w_att and b_att
        w_in, w_att = last.weight[:rows], last.weight[rows:]
        b_in, b_att = last.bias[:rows], last.bias[rows:]
        # sum over enemies j and features d of o_en^j[d] * W_en(o_en^j)[d, :]: order-free in j
        entity_sum = _entity_sum(enemies, g, w_in, b_in)
        if self.ally_hyper is not None:
            allies = obs[..., lay.ally_start : lay.ally_stop].reshape(
                *lead, lay.n_allies, lay.ally_dim
            )
            first_al, last_al = self.ally_hyper[0], self.ally_hyper[2]
            assert isinstance(first_al, nn.Linear) and isinstance(last_al, nn.Linear)
            g_al = torch.relu(first_al(allies))
            entity_sum = entity_sum + _entity_sum(allies, g_al, last_al.weight, last_al.bias)
        x = torch.relu(self.own_in(own) + self.merge_in(entity_sum.reshape(*lead, k, h)))
        out = F.linear(g, w_att, b_att)  # the attack-Q weight and bias of each enemy
        w_out = out[..., : h * k].reshape(*lead, lay.n_enemies, k, h)
        b_out = out[..., h * k :]  # [..., M, heads]
        return x, w_out, b_out

    def q_from(self, hidden: Tensor, w_out: Tensor, b_out: Tensor) -> Tensor:
        """The permutation-equivariant output layer: `hidden [..., N, H]` -> `q [..., N, A]`;
        attack action of enemy j from enemy j's own weights, the others from one linear map."""
        q_attack = torch.einsum("...h,...mkh->...mk", hidden, w_out) + b_out  # [..., M, heads]
        q_attack = self.merge_out(q_attack.unsqueeze(-1)).squeeze(-1)  # [..., M]
        q = torch.cat([self.normal_q(hidden), q_attack], dim=-1)
        return q.index_select(-1, self.action_order)

    # ------------------------------------------------------------------ RNNAgent interface
    def forward(self, inputs: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """One step: `inputs [..., N, I]`, `hidden [..., N, H]` -> `q [..., N, A]`, `hidden`."""
        lead = inputs.shape[:-1]
        x, w_out, b_out = self.encode(inputs)
        h = self.rnn(x.reshape(-1, self.hidden_dim), hidden.reshape(-1, self.hidden_dim))
        h = h.reshape(*lead, self.hidden_dim)
        return self.q_from(h, w_out, b_out), h

    def unroll(self, inputs: Tensor) -> Tensor:
        """Whole episodes from a zero state: `inputs [T, B, N, I]` -> `q [T, B, N, A]`.

        Both entity layers run on all T at once; only the GRU cell steps through time.
        """
        t, b, n, _ = inputs.shape
        x, w_out, b_out = self.encode(inputs)
        x = x.reshape(t, b * n, self.hidden_dim)
        h = torch.zeros(b * n, self.hidden_dim, device=inputs.device, dtype=inputs.dtype)
        hs = []
        for step in range(t):
            h = self.rnn(x[step], h)
            hs.append(h)
        return self.q_from(torch.stack(hs).reshape(t, b, n, self.hidden_dim), w_out, b_out)
