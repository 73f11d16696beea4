#!/usr/bin/env bash
# Wheels and sdists of the five distributions into OUT (default dist/), with PyPA build:
# each sdist is built first and its wheel is built from the unpacked sdist, so a file the
# sdist lacks fails the build. Used by `make dist` and tests/test_dist_install.py.
#   make/dist.sh [OUT]        PYTHON=... picks the interpreter (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-dist}
mkdir -p "$OUT"
rm -f "$OUT"/mmsa*.whl "$OUT"/mmsa*.tar.gz
for project in packages/envs packages/sale packages/worldmodel packages/marl_core .; do
	"$PYTHON" -m build --outdir "$OUT" "$project"
done
