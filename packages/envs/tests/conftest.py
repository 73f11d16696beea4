"""Shared test setup: JAX compiles SMAX once per machine, not once per test run."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session", autouse=True)
def _jax_compilation_cache(pytestconfig: pytest.Config) -> None:
    """SMAX's jitted step takes ~15 s to compile per map; JAX's persistent cache (under
    .pytest_cache) makes every later run load it instead. A cold cache only costs time."""
    if importlib.util.find_spec("jax") is None:
        return
    import jax

    cache = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    cache_dir = cache.mkdir("jax-compilation-cache") if cache else None
    if cache_dir is not None:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
