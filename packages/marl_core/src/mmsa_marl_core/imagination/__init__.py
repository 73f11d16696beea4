"""MMSA's use of the world model: imagined rollouts summarised into rollout codes (`rollout`,
`continuous_rollout`), their CUDA-graph replays (`imagination_graph`, `acting_graph`) and the
world model's share of the update: loss terms, loss groups, diagnostics (`mmsa_world`).

May import `networks`, `ops`, `mmsa_sale` and `mmsa_worldmodel`; never `learners` or
`training`."""
