"""Command line of every experiment, and the ``jaxvision`` program.

``python -m experiments.<name> [--workdir DIR] [--config.<key>=<value> ...] [--verbose]``:
each experiment module defines ``get_config()`` and ``main(config, workdir)``; :func:`run`
turns them into a program whose ``--config.*`` flags set any option the config declares
(:func:`jaxvision.train.config.schema`: the config's own fields and, for a training config,
every optimizer, schedule, augmentation, model and task option) and whose ``--workdir``
defaults to ``workdirs/<experiment>``. ``--help`` lists them with their defaults.

User errors (an unknown flag or key, a value of the wrong type, an unknown model, a value the
config checks refuse) print one line, exit with code 2 and leave no new workdir behind;
``--verbose`` (or ``JAXVISION_TRACEBACK=1``) shows the traceback.

``jaxvision train|predict|serve|export|list-models ...`` (:func:`main`, the console script)
gathers the programs under one name. It needs only the installed ``jaxvision`` package;
``jaxvision train NAME`` runs the experiment ``NAME`` of a clone, from the clone's root (the
``experiments`` folder is not installed).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import logging
import os
import pkgutil
import shutil
import sys
import traceback
from typing import Callable, Sequence

USAGE_ERROR = 2


class UsageError(Exception):
    """A mistake on the command line: reported in one line, exit code 2."""


def setup_logging() -> None:
    """Plain progress lines from jaxvision; only warnings from Orbax, absl and TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    for noisy in ("absl", "orbax", "tensorflow", "jax"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def write_report(workdir: str, lines: list[str], results=None) -> None:
    """An experiment's ``report.md`` (markdown ``lines``) and, when given, ``results.json``."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if results is not None:
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)


def maybe_initialize_distributed() -> None:
    """``jax.distributed.initialize()`` on multi-host set-ups (a coordinator address is given,
    or a TPU pod lists several workers), before any other JAX call; a no-op on one host and
    in a process that ``python -m jaxvision.launch`` already joined to its job.
    ``$JAXVISION_HEARTBEAT_TIMEOUT`` (seconds) replaces JAX's 100 s before a silent peer
    counts as dead, so a lost host stops the job sooner."""
    multi_host_tpu = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or multi_host_tpu:
        import jax

        if not jax.distributed.is_initialized():
            heartbeat = os.environ.get("JAXVISION_HEARTBEAT_TIMEOUT")
            if heartbeat is not None and not (heartbeat.isdigit() and int(heartbeat) > 0):
                raise UsageError("JAXVISION_HEARTBEAT_TIMEOUT must be a positive number of "
                                 f"seconds, got {heartbeat!r}")
            jax.distributed.initialize(**({} if heartbeat is None else
                                          {"heartbeat_timeout_seconds": int(heartbeat)}))


# --- values ----------------------------------------------------------------------------------

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_value(text: str, kind: type | None, key: str):
    """``text`` as a value of ``kind`` (the option's type; None: any Python literal, else the
    text). ``None`` sets an option whose default is None back to it."""
    if text == "None" and kind is not bool:
        return None
    try:
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if kind is int:
            value = _literal(text)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
            return value
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if kind in (tuple, list):
            value = _literal(text.strip()) if text.strip() else ()
            if isinstance(value, str) and "," in value:
                value = tuple(_literal(part.strip()) for part in value.split(",") if part.strip())
            if not isinstance(value, (tuple, list)):
                value = (value,)
            return tuple(value)
    except ValueError:
        raise UsageError(f"--config.{key} takes {_kind_name(kind)}, got {text!r}") from None
    return _literal(text)


def _kind_name(kind) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            tuple: "a tuple like (1, 2) or 1,2", list: "a list like 1,2"}.get(kind, "a value")


# --- parsing ---------------------------------------------------------------------------------

def _split_flags(argv: Sequence[str], known: Sequence[str]) -> tuple[dict, list[tuple[str, str]]]:
    """``({flag: value}, [(config key, text)])``; raises UsageError for anything else."""
    flags: dict[str, str | bool] = {}
    overrides: list[tuple[str, str]] = []
    argv = list(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--"):
            if arg == "-h":
                flags["help"] = True
                continue
            raise UsageError(f"unexpected argument {arg!r}; options are --name=value flags "
                             "(see --help)")
        name, eq, value = arg[2:].partition("=")
        if name.startswith("config."):
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"--{name} needs a value (--{name}=VALUE)")
                value, i = argv[i], i + 1
            overrides.append((name[len("config."):], value))
        elif name in ("help", "verbose"):
            flags[name] = True
        elif name in known:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"--{name} needs a value")
                value, i = argv[i], i + 1
            flags[name] = value
        else:
            from jaxvision.train.config import close_matches

            hint = close_matches(f"--{name}", [f"--{n}" for n in (*known, "help", "verbose")])
            raise UsageError(f"unknown flag --{name}.{hint} Config options are set with "
                             "--config.<key>=<value> (see --help)")
    return flags, overrides


def _set(config, key: str, value) -> None:
    import ml_collections

    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        if part not in node or node[part] is None:
            node[part] = ml_collections.ConfigDict()
        node = node[part]
    try:
        node[leaf] = value
    except TypeError:
        with node.ignore_type():
            node[leaf] = value


def apply_overrides(config, overrides: Sequence[tuple[str, str]]):
    """Sets ``--config.<key>=<text>`` pairs on ``config`` (in place; returned), each checked
    against the declared schema; the model's and task's own options (``model_kwargs.*``,
    ``task_kwargs.*``) after the rest, so that they follow ``--config.model``."""
    from jaxvision.train.config import close_matches, flat_augment_path, schema

    def late(key):
        return any(part in ("model_kwargs", "task_kwargs") for part in key.split("."))

    first = [o for o in overrides if not late(o[0])]
    for batch in (first, [o for o in overrides if late(o[0])]):
        if batch is not first:
            check_models(config)  # before the schema lists the model's options
        if not batch:
            continue
        declared = schema(config)
        for key, text in batch:
            option = declared.get(key)
            target = key
            if option is None and flat_augment_path(key) in declared:
                option = declared[flat_augment_path(key)]  # 'crop_padding' for 'crop.padding'
            if option is None:
                option = _inside_dict_option(key, declared)
            if option is None:
                raise UsageError(f"unknown config key {key!r}.{close_matches(key, declared)} "
                                 "--help lists the options")
            _set(config, target, parse_value(text, option.kind, key))
    return config


def _inside_dict_option(key: str, declared):
    """A key inside a declared dict-valued option (``model_kwargs.backbone_kwargs.conv``)."""
    from jaxvision.train.config import Option

    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        option = declared.get(".".join(parts[:i]))
        if option is not None:
            return Option(None, None) if isinstance(option.default, dict) else None
    return None


def check_models(config) -> None:
    """An unknown ``model`` in a training config (also nested) is a usage error."""
    import ml_collections

    from jaxvision.train.config import _is_engine

    if _is_engine(config) and isinstance(config.model, str):
        from jaxvision import models

        if config.model not in models.list():
            from jaxvision.train.config import close_matches

            raise UsageError(f"unknown model {config.model!r}."
                             f"{close_matches(config.model, models.list())} "
                             "`jaxvision list-models` lists them all")
    for key in config.keys():
        if isinstance(config[key], ml_collections.ConfigDict):
            check_models(config[key])


def format_help(prog: str, doc: str | None, config, workdir: str) -> str:
    from jaxvision.train.config import schema

    lines = [f"usage: {prog} [--workdir DIR] [--config.<key>=<value> ...] [--verbose]", ""]
    if doc:
        lines += [inspect.cleandoc(doc), ""]
    lines += ["options:",
              "  -h, --help              show this message and exit",
              f"  --workdir DIR           where results go (default: {workdir})",
              "  --verbose               show tracebacks of errors",
              "", "config options (--config.<key>=<value>; default after '='):"]
    declared = schema(config)
    if any(".augment." in f".{key}" for key in declared):
        lines[-1] = lines[-1][:-2] + "; an augmentation op's options act when the op is in " \
            "augment.ops or the preset):"
    for key, option in declared.items():
        default = option.default
        shown = repr(default) if isinstance(default, str) else str(default)
        line = f"  --config.{key}={shown}"
        if option.help:
            line = f"{line:<46} {option.help}" if len(line) < 46 else f"{line}\n{'':46} {option.help}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str], get_config: Callable, *, name: str, doc: str | None = None,
               prog: str | None = None):
    """``(config, workdir, verbose)`` from the command line; ``--help`` prints the help and
    exits 0; mistakes raise :class:`UsageError`."""
    flags, overrides = _split_flags(argv, known=("workdir",))
    config = get_config()
    workdir = flags.get("workdir") or os.path.join("workdirs", name)
    if flags.get("help"):
        check_models(config)
        sys.stdout.write(format_help(prog or f"python -m experiments.{name}", doc, config,
                                     workdir))
        sys.exit(0)
    apply_overrides(config, overrides)
    check_models(config)
    return config, workdir, bool(flags.get("verbose"))


# --- running ---------------------------------------------------------------------------------

def _verbose() -> bool:
    return bool(os.environ.get("JAXVISION_TRACEBACK"))


def _remove_if_empty(path: str) -> None:
    """Removes ``path`` when it holds nothing but empty folders (made by a failed start)."""
    if not os.path.isdir(path):
        return
    for _, _, files in os.walk(path):
        if files:
            return
    shutil.rmtree(path, ignore_errors=True)


def run_reporting_errors(main: Callable, config, workdir: str, *, verbose: bool = False,
                         new_workdir: bool = False):
    """``main(config, workdir)``; a graceful stop or a refused input ends the process with one
    line and an exit code instead of a traceback (``--verbose`` or ``JAXVISION_TRACEBACK=1``
    shows it): 2 for a refused value (``ValueError``), 1 for a failure while running.
    ``new_workdir``: the workdir did not exist before, so an error that left it empty
    removes it."""
    from jaxvision.train import Interrupted, NonFiniteError

    log = logging.getLogger("jaxvision")
    try:
        return main(config, workdir)
    except Interrupted as stop:
        log.warning("%s", stop)
        sys.exit(stop.exit_code)
    except (ValueError, RuntimeError, OSError, NonFiniteError) as error:
        if new_workdir and workdir:
            _remove_if_empty(workdir)
        if verbose or _verbose():
            raise
        log.error("%s: %s", type(error).__name__, error)
        sys.exit(USAGE_ERROR if isinstance(error, ValueError) else 1)


def _report_usage_error(prog: str, error: UsageError, verbose: bool) -> None:
    if verbose:
        traceback.print_exc()
    print(f"{prog}: error: {error}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def run(get_config: Callable, main: Callable, *, name: str | None = None,
        argv: Sequence[str] | None = None, doc: str | None = None,
        prog: str | None = None) -> None:
    """Parses the command line, builds the config and calls ``main(config, workdir)``."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or f"python -m experiments.{name}"
    if doc is None:
        module = inspect.getmodule(get_config)
        doc = module.__doc__ if module is not None else None
    verbose = "--verbose" in argv or _verbose()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        config, workdir, verbose = parse_args(argv, get_config, name=name, doc=doc, prog=prog)
        maybe_initialize_distributed()
    except UsageError as error:
        _report_usage_error(prog, error, verbose)
    setup_logging()
    new_workdir = not os.path.exists(workdir)
    result = run_reporting_errors(main, config, workdir, verbose=verbose,
                                  new_workdir=new_workdir)
    if result is not None:
        logging.getLogger("jaxvision").info("result: %s", result)


# --- the jaxvision program ---------------------------------------------------------------------

COMMANDS = {
    "train": "train an experiment (or the default config): jaxvision train [EXPERIMENT] "
             "[--workdir DIR] [--config.<key>=<value> ...]",
    "predict": "classify image files with a trained workdir (jaxvision predict --help)",
    "serve": "serve a trained workdir over HTTP (jaxvision serve --help)",
    "export": "export a trained workdir (jaxvision export --help)",
    "list-models": "print the registered model names: jaxvision list-models [PATTERN] "
                   "[--pretrained]",
}


def _import_experiments():
    """The ``experiments`` package of a clone, or None. It is not installed with jaxvision (a
    generic top-level name would clash with other projects): ``python -m experiments.<name>``
    finds it because the working directory is on ``sys.path``; the console script, whose
    ``sys.path`` starts at its own folder, looks in the working directory (a clone's root)."""
    try:
        import experiments
    except ImportError:
        cwd = os.getcwd()
        if not os.path.isfile(os.path.join(cwd, "experiments", "__init__.py")):
            return None
        sys.path.insert(0, cwd)
        try:
            import experiments
        except ImportError:
            return None
    return experiments


def experiment_names() -> list[str]:
    """The runnable experiments (``experiments.<name>`` modules of a clone, see
    :func:`_import_experiments`); none outside a clone."""
    experiments = _import_experiments()
    if experiments is None:
        return []
    return sorted(m.name for m in pkgutil.iter_modules(experiments.__path__)
                  if not m.name.startswith("_"))


def _usage() -> str:
    lines = ["usage: jaxvision COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<12} {text}" for name, text in COMMANDS.items()]
    lines += ["", "jaxvision COMMAND --help describes each command."]
    return "\n".join(lines) + "\n"


def _train(argv: list[str]) -> int:
    from jaxvision.train.config import close_matches

    if argv and not argv[0].startswith("-"):
        name, argv = argv[0], argv[1:]
        names = experiment_names()
        if not names:
            raise UsageError(f"no experiments here to train {name!r}: they live in a clone "
                             "of jaxvision; run `jaxvision train NAME` from its root")
        if name not in names:
            raise UsageError(f"unknown experiment {name!r}.{close_matches(name, names)} "
                             f"Experiments: {', '.join(names)}")
        module = importlib.import_module(f"experiments.{name}")
        run(module.get_config, module.main, name=name, argv=argv, doc=module.__doc__,
            prog=f"jaxvision train {name}")
        return 0
    from jaxvision import train

    names = experiment_names()
    experiments = (f"Experiments (jaxvision train NAME): {', '.join(names)}" if names else
                   "The experiments (jaxvision train NAME) run from the root of a clone.")
    doc = ("Trains jaxvision.train.default_config() (small_cnn on the embedded digits data) "
           f"with the given overrides. {experiments}")
    run(train.default_config, train.train_and_evaluate, name="train", argv=argv, doc=doc,
        prog="jaxvision train")
    return 0


def _list_models(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(COMMANDS["list-models"])
        return 0
    pretrained = "--pretrained" in argv
    rest = [a for a in argv if a != "--pretrained"]
    if len(rest) > 1 or any(a.startswith("-") for a in rest):
        raise UsageError(f"list-models takes one PATTERN and --pretrained; got {argv}")
    from jaxvision import models

    for name in models.list(rest[0] if rest else "*", pretrained=pretrained):
        print(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxvision COMMAND ...``: the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0 if argv else USAGE_ERROR
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return _train(rest)
        if command == "list-models":
            return _list_models(rest)
        if command == "predict":
            from jaxvision import predict

            return predict.main(rest)
        if command == "serve":
            from jaxvision.serve.__main__ import main as serve_main

            return serve_main(rest)
        if command == "export":
            from jaxvision.export.__main__ import main as export_main

            return export_main(rest)
        from jaxvision.train.config import close_matches

        raise UsageError(f"unknown command {command!r}.{close_matches(command, COMMANDS)} "
                         f"Commands: {', '.join(COMMANDS)}")
    except UsageError as error:
        _report_usage_error("jaxvision", error, "--verbose" in rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
