"""jaxvision.xla_options: the per-executable XLA options of the engine and the predictor."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxvision.xla_options import WITHOUT_YNNPACK, compiler_options


def _conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU's")
def test_cpu_convolutions_leave_ynnpack_with_the_same_values():
    options = compiler_options()
    assert options == WITHOUT_YNNPACK
    assert compiler_options(run_once=True) == {**WITHOUT_YNNPACK,
                                                "xla_backend_optimization_level": 0}
    x = jax.random.normal(jax.random.key(0), (2, 16, 16, 32))
    w = jax.random.normal(jax.random.key(1), (3, 3, 32, 32))
    ours = jax.jit(_conv, compiler_options=options).lower(x, w).compile()
    default = jax.jit(_conv).lower(x, w).compile()
    assert "__ynn_fusion" not in ours.as_text()
    # The same sums of 288 products, rounded differently (|values| up to about 50).
    np.testing.assert_allclose(ours(x, w), default(x, w), rtol=1e-5, atol=1e-4)


def test_a_users_xla_flags_choice_is_kept():
    """XLA_FLAGS that name the YNNPACK option win (the flag must be set before JAX starts)."""
    code = ("from jaxvision.xla_options import compiler_options; "
            "print(compiler_options(), compiler_options(run_once=True))")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_convolution",
             "JAX_PLATFORMS": "cpu", "PATH": ""}).stdout.split()
    assert out == ["None", "{'xla_backend_optimization_level':", "0}"]


def test_the_engine_step_compiles_with_them():
    from jaxvision.train.parallel import make_parallel

    parallel = make_parallel("none")
    step = parallel.compile_eval_step(lambda state, batch: jnp.sum(_conv(batch, state)))
    x, w = jnp.ones((1, 8, 8, 16)), jnp.ones((3, 3, 16, 16))
    text = step.lower(w, x).compile().as_text()
    assert ("__ynn_fusion" not in text) == (compiler_options() is not None)
