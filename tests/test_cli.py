"""The command line: every declared option is settable, unknown keys and flags are errors that
name close matches, --help works, and user errors exit 2 with one line and no workdir."""

import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

import experiments.quickstart as quickstart
from jaxvision import cli
from jaxvision.train import config as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _value_for(option: C.Option, key: str):
    """A value of the option's type that differs from its default, and its command-line text."""
    kind, default = option.kind, option.default
    if kind is bool:
        return (not default), str(not default)
    if kind is int:
        value = (default or 0) + 3
        return value, str(value)
    if kind is float:
        value = (default or 0.0) + 0.25
        return value, repr(value)
    if kind is str:
        return f"v_{key.replace('.', '_')}", f"v_{key.replace('.', '_')}"
    if kind in (tuple, list):
        return (3, 5), "(3, 5)"
    return 7, "7"  # any literal (default None, no declared type)


def _get(config, key):
    for part in key.split("."):
        config = config[part]
    return config


@pytest.mark.parametrize("model", ["small_cnn", "resnet18"])
def test_every_declared_option_is_settable_from_the_command_line(model):
    base = quickstart.get_config()
    base.model = model
    declared = C.schema(base)
    # The schema covers the four kinds of option the docs describe.
    for key in ("optimizer.gamma", "optimizer.min_learning_rate", "optimizer.milestones",
                "augment.crop.padding", "augment.rotate.degrees", "model_kwargs.dropout_rate"
                if model == "small_cnn" else "model_kwargs.drop_path_rate", "sam.rho",
                "plateau.factor", "transfer.strategy"):
        assert key in declared, key
    expected, argv = {}, [f"--config.model={model}"]
    for key, option in declared.items():
        if key in ("model", "task"):  # names, not free values; set below and in other tests
            continue
        value, text = _value_for(option, key)
        expected[key] = value
        argv.append(f"--config.{key}={text}")
    config, workdir, verbose = cli.parse_args(argv, lambda: _with_model(model), name="t")
    assert workdir == os.path.join("workdirs", "t") and not verbose
    for key, value in expected.items():
        got = _get(config, key)
        assert (tuple(got) if isinstance(got, list) else got) == value, key
    C.check_keys(config)  # the library's own check accepts every declared key


def _with_model(model):
    config = quickstart.get_config()
    config.model = model
    return config


def test_documented_options_reach_what_they_configure():
    """The four examples of the issue: options that ended in AttributeError now act."""
    from jaxvision.optim import build_schedule
    from jaxvision.transfer.engine import build_model

    config, _, _ = cli.parse_args(
        ["--config.optimizer.schedule=step", "--config.optimizer.gamma=0.5",
         "--config.optimizer.step_size=2", "--config.optimizer.min_learning_rate=1e-5",
         "--config.model_kwargs.dropout_rate=0.2", "--config.augment.ops=crop,flip",
         "--config.augment.crop_padding=2"], quickstart.get_config, name="t")
    lr = config.optimizer.learning_rate
    schedule = build_schedule(config.optimizer, 100)
    np.testing.assert_allclose([schedule(1), schedule(2), schedule(4)],
                               [lr, lr * 0.5, lr * 0.25], rtol=1e-6)
    assert config.optimizer.min_learning_rate == 1e-5
    assert build_model(config, num_classes=10).dropout_rate == 0.2
    from jaxvision import augment

    fn = augment.build(config.augment.to_dict(), num_classes=10)
    assert fn.ops == ("crop", "flip") and fn.options["crop"] == {"padding": 2}


def test_model_options_follow_the_model_given_on_the_command_line():
    config, _, _ = cli.parse_args(["--config.model_kwargs.stage_sizes=(1, 1, 1, 1)",
                                   "--config.model=resnet18"], quickstart.get_config, name="t")
    assert config.model == "resnet18" and tuple(config.model_kwargs.stage_sizes) == (1, 1, 1, 1)
    with pytest.raises(cli.UsageError, match="'model_kwargs.stage_sizes'"):
        cli.parse_args(["--config.model_kwargs.stage_sizes=(1,)"], quickstart.get_config,
                       name="t")  # small_cnn has no stage_sizes


@pytest.mark.parametrize("argv, message", [
    (["--config.optimizer.gama=0.5"], "unknown config key 'optimizer.gama'. Did you mean "
                                       "'optimizer.gamma'?"),
    (["--config.model_kwargs.dropout=0.2"], "Did you mean 'model_kwargs.dropout_rate'"),
    (["--config.augment.crop.paddin=4"], "Did you mean 'augment.crop.padding'"),
    (["--config.num_epoch=3"], "Did you mean 'num_epochs'"),
    (["--config.model=resnet1"], "unknown model 'resnet1'. Did you mean 'resnet18'"),
    (["--workdr=x"], "unknown flag --workdr. Did you mean '--workdir'?"),
    (["--config.num_epochs=1.5"], "--config.num_epochs takes an integer, got '1.5'"),
    (["--config.tensorboard=maybe"], "--config.tensorboard takes true or false"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_usage_errors_name_the_fix(argv, message):
    with pytest.raises(cli.UsageError) as error:
        cli.parse_args(argv, quickstart.get_config, name="t")
    assert message in str(error.value)


def test_unknown_nested_key_in_python_is_refused_with_close_matches():
    config = quickstart.get_config()
    config.optimizer.gama = 0.5  # a typo that was silently ignored
    with pytest.raises(ValueError, match=r"'optimizer.gama'. Did you mean 'optimizer.gamma'"):
        C.check_keys(config)
    config = quickstart.get_config()
    config.sam = ml_collections.ConfigDict(dict(rho=0.05, group_sise=2, group_size=0))
    with pytest.raises(ValueError, match=r"Did you mean 'sam.group_size'"):
        C.validate_config(config, num_devices=1)
    config = quickstart.get_config()
    config.augment.ops = ("crop",)
    config.augment.crop_padding = 2  # the flat spelling stays accepted
    C.check_keys(config)


def test_value_parsing():
    assert cli.parse_value("(1, 2)", tuple, "k") == (1, 2)
    assert cli.parse_value("1,2", tuple, "k") == (1, 2)
    assert cli.parse_value("crop", tuple, "k") == ("crop",)
    assert cli.parse_value("", tuple, "k") == ()
    assert cli.parse_value("None", float, "k") is None
    assert cli.parse_value("3", float, "k") == 3.0
    assert cli.parse_value("False", bool, "k") is False
    assert cli.parse_value("'a'", None, "k") == "a" and cli.parse_value("abc", None, "k") == "abc"


def test_jaxvision_program(capsys):
    assert cli.main(["list-models", "resnet1*"]) == 0
    assert capsys.readouterr().out.split() == ["resnet101", "resnet152", "resnet18"]
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in cli.COMMANDS)
    for argv, message in ((["trian"], "unknown command 'trian'. Did you mean 'train'?"),
                          (["train", "quickstar"], "Did you mean 'quickstart'?")):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "quickstart", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: jaxvision train quickstart") and "Quickstart:" in out


# --- the real command line, in a subprocess ----------------------------------------------------

def _run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.quickstart", *args],
                          capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=300)


def test_help_exits_0_and_lists_the_options_with_defaults():
    done = _run("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Quickstart: a small CNN" in done.stdout  # the experiment's docstring
    for line in ("--config.num_epochs=20", "--config.optimizer.learning_rate=0.003",
                 "--config.optimizer.gamma=None", "--config.model_kwargs.dropout_rate=0.25",
                 "--config.augment.crop.padding=None", "--workdir DIR"):
        assert line in done.stdout, line


@pytest.mark.parametrize("args, message", [
    (("--config.optimizer.gama=0.5",), "Did you mean 'optimizer.gamma'?"),
    (("--config.model=resnet1",), "unknown model 'resnet1'"),
    (("--config.batch_size=0",), "config.batch_size must be >= 1"),  # refused inside main
])
def test_user_errors_exit_2_with_one_line_and_no_workdir(tmp_path, args, message):
    workdir = tmp_path / "run"
    done = _run(f"--workdir={workdir}", *args)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not workdir.exists()


def test_cluster_runs_set_the_heartbeat_timeout(monkeypatch):
    """On a cluster (a coordinator address is set) the CLI initializes jax.distributed once,
    with $JAXVISION_HEARTBEAT_TIMEOUT as the heartbeat timeout; a bad value is a usage error."""
    import jax

    calls = []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: bool(calls))
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:12345")
    monkeypatch.setenv("JAXVISION_HEARTBEAT_TIMEOUT", "10")
    cli.maybe_initialize_distributed()
    cli.maybe_initialize_distributed()  # already joined: not again
    assert calls == [{"heartbeat_timeout_seconds": 10}]
    calls.clear()
    monkeypatch.delenv("JAXVISION_HEARTBEAT_TIMEOUT")
    cli.maybe_initialize_distributed()
    assert calls == [{}]  # JAX's own default
    calls.clear()
    monkeypatch.setenv("JAXVISION_HEARTBEAT_TIMEOUT", "ten")
    with pytest.raises(cli.UsageError, match="positive number of seconds"):
        cli.maybe_initialize_distributed()
