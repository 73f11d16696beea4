"""The trainable modules: the recurrent agent and epsilon-greedy acting (`agent`), the mixers
(`mixers`), the SALE agent (`sale_agent`), the continuous actor and critic (`policy`) and HPN's
entity agent (`hpn_agent`).

May import `ops`, `mmsa_envs` and `mmsa_sale`; never `imagination`, `learners` or `training`."""
