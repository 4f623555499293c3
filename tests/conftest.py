"""Test set-up: 8 virtual CPU devices for the multi-device tests, set before JAX starts."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
