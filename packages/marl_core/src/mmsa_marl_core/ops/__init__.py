"""Tensor helpers every other part shares: masked TD targets and reductions (`td`), optimiser
factory, guarded gradient steps and running statistics (`optim`), the low-precision switch
(`precision`), running input standardisation (`input_norm`).

May import torch only; no other part of this package."""
