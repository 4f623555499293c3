"""Package-level exports neither hide submodules nor drift from the modules they come from."""

import importlib
import pkgutil

import pytest

import jaxvision

PACKAGES = ["ops", "losses", "metrics", "optim", "augment", "nn", "models", "train", "data"]


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_do_not_shadow_submodules(name):
    package = importlib.import_module(f"jaxvision.{name}")
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"jaxvision.{name}.{info.name}")
        assert getattr(package, info.name) is module, f"jaxvision.{name}.{info.name} is shadowed"


def test_version():
    assert jaxvision.__version__.count(".") == 2
