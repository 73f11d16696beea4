"""`WorldModel`: joint SALE -> VAE-1 -> VAE-2 (GRU + Gaussian latent), decoders, imagination.

One transition (docs/design.md §4.3), from model state `m_t = (h_t, y_t)` and joint action `a_t`:

    u_t      = [z^{sa}, z^s, phi^{sa}](s_t, a_t)        s_t real on data, decoded in imagination
    x_t      ~ q(x | u_t),  u'_t = dec(x_t)              VAE-1
    h_{t+1}  = GRU(h_t, [x_t, u'_t])                     VAE-2, deterministic path
    y_{t+1}  ~ p(y | h_{t+1})                            prior (imagination)
    y_{t+1}  ~ q(y | h_{t+1}, enc(s_{t+1}, o_{t+1}))     posterior (data)

On data the GRU input depends only on the batch, so `observe` runs the whole sequence through one
`nn.GRU` call (no Python loop over time); `imagine` steps it H times from every start state at once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._batch import EpisodeBatch, prepare_batch
from ._checks import check_action, check_state
from ._config import WorldModelConfig
from ._embedding import JointEmbedding
from ._gaussian import kl_balanced, kl_gaussian, kl_standard_normal
from ._networks import MLP, VAE1, Decoders, GaussianMLP, pack_rnn
from ._types import Imagination, ModelState, Observation, Policy

__all__ = ["WorldModel"]


class WorldModel(nn.Module):
    """SALE-augmented VAE world model of a team of `N` agents (docs/design.md §4.3).

    Args:
        n_agents, obs_dim, state_dim, n_actions: `N`, `O`, `S`, `A` of the env.
        action_kind: "discrete" (actions `[..., N]` int64, one-hot inside) or "continuous"
            (`[..., N, A]` float); the joint action is the concatenation over agents.
        config: sizes, switches and loss scales.
    """

    def __init__(
        self,
        *,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        n_actions: int,
        action_kind: str,
        config: WorldModelConfig = WorldModelConfig(),  # noqa: B008 (frozen, immutable)
    ) -> None:
        super().__init__()
        for name, value in (
            ("n_agents", n_agents),
            ("obs_dim", obs_dim),
            ("state_dim", state_dim),
            ("n_actions", n_actions),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WorldModel: {name}={value!r} must be a positive int")
        if action_kind not in ("discrete", "continuous"):
            raise ValueError(
                f"WorldModel: action_kind={action_kind!r} is not allowed; "
                "use 'discrete' or 'continuous'"
            )
        if not isinstance(config, WorldModelConfig):
            raise TypeError(f"WorldModel: config must be a WorldModelConfig, got {config!r}")
        self.n_agents, self.obs_dim, self.state_dim = n_agents, obs_dim, state_dim
        self.n_actions, self.action_kind = n_actions, action_kind
        self.discrete = action_kind == "discrete"
        self.config = config
        c = config
        self.deter_dim = c.deter_dim
        self.stoch_dim = c.stoch_per_agent * n_agents
        self.feature_dim = self.deter_dim + self.stoch_dim
        joint_action_dim = n_agents * n_actions

        self.embedding = JointEmbedding(state_dim, joint_action_dim, c)
        u_dim = self.embedding.out_dim
        self.vae1 = VAE1(u_dim, c.vae1_latent_dim, c.hidden, c.activation, c.min_std, c.layer_norm)
        self.gru = nn.GRU(c.vae1_latent_dim + u_dim, c.deter_dim)
        self.prior_net = GaussianMLP(
            c.deter_dim, c.hidden, self.stoch_dim, c.activation, c.min_std, c.layer_norm
        )
        self.data_encoder = MLP(
            state_dim + n_agents * obs_dim, c.hidden, c.embed_dim, 1, c.activation, c.layer_norm
        )
        self.posterior_net = GaussianMLP(
            c.deter_dim + c.embed_dim,
            c.hidden,
            self.stoch_dim,
            c.activation,
            c.min_std,
            c.layer_norm,
        )
        self.decoders = Decoders(
            feature_dim=self.feature_dim,
            n_agents=n_agents,
            obs_dim=obs_dim,
            state_dim=state_dim,
            n_actions=n_actions,
            discrete=self.discrete,
            hidden=c.hidden,
            activation=c.activation,
            layer_norm=c.layer_norm,
        )

    # ------------------------------------------------------------------ model state
    def initial(self, batch_shape: tuple[int, ...]) -> ModelState:
        """Zero `h` and `y` of shape `[*batch_shape, Dh]`, `[*batch_shape, Dy]`; the first model
        state `m_0` of an episode is the posterior on `(s_0, o_0)` from this `h_0`."""
        ref = self.prior_net.hidden.weight
        shape = tuple(batch_shape)
        return ModelState(
            torch.zeros(*shape, self.deter_dim, dtype=ref.dtype, device=ref.device),
            torch.zeros(*shape, self.stoch_dim, dtype=ref.dtype, device=ref.device),
        )

    def features(self, state: ModelState) -> Tensor:
        """`m = [h, y]`: `[..., Dh] + [..., Dy] -> [..., D]`."""
        check_state("WorldModel.features", state, self.deter_dim, self.stoch_dim)
        return torch.cat([state.deter, state.stoch], dim=-1)

    # ------------------------------------------------------------------ helpers
    def joint_action(self, action: Tensor) -> Tensor:
        """Per-agent actions `[..., N]` int64 or `[..., N, A]` float -> joint `[..., N*A]`."""
        dtype = self.prior_net.hidden.weight.dtype
        if self.discrete:
            return F.one_hot(action, self.n_actions).to(dtype).flatten(-2)
        return action.to(dtype).flatten(-2)

    def _transition(
        self, deter: Tensor, state: Tensor, joint_action: Tensor, sample: bool
    ) -> Tensor:
        """One step of the deterministic path: `h_t, s_t, a_t -> h_{t+1}` over `[B', ...]`."""
        u = self.embedding(state, joint_action)
        x_dist = self.vae1.encode(u)
        x = x_dist.rsample() if sample else x_dist.mean
        inputs = torch.cat([x, self.vae1.decode(x)], dim=-1)
        _, deter_next = self.gru(inputs.unsqueeze(0), deter.unsqueeze(0).contiguous())
        return deter_next.squeeze(0)

    def _avail(self, features: Tensor) -> Tensor:
        """Decoded available actions `[..., N, A]` bool: logits > 0, and at least one per agent
        (the most likely one when none passes), so a policy always has a legal action."""
        logits = self.decoders.avail_logits(features)
        if logits is None:
            lead = features.shape[:-1]
            return torch.ones(
                *lead, self.n_agents, self.n_actions, dtype=torch.bool, device=features.device
            )
        avail = logits > 0
        best = F.one_hot(logits.argmax(-1), self.n_actions).bool()
        return avail | (best & ~avail.any(-1, keepdim=True))

    # ------------------------------------------------------------------ observe
    def _observe_all(self, batch: EpisodeBatch, sample: bool = True) -> Observation:
        """`observe` plus the distributions and VAE-1 terms that `losses` needs; with
        `sample=False` (diagnostics) `x` and `y` are the means instead of samples."""
        data = prepare_batch(
            batch,
            n_agents=self.n_agents,
            obs_dim=self.obs_dim,
            state_dim=self.state_dim,
            n_actions=self.n_actions,
            discrete=self.discrete,
        )
        state, obs = data.state, data.obs
        b = state.shape[1]
        # Joint SALE of the real (s_t, a_t) and VAE-1, for all t at once.
        u, sale_error = self.embedding.sequence(state, self.joint_action(data.action))
        x_dist = self.vae1.encode(u)
        x = x_dist.rsample() if sample else x_dist.mean
        u_rec = self.vae1.decode(x)
        # VAE-2: h_{t+1} = GRU(h_t, [x_t, u'_t]); the input does not depend on y, so one call.
        h0 = self.initial((b,)).deter
        pack_rnn(self.gru)  # see _rollout_states
        deter_seq, _ = self.gru(torch.cat([x, u_rec], dim=-1), h0.unsqueeze(0))
        deter = torch.cat([h0.unsqueeze(0), deter_seq], dim=0)  # [T+1, B, Dh]
        prior_dist = self.prior_net(deter)
        embed = self.data_encoder(torch.cat([state, obs.flatten(-2)], dim=-1))
        post_dist = self.posterior_net(torch.cat([deter, embed], dim=-1))
        return Observation(
            posterior=ModelState(deter, post_dist.rsample() if sample else post_dist.mean),
            prior=ModelState(deter, prior_dist.rsample() if sample else prior_dist.mean),
            post_dist=post_dist,
            prior_dist=prior_dist,
            u=u,
            x_dist=x_dist,
            u_rec=u_rec,
            sale_error=sale_error,
            data=data,
        )

    def observe(self, batch: EpisodeBatch) -> tuple[ModelState, ModelState]:
        """Posterior and prior model states `[T+1, B, ...]` of a batch (`m_0` at row 0)."""
        seen = self._observe_all(batch)
        return seen.posterior, seen.prior

    # ------------------------------------------------------------------ imagine
    def imagine(self, start: ModelState, policy: Policy, horizon: int) -> Imagination:
        """Roll the prior `horizon` steps from every start state at once.

        Args:
            start: `[B', Dh]`, `[B', Dy]` model states, typically every posterior state of a
                batch flattened (`T+1` times `B`).
            policy: called exactly `horizon` times, at step k with the decoded observations
                `[B', N, O]` and available actions `[B', N, A]` (bool) of model state k; returns
                `[B', N]` int64 (discrete) or `[B', N, A]` float (continuous). Wrap it in
                `torch.no_grad()` when its choice must not carry gradient.
            horizon: `H >= 1`.

        Returns:
            `Imagination` with `H+1` states (the start first) and `H` actions, rewards and
            continue probabilities. Samples `x` and `y` (reparameterised), so gradients reach the
            model unless the caller detaches.
        """
        return self._rollout(start, horizon, self._checked(policy, start, horizon), sample=True)

    def imagine_features(
        self, start: ModelState, policy: Policy, horizon: int, *, check_actions: bool = True
    ) -> Tensor:
        """`imagine(start, policy, horizon).features` (`[H+1, B', D]`) without the outputs the
        rollout code does not read: no reward or continue heads, no decoding of the last state.
        Same random draws as `imagine`, so under the same seed the features are equal.

        `check_actions=False` skips the range check of each policy output, the one step that
        reads a value back from the device: for a policy whose actions are in range by
        construction (an argmax), so that the whole rollout can run inside a CUDA graph. The
        shapes and dtypes are still checked."""
        choose = self._checked(policy, start, horizon, check_values=check_actions)
        states, _, _, _ = self._rollout_states(start, horizon, choose, sample=True)
        return torch.cat(states, dim=-1)

    def _checked(
        self, policy: Policy, start: ModelState, horizon: int, *, check_values: bool = True
    ) -> Callable[[int, Tensor, Tensor], Tensor]:
        """Validate `imagine`'s arguments; wrap `policy` so that each output is checked."""
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"WorldModel.imagine: horizon={horizon!r} must be a positive int")
        if not callable(policy):
            raise TypeError(f"WorldModel.imagine: policy must be callable, got {policy!r}")
        check_state("WorldModel.imagine", start, self.deter_dim, self.stoch_dim, batch_ndim=1)
        size = start.deter.shape[0]

        def choose(step: int, obs_hat: Tensor, avail_hat: Tensor) -> Tensor:
            action = policy(obs_hat, avail_hat)
            check_action(
                action, size, step, self.n_agents, self.n_actions, self.discrete, check_values
            )
            return action

        return choose

    def _rollout(
        self,
        start: ModelState,
        horizon: int,
        choose: Callable[[int, Tensor, Tensor], Tensor],
        sample: bool,
    ) -> Imagination:
        """Imagination core, shared with the open-loop diagnostics (which replay real actions
        and use the means of `x` and `y` with `sample=False`)."""
        states, actions, obs, avail = self._rollout_states(start, horizon, choose, sample)
        features_all = torch.cat(states, dim=-1)  # [H+1, B', D]
        obs.append(self.decoders.obs_mean(features_all[-1]))
        avail.append(self._avail(features_all[-1]))
        return Imagination(
            states=states,
            features=features_all,
            actions=torch.stack(actions),
            obs=torch.stack(obs),
            avail=torch.stack(avail),
            reward=self.decoders.reward_mean(features_all[1:]),
            cont=torch.sigmoid(self.decoders.continue_logit(features_all[1:])),
        )

    def _rollout_states(
        self,
        start: ModelState,
        horizon: int,
        choose: Callable[[int, Tensor, Tensor], Tensor],
        sample: bool,
    ) -> tuple[ModelState, list[Tensor], list[Tensor], list[Tensor]]:
        """The H prior steps: `(states [H+1, B', ...], actions, decoded obs, decoded avail)`, the
        last three as lists of the H steps the policy acted on."""
        deter, stoch = start
        # A copy of the model (copy.deepcopy) holds its CUDA GRU weights in separate chunks,
        # which cuDNN would compact (and warn about) at every call; this re-packs them once.
        pack_rnn(self.gru)
        deters, stochs, actions, obs, avail = [deter], [stoch], [], [], []
        for step in range(horizon):
            features = torch.cat([deter, stoch], dim=-1)
            obs.append(self.decoders.obs_mean(features))
            avail.append(self._avail(features))
            action = choose(step, obs[-1], avail[-1])
            # docs/design.md §4.3 step 5: the decoded state and the chosen joint action feed SALE.
            state_hat = self.decoders.state_mean(features)
            deter = self._transition(deter, state_hat, self.joint_action(action), sample)
            prior = self.prior_net(deter)
            stoch = prior.rsample() if sample else prior.mean
            deters.append(deter)
            stochs.append(stoch)
            actions.append(action)
        return ModelState(torch.stack(deters), torch.stack(stochs)), actions, obs, avail

    # ------------------------------------------------------------------ losses
    def losses(self, batch: EpisodeBatch) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Unreduced, unscaled named losses, each `[T, B]` and zero where `mask` is 0.

        Row t holds the terms of the transition t -> t+1: the reconstruction and KL of the model
        state `m_{t+1}` it produced (row 0 also those of `m_0`, so every real state counts once),
        the reward and continue flag of the step, VAE-1 on `u_t` and the SALE loss on
        `(s_t, a_t, s_{t+1})`. Reduce with `sum() / mask.sum()` and scale as you like (`loss`
        does both with the config's scales). Keys: state, obs, avail (discrete only), kl,
        reward, continue, vae1_rec, vae1_kl and sale (with SALE only).
        """
        losses, metrics, _ = self.losses_and_posterior(batch)
        return losses, metrics

    def losses_and_posterior(
        self, batch: EpisodeBatch
    ) -> tuple[dict[str, Tensor], dict[str, float], ModelState]:
        """`losses(batch)` and the posterior states `[T+1, B, ...]` they were computed on,
        detached: a learner that imagines from the posteriors needs no second `observe`."""
        seen = self._observe_all(batch)
        data, dec, c = seen.data, self.decoders, self.config
        features = self.features(seen.posterior)  # [T+1, B, D]
        dtype = features.dtype
        # Per model state m_0..m_T: Gaussian (unit variance) and Bernoulli NLLs, balanced KL.
        per_state = {
            "state": 0.5 * (dec.state_mean(features) - data.state).pow(2).sum(-1),
            "obs": 0.5 * (dec.obs_mean(features) - data.obs).pow(2).sum((-2, -1)),
        }
        avail_logits = dec.avail_logits(features)
        if avail_logits is not None:
            per_state["avail"] = F.binary_cross_entropy_with_logits(
                avail_logits, data.avail_actions.to(dtype), reduction="none"
            ).sum((-2, -1))
        per_state["kl"] = kl_balanced(seen.post_dist, seen.prior_dist, c.kl_balance, c.free_nats)
        losses = {name: _fold_initial(value) for name, value in per_state.items()}
        # Per transition: reward and continue flag are read from m_{t+1} (DreamerV2).
        next_features = features[1:]
        losses["reward"] = 0.5 * (dec.reward_mean(next_features) - data.reward).pow(2)
        losses["continue"] = F.binary_cross_entropy_with_logits(
            dec.continue_logit(next_features), 1.0 - data.terminated, reduction="none"
        )
        # VAE-1: reconstruct u_t (target without gradient, so u is not shaped to be easy to
        # reconstruct) and keep x_t close to N(0, I).
        losses["vae1_rec"] = 0.5 * (seen.u_rec - seen.u.detach()).pow(2).sum(-1)
        losses["vae1_kl"] = kl_standard_normal(seen.x_dist).sum(-1)
        if seen.sale_error is not None:
            losses["sale"] = seen.sale_error
        real = data.real
        zero = torch.zeros((), dtype=dtype, device=features.device)
        losses = {name: torch.where(real, value, zero) for name, value in losses.items()}
        posterior = ModelState(*(leaf.detach() for leaf in seen.posterior))
        return losses, self._metrics(seen), posterior

    def _metrics(self, seen: Observation) -> dict[str, float]:
        with torch.no_grad():
            state_real = seen.data.real_state.to(seen.u.dtype)  # m_0..m_T
            transition_real = seen.data.real.to(seen.u.dtype)
            states = state_real.sum().clamp(min=1.0)
            transitions = transition_real.sum().clamp(min=1.0)
            kl = kl_gaussian(seen.post_dist, seen.prior_dist).sum(-1)
            values = torch.stack(
                [
                    (kl * state_real).sum() / states,
                    (seen.post_dist.std.mean(-1) * state_real).sum() / states,
                    (seen.prior_dist.std.mean(-1) * state_real).sum() / states,
                    (seen.x_dist.std.mean(-1) * transition_real).sum() / transitions,
                ]
            ).tolist()
        names = ("kl_nats", "posterior_std", "prior_std", "vae1_std")
        return dict(zip(names, values, strict=True))

    def loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, float]]:
        """Scalar total `sum_k scale_k * sum(loss_k) / sum(mask)` and metrics (each loss's
        masked mean as `loss_<name>`, `loss_total`, and the metrics of `losses`)."""
        losses, metrics = self.losses(batch)
        count = (batch.mask > 0).sum().clamp(min=1)
        scales = self.config.loss_scales()
        means = {name: value.sum() / count for name, value in losses.items()}
        total = torch.stack([scales[name] * mean for name, mean in means.items()]).sum()
        values = torch.stack([*means.values(), total]).detach().tolist()
        metrics.update(
            {f"loss_{name}": v for name, v in zip([*means, "total"], values, strict=True)}
        )
        return total, metrics


def _fold_initial(per_state: Tensor) -> Tensor:
    """`[T+1, B] -> [T, B]`: row t holds the term of `m_{t+1}`, row 0 also that of `m_0`."""
    folded = per_state[1:]
    return torch.cat([folded[:1] + per_state[:1], folded[1:]], dim=0)
