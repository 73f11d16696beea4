"""Episodes as data: `batch.Batch` (a sampled, time-major batch of padded episodes on a device)
and `buffer.EpisodeBuffer` (the replay buffer of whole episodes it is sampled from).

May import numpy, torch and `mmsa_envs`; no other part of this package."""
