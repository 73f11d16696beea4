"""MMSA flows: the thin edge that runs the packages.

- `flows.flows`: the Prefect flows mmsa-collect, mmsa-train, mmsa-evaluate, mmsa-ablate, mmsa-report
- `flows.serve`: a local Prefect server and the served deployments (`make serve`)
- `flows.stages`: the DVC stage entry points and profiles (`dvc.yaml`, `flows/conf`)
- `flows.training`, `flows.collect`: plain functions the flows and stages call
- `flows.runs`, `flows.stats`, `flows.report`, `flows.figures`, `flows.markdown`: run directories
  to tables (rliable intervals), figures and markdown
- `flows.runners`: local or Dask task runners for the fan-out
- `flows.cli`, `flows.config`, `flows.tensorboard`: the `mmsa` command, YAML configs, TensorBoard
"""

__all__: list[str] = []
