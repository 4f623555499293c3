"""Test set-up: 8 virtual CPU devices for the multi-device tests, set before JAX starts, and a
session-wide TFDS directory so that the embedded data sets are generated once, off ~/."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding the prepared embedded ``digits`` data set."""
    from jaxvision.data import from_tfds

    data_dir = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    from_tfds("digits", "train", data_dir=data_dir)
    return data_dir


@pytest.fixture()
def compile_counter():
    """Counts XLA compilations while the test runs (``counter.count``)."""

    class Counter:
        count = 0

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            Counter.count += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield Counter
    jax.monitoring.unregister_event_duration_listener(listener)
