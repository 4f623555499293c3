"""Package-level exports neither hide submodules nor drift from the modules they come from; an
install ships the ``jaxvision`` package only (no generic top-level ``experiments``)."""

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
import setuptools

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


# --- what an install ships ---------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _installed_packages() -> list[str]:
    """The packages ``pip install .`` ships, found as setuptools finds them from pyproject."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        find = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]
    finder = setuptools.find_namespace_packages if find.get("namespaces", True) else \
        setuptools.find_packages
    return finder(ROOT, include=find.get("include", ("*",)), exclude=find.get("exclude", ()))


def test_only_jaxvision_is_installed_at_the_top_level():
    packages = _installed_packages()
    assert {name.split(".")[0] for name in packages} == {"jaxvision"}
    # and every subpackage of the library is in it
    assert {"jaxvision.train", "jaxvision.models", "jaxvision.augment"} <= set(packages)


def test_the_wheel_holds_jaxvision_and_not_experiments(tmp_path):
    """The real build (from a copy of the clone, so that the clone gets no build/ folder)."""
    pytest.importorskip("setuptools", minversion="77")  # the SPDX licence field
    source = tmp_path / "src"
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).parent.mkdir(exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), source / name)
    for name in ("jaxvision", "experiments", "benchmarks", "tests"):
        shutil.copytree(os.path.join(ROOT, name), source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "golden"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("jaxvision-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        entry_points = archive.read(next(n for n in archive.namelist()
                                         if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {name for name in top if not name.endswith(".dist-info")} == {"jaxvision"}
    assert "jaxvision = jaxvision.cli:main" in entry_points


