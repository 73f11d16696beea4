"""mmsa_worldmodel: a SALE-augmented VAE world model for multi-agent RL.

The surface is Dreamer's (`initial / observe / imagine / losses`), with no hidden state on the
module. A training step and an imagination read::

    model = WorldModel(n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind="discrete")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    for batch in batches:                                 # any EpisodeBatch, [T+1, B, ...]
        total, metrics = model.loss(batch)                # or losses(batch): unreduced, named
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        posterior, _ = model.observe(batch)               # [T+1, B, ...]
        start = ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))
        with torch.no_grad():
            rollout = model.imagine(start, policy, horizon=3)   # policy(obs_hat, avail_hat)
        rollout.features                                  # [H+1, T+1 * B, D]
"""

from ._batch import EpisodeBatch
from ._config import WorldModelConfig
from ._diagnostics import kl_per_step, open_loop_error, posterior_collapse
from ._gaussian import kl_balanced
from ._model import WorldModel
from ._networks import pack_rnn
from ._types import Imagination, ModelState, Policy

__all__ = [
    "EpisodeBatch",
    "Imagination",
    "ModelState",
    "Policy",
    "WorldModel",
    "WorldModelConfig",
    "kl_balanced",
    "kl_per_step",
    "open_loop_error",
    "pack_rnn",
    "posterior_collapse",
]
__version__ = "0.1.0"
