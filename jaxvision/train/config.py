"""The training config: defaults every experiment starts from, and the checks that stop a bad
value before anything is loaded or compiled."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
from typing import Any

import jax.numpy as jnp
import ml_collections

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

# config.optimizer: name -> (default, type, meaning). A None default means "derived": the
# optimizer or schedule picks the value named in the meaning.
OPTIMIZER_OPTIONS: dict[str, tuple] = {
    "name": ("adamw", str, "sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw"),
    "learning_rate": (1e-3, float, "the base (or peak) learning rate"),
    "schedule": ("cosine", str, "constant | step | multistep | exponential | polynomial | "
                 "cosine | cosine_restarts | one_cycle | cyclic"),
    "warmup_steps": (0, int, "linear warmup from 0 over this many steps, before the schedule"),
    "momentum": (0.9, float, "SGD/RMSprop momentum (0: none)"),
    "nesterov": (False, bool, "Nesterov momentum (SGD)"),
    "weight_decay": (1e-4, float, "weight decay factor (0: none)"),
    "weight_decay_mode": (None, str, "coupled (L2 added to the gradient) | decoupled (AdamW); "
                          "None: decoupled for adamw, coupled otherwise"),
    "decay_mask": ("no_bias_norm", str, "all | no_bias_norm (biases and norm scales not decayed)"),
    "b1": (0.9, float, "Adam's first-moment decay"),
    "b2": (0.999, float, "Adam's second-moment decay"),
    "eps": (None, float, "Adam/AdaGrad/RMSprop epsilon; None: 1e-8"),
    "decay": (0.9, float, "RMSprop's squared-gradient decay"),
    "centered": (False, bool, "centered RMSprop"),
    "eps_in_sqrt": (True, bool, "AdaGrad/RMSprop: epsilon inside the square root"),
    "initial_accumulator_value": (0.0, float, "AdaGrad's initial accumulator"),
    "gamma": (None, float, "step/multistep/exponential decay factor; None: 0.1 (step, "
              "multistep), 0.97 (exponential)"),
    "step_size": (None, int, "step: steps between decays; None: a third of the decay steps"),
    "milestones": (None, tuple, "multistep: the steps of the decays; None: at 1/2 and 3/4"),
    "power": (1.0, float, "polynomial: the power"),
    "end_learning_rate": (0.0, float, "polynomial: the final learning rate"),
    "min_learning_rate": (0.0, float, "cosine, cosine_restarts: the floor"),
    "cosine_steps": (0, int, "cosine: the period T_max (0: the run's length)"),
    "first_cycle_steps": (None, int, "cosine_restarts: the first cycle; None: a quarter of the "
                          "decay steps"),
    "cycle_mult": (1, int, "cosine_restarts: each cycle's length multiplier"),
    "pct_start": (0.3, float, "one_cycle: the fraction of steps spent rising"),
    "div_factor": (25.0, float, "one_cycle: initial lr = learning_rate / div_factor"),
    "final_div_factor": (1e4, float, "one_cycle: final lr = initial lr / final_div_factor"),
    "max_learning_rate": (None, float, "cyclic: the top; None: 10 x learning_rate"),
    "step_size_up": (None, int, "cyclic: steps of the rising half; None: an eighth of the "
                     "decay steps"),
    "cyclic_mode": ("triangular", str, "cyclic: triangular | triangular2 | exp_range"),
    "cycle_momentum": (False, bool, "one_cycle: momentum (Adam: b1) cycles inversely to the LR, "
                       "as PyTorch's OneCycleLR(cycle_momentum=True)"),
    "base_momentum": (0.85, float, "one_cycle with cycle_momentum: the momentum at the LR's peak"),
    "max_momentum": (0.95, float, "one_cycle with cycle_momentum: the momentum at both ends"),
}


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Data: a TFDS name (embedded: 'digits', 'shapes/cls32', 'shapes/det64') or 'folder:<path>'.
    c.dataset = "digits"
    # Default: $TFDS_DATA_DIR if set; else the embedded data sets build into
    # ~/.cache/jaxvision/datasets ($JAXVISION_CACHE/datasets) and public ones use TFDS's
    # ~/tensorflow_datasets.
    c.data_dir = ml_collections.config_dict.placeholder(str)
    c.download = True
    c.train_split = "train"
    c.eval_split = "test"
    # A validation set to judge the run on (best checkpoints, early stopping): a named split or
    # folder, or a fraction carved off the end of train_split (e.g. 0.1). With one, eval_split
    # is the test set, evaluated once at the end with the best checkpoint.
    c.validation_split = ""
    c.validation_fraction = 0.0
    c.image_size = ml_collections.config_dict.placeholder(tuple)  # (H, W); default: native size
    c.cache_data = True
    # Task: what the loss and the metrics are ('classification' | 'segmentation') and its
    # options (segmentation: dice_weight, ignore_index).
    c.task = "classification"
    c.task_kwargs = ml_collections.ConfigDict()
    # Model: a name from jaxvision.models.list() and keyword overrides.
    c.model = "small_cnn"
    c.model_kwargs = ml_collections.ConfigDict()
    c.num_classes = 0  # 0: take it from the data set
    # Transfer learning: parameters matching no `trainable` regex (when any is given) or any
    # `frozen` regex get no gradient, no optimizer state, and their BatchNorm runs on running
    # statistics. Paths look like 'layer1/0/conv1/kernel'; matched with re.search.
    c.trainable = ()
    c.frozen = ()
    # Start a fresh run from other weights: a jaxvision workdir/checkpoint or a torchvision
    # .safetensors/.npz/.pth file; init_dont_load regexes keep fresh weights (e.g. 'head').
    c.init_from = ""
    c.init_dont_load = ()
    # Transfer strategies compiled against the model's stages (see jaxvision.transfer.strategy):
    # strategy '' | 'feature_extraction' | 'stages' | 'top_k' | 'last_fraction' | 'full' |
    # 'gradual'; lr_decay '' | 'course' (/10 /8 /6 /4 /2) | 'layer' (timm layer decay); head '' (the
    # model's own) | 'linear' | 'mlp' | 'bottleneck' | 'domain_adaptation'; residual adapters
    # after named blocks (only adapters and head train); BatchNorm modes per module regex.
    c.transfer = ml_collections.ConfigDict(dict(
        strategy="", stages=(), top_k=1, fraction=0.3, unfreeze_every_epochs=1, lr_decay="",
        layer_decay=0.75, head="", head_dropout=ml_collections.config_dict.placeholder(float),
        adapters_after=(), adapter_reduction=4, batch_norm_frozen=(), batch_norm_train=(),
        reinit_last_blocks=0))
    # Optimisation.
    c.batch_size = 64  # global, over all devices and processes
    c.eval_batch_size = 256
    c.num_epochs = 10
    # Every option of jaxvision.optim.build_optimizer / build_schedule (see OPTIMIZER_OPTIONS
    # for what each means); None: the default the optimizer or schedule derives.
    c.optimizer = ml_collections.ConfigDict({
        name: (ml_collections.config_dict.placeholder(kind) if default is None else default)
        for name, (default, kind, _) in OPTIMIZER_OPTIONS.items()})
    c.label_smoothing = 0.0
    c.grad_clip_norm = 0.0  # 0: off
    c.grad_accum_steps = 1
    c.compute_dtype = "float32"  # 'bfloat16' for mixed precision (params stay float32)
    c.sam = ml_collections.ConfigDict(dict(rho=0.0, group_size=0))  # rho 0: off; group 0: whole batch
    # Adversarial training (Madry et al. 2018): PGD examples in the train step replace `fraction`
    # of every micro-batch, made on the [0, 1] images against the model in inference mode (see
    # jaxvision.train.step.make_train_step). epsilon 0: off; step_size None: 2.5 * epsilon /
    # num_steps.
    c.adversarial = ml_collections.ConfigDict(dict(
        epsilon=0.0, norm="linf", num_steps=7,
        step_size=ml_collections.config_dict.placeholder(float), random_start=True, fraction=1.0))
    # On-device augmentation (jaxvision.augment.build): a preset name and/or a list of ops, and
    # the ops' options nested by op, e.g. preset='cifar', or ops=('flip', 'crop') with
    # crop.padding=4 (--config.augment.crop.padding=4; the flat 'crop_padding' also works).
    # Neither preset nor ops: no augmentation. `schema()` lists every op's options.
    c.augment = ml_collections.ConfigDict(dict(preset="", ops=()))
    # Devices.
    c.parallel = "jit"  # 'none' | 'jit' | 'pmap'
    c.num_devices = 0  # 0: all visible devices
    c.bn_mode = "sync"  # under pmap: 'sync' (global batch statistics) | 'per_device'
    # Robustness, logging and checkpoints.
    c.nonfinite = "stop"  # 'stop' | 'skip' a step whose loss or gradient is NaN/Inf
    c.max_consecutive_skips = 10  # nonfinite='skip' stops after this many skipped steps in a row
    c.log_every_steps = 50
    c.checkpoint_every_steps = 0  # 0: at the end of each epoch only
    c.keep_checkpoints = 2
    c.best_metric = "eval_accuracy"  # '' disables best-k checkpoints
    c.best_mode = "max"
    c.keep_best = 1
    c.early_stopping = ml_collections.ConfigDict(dict(metric="eval_loss", mode="min", patience=0,
                                                      min_delta=0.0))  # patience 0: off
    # Reduce on plateau (torch.optim.lr_scheduler.ReduceLROnPlateau, same options), judged like
    # early stopping after each evaluation: the schedule's LR is multiplied by `factor` after
    # `patience` evaluations without improvement; min_lr floors learning_rate x the multiplier.
    c.plateau = ml_collections.ConfigDict(dict(
        metric="", mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
        cooldown=0, min_lr=0.0))  # metric '': off
    c.tensorboard = True
    # A workdir that already holds a run: 'auto' resumes it and refuses a config that would
    # change the result; 'restart' moves the old run aside (never deletes it) and starts afresh;
    # 'force' resumes under the changed config (the old config.json is kept beside it).
    c.resume = "auto"
    return c


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"config.{name} must be one of {tuple(choices)}, got {value!r}")


def _check_finite(value, name: str) -> None:
    """Walks nested ConfigDicts, dicts, tuples and lists: a NaN or infinite number anywhere
    (learning rate, rho, an augmentation magnitude) only ever gives a garbage run."""
    if isinstance(value, (ml_collections.ConfigDict, dict)):
        for key, item in value.items():
            _check_finite(item, f"{name}.{key}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _check_finite(item, f"{name}[{i}]")
    elif isinstance(value, numbers.Real) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")


def _check_plateau(plateau, metrics: tuple[str, ...], learning_rate: float) -> None:
    _choice("plateau.mode", plateau.mode, ("min", "max"))
    _choice("plateau.threshold_mode", plateau.threshold_mode, ("rel", "abs"))
    if not 0 < plateau.factor < 1:
        raise ValueError(f"config.plateau.factor must lie in (0, 1), got {plateau.factor}")
    for name in ("patience", "cooldown", "threshold", "min_lr"):
        if plateau[name] < 0:
            raise ValueError(f"config.plateau.{name} must be >= 0, got {plateau[name]}")
    if plateau.metric:
        _choice("plateau.metric", plateau.metric, metrics)
        if learning_rate <= 0:  # the multiplier and min_lr are relative to it
            raise ValueError("config.plateau needs config.optimizer.learning_rate > 0, got "
                             f"{learning_rate}")


def _check_adversarial(adversarial) -> None:
    from jaxvision.interpret.adversarial import check_attack

    try:
        check_attack(adversarial.epsilon, adversarial.norm, adversarial.num_steps,
                     adversarial.step_size)
    except ValueError as error:  # its messages start with the option's name
        raise ValueError(f"config.adversarial.{error}") from None
    if not 0 < adversarial.fraction <= 1:
        raise ValueError(f"config.adversarial.fraction must lie in (0, 1], got "
                         f"{adversarial.fraction}")


def validate_config(config: ml_collections.ConfigDict, *, num_devices: int,
                    metric_names: tuple[str, ...] | None = None) -> None:
    """Raises ``ValueError`` naming the first bad value; needs no data and compiles nothing.

    ``metric_names``: the eval metrics of the task in use (default: those of the task
    ``config.task`` names), which best checkpoints, early stopping and plateau may judge."""
    from jaxvision import tasks

    from jaxvision.data.sources import check_image_size

    check_keys(config)
    _check_finite(config, "config")
    _choice("parallel", config.parallel, ("none", "jit", "pmap"))
    _choice("compute_dtype", config.compute_dtype, COMPUTE_DTYPES)
    _choice("nonfinite", config.nonfinite, ("stop", "skip"))
    _choice("resume", config.resume, ("auto", "restart", "force"))
    _choice("bn_mode", config.bn_mode, ("sync", "per_device"))
    _choice("best_mode", config.best_mode, ("max", "min"))
    _choice("early_stopping.mode", config.early_stopping.mode, ("max", "min"))
    if metric_names is None:
        _choice("task", config.task, tasks.TASKS)
        metric_names = tasks.TASKS[config.task].metric_names
    metrics = tuple(f"eval_{name}" for name in metric_names)
    if config.best_metric:
        _choice("best_metric", config.best_metric, metrics)
    if config.early_stopping.patience:
        _choice("early_stopping.metric", config.early_stopping.metric, metrics)
    _check_plateau(config.plateau, metrics, config.optimizer.learning_rate)
    for name in ("batch_size", "eval_batch_size", "num_epochs", "grad_accum_steps",
                 "log_every_steps", "keep_checkpoints", "max_consecutive_skips"):
        if config[name] < 1:
            raise ValueError(f"config.{name} must be >= 1, got {config[name]}")
    for name in ("grad_clip_norm", "label_smoothing", "checkpoint_every_steps", "num_classes"):
        if config[name] < 0:
            raise ValueError(f"config.{name} must be >= 0, got {config[name]}")
    if config.optimizer.learning_rate < 0:
        raise ValueError(f"config.optimizer.learning_rate must be >= 0, got "
                         f"{config.optimizer.learning_rate}")
    momentum = config.optimizer.get("momentum", 0.0)
    if not 0 <= momentum < 1:  # >= 1 diverges; negative is no momentum at all
        raise ValueError(f"config.optimizer.momentum must lie in [0, 1), got {momentum}")
    if config.get("init_from"):
        from jaxvision.train.init_from import check_source

        check_source(config.init_from)
    if config.get("transfer") is not None:
        from jaxvision.transfer.strategy import check_transfer_config

        check_transfer_config(config.transfer)
    if config.get("image_size") is not None:
        check_image_size(config.image_size, "config.image_size")
    if config.optimizer.name == "sam_optax":
        raise ValueError("config.optimizer.name='sam_optax' needs a grad_fn the engine's step does "
                         "not pass; use config.sam.rho (and config.sam.group_size) for SAM in "
                         "train_and_evaluate, and sam_optax in your own loops")
    if config.sam.rho < 0:
        raise ValueError(f"config.sam.rho must be >= 0, got {config.sam.rho}")
    _check_adversarial(config.adversarial)
    for name, size in (("batch_size", config.batch_size), ("eval_batch_size", config.eval_batch_size)):
        if size % num_devices:
            raise ValueError(f"config.{name}={size} is not divisible by the {num_devices} devices; "
                             f"use a multiple of {num_devices} or set config.num_devices")
    per_replica = config.batch_size // (num_devices if config.parallel == "pmap" else 1)
    if per_replica % config.grad_accum_steps:
        raise ValueError(f"the batch each step body sees ({per_replica}) is not divisible by "
                         f"config.grad_accum_steps={config.grad_accum_steps}")
    group = config.sam.group_size
    if config.sam.rho and group and (per_replica // config.grad_accum_steps) % group:
        raise ValueError(f"config.sam.group_size={group} does not divide the micro-batch of "
                         f"{per_replica // config.grad_accum_steps} examples")


# --- The declared schema: every option a config may hold, with its default ------------------

# What the top-level fields of default_config() hold (for --help).
FIELD_HELP = {
    "seed": "the run's random seed",
    "dataset": "a TFDS name (embedded: 'digits', 'shapes/cls32', 'shapes/det64', ...) or "
               "'folder:<path>'",
    "data_dir": "where TFDS data sets live (None: $TFDS_DATA_DIR or ~/tensorflow_datasets; "
                "embedded ones: the jaxvision cache)",
    "download": "download named data sets on first use",
    "train_split": "the training split", "eval_split": "the evaluation split",
    "validation_split": "a validation split or folder (then eval_split is the test set)",
    "validation_fraction": "a fraction of train_split carved off as validation",
    "image_size": "(H, W) to resize to; None: native size",
    "cache_data": "cache decoded data in memory",
    "task": "classification | segmentation | detection | localization | reconstruction | vae | "
            "vq_vae",
    "model": "a name from `jaxvision list-models`",
    "num_classes": "0: from the data set",
    "trainable": "regexes of the parameters that train (others frozen)",
    "frozen": "regexes of frozen parameters",
    "init_from": "start from these weights (a workdir, checkpoint or weights file)",
    "init_dont_load": "regexes of parameters that keep their fresh values",
    "batch_size": "global batch size", "eval_batch_size": "global evaluation batch size",
    "num_epochs": "epochs to train", "label_smoothing": "classification label smoothing",
    "grad_clip_norm": "clip gradients by global norm (0: off)",
    "grad_accum_steps": "micro-batches per step",
    "compute_dtype": "float32 | bfloat16 | float16",
    "parallel": "none | jit | pmap", "num_devices": "0: all visible devices",
    "bn_mode": "under pmap: sync | per_device",
    "nonfinite": "stop | skip a step whose loss or gradient is NaN/Inf",
    "max_consecutive_skips": "nonfinite=skip stops after this many in a row",
    "log_every_steps": "train metrics and progress every this many steps",
    "checkpoint_every_steps": "0: at the end of each epoch only",
    "keep_checkpoints": "latest checkpoints kept", "best_metric": "'' disables best checkpoints",
    "best_mode": "max | min", "keep_best": "best checkpoints kept",
    "tensorboard": "write TensorBoard events",
    "resume": "auto | restart | force (see jaxvision.train.config)",
    "sam.rho": "SAM radius (0: off)", "sam.group_size": "SAM m-sharpness group (0: whole batch)",
    "early_stopping.patience": "evaluations without improvement before stopping (0: off)",
    "plateau.metric": "reduce the LR on a plateau of this metric ('': off)",
    "augment.preset": "a preset from jaxvision.augment.PRESETS",
    "augment.ops": "op names from jaxvision.augment.OPS, in order",
}


@dataclasses.dataclass(frozen=True)
class Option:
    """One settable config option: its default, the type a value must have (None: any
    literal) and what it means."""

    default: Any
    kind: type | None
    help: str = ""


_PLAIN = (bool, int, float, str, tuple, list, type(None))


def _is_engine(config) -> bool:
    """A training config (``train_and_evaluate``'s), possibly nested in an experiment's."""
    return all(name in config for name in ("model", "optimizer", "augment", "task"))


def _leaf_kind(config, key):
    field = config._fields[key] if hasattr(config, "_fields") else None
    if isinstance(field, ml_collections.FieldReference):
        return field.get_type()
    value = config[key]
    return None if value is None else type(value)


def _walk(config, prefix: str, out: dict[str, Option]) -> None:
    for key in config.keys():
        value = config[key]
        path = prefix + key
        if isinstance(value, (ml_collections.ConfigDict, dict)) and (value or _is_dict_slot(path)):
            if isinstance(value, dict):
                value = ml_collections.ConfigDict(value)
            _walk(value, path + ".", out)
        elif not isinstance(value, (ml_collections.ConfigDict, dict)):
            out[path] = Option(value, _leaf_kind(config, key), FIELD_HELP.get(path, ""))


def _is_dict_slot(path: str) -> bool:
    """Option dicts whose keys are declared elsewhere (the model's, the task's, an op's)."""
    return path.split(".")[-1] in ("model_kwargs", "task_kwargs")


def model_options(name: str) -> dict[str, Option]:
    """The keyword options of the registered model ``name`` (its fields with plain values and
    the factory's own keywords, e.g. a backbone's kwargs), with their defaults."""
    from jaxvision import models
    from jaxvision.models.registry import _FACTORIES

    module = models.create(name)
    skip = {"parent", "name", "num_classes", "dtype"}
    options = {}
    if dataclasses.is_dataclass(module):
        for field in dataclasses.fields(module):
            value = getattr(module, field.name)
            if field.name in skip or not isinstance(value, _PLAIN):
                continue
            kind = None if value is None else type(value)
            options[field.name] = Option(value, kind, f"{name} option")
    factory = _FACTORIES[name]
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        parameters = ()
    for p in parameters:
        if (p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in skip
                and p.name not in options and p.default is not p.empty
                and isinstance(p.default, _PLAIN + (dict,))):
            kind = None if p.default is None else type(p.default)
            options[p.name] = Option(p.default, kind, f"{name} option")
    return options


def task_options(name: str) -> dict[str, Option]:
    """The keyword options of the task ``name`` (``config.task_kwargs``)."""
    from jaxvision import tasks

    if name not in tasks.TASKS or name == "classification":
        return {}  # classification takes no task_kwargs (label_smoothing is top-level)
    options = {}
    for p in inspect.signature(tasks.TASKS[name]).parameters.values():
        if p.name in ("num_classes", "self") or p.default is p.empty:
            continue
        if isinstance(p.default, _PLAIN):
            kind = None if p.default is None else type(p.default)
            options[p.name] = Option(p.default, kind, f"{name} task option")
    return options


def augment_options() -> dict[str, Option]:
    """``<op>.<option>`` for every augmentation op (nested under ``config.augment``); None as
    a default: the op's own default, or the preset's value."""
    from jaxvision.augment.pipeline import OPS, _options_of

    options = {}
    for op, spec in OPS.items():
        for option, p in {**_options_of(spec.fn), "apply_probability": None}.items():
            default = None if p is None or p.default is p.empty else p.default
            kind = None if default is None or not isinstance(default, _PLAIN) else type(default)
            shown = default if isinstance(default, _PLAIN) else None
            note = (f"{op}: apply it with this probability (default: always)" if p is None
                    else f"{op} option (default {shown!r})")
            options[f"{op}.{option}"] = Option(None, kind, note)
    return options


def schema(config: ml_collections.ConfigDict) -> dict[str, Option]:
    """Every option ``config`` may hold, by dotted path, with its default: the fields it has,
    and for a training config (also one nested in an experiment's) every optimizer and
    schedule option, every augmentation op's options (``augment.<op>.<option>``), and the
    options of the model and task it names (``model_kwargs.*``, ``task_kwargs.*``)."""
    out: dict[str, Option] = {}
    _walk(config, "", out)
    _add_engine_options(config, "", out)
    return out


def _add_engine_options(config, prefix: str, out: dict[str, Option]) -> None:
    if _is_engine(config):
        for name, (default, kind, meaning) in OPTIMIZER_OPTIONS.items():
            path = f"{prefix}optimizer.{name}"
            current = out.get(path)
            out[path] = Option(current.default if current else default, kind, meaning)
        for path, option in augment_options().items():
            out.setdefault(f"{prefix}augment.{path}", option)
        from jaxvision import models

        if isinstance(config.model, str) and config.model in models.list():
            for name, option in model_options(config.model).items():
                out.setdefault(f"{prefix}model_kwargs.{name}", option)
        if isinstance(config.task, str):
            for name, option in task_options(config.task).items():
                out.setdefault(f"{prefix}task_kwargs.{name}", option)
    for key in config.keys():
        value = config[key]
        if isinstance(value, ml_collections.ConfigDict) and key not in (
                "optimizer", "augment", "model_kwargs", "task_kwargs"):
            _add_engine_options(value, f"{prefix}{key}.", out)


def close_matches(name: str, candidates) -> str:
    """`` Did you mean 'a', 'b'?`` naming the candidates closest to ``name`` (or ''): first
    the siblings (same parent) with a close last part, else close full paths."""
    candidates = list(candidates)
    parent, _, leaf = name.rpartition(".")
    siblings = {c.rpartition(".")[2]: c for c in candidates if c.rpartition(".")[0] == parent}
    close = [siblings[m] for m in difflib.get_close_matches(leaf, siblings, n=3, cutoff=0.6)]
    if not close:
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.75)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


class UnknownKeyError(ValueError, KeyError):
    """A config key that the schema does not declare."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


def check_keys(config: ml_collections.ConfigDict) -> None:
    """Raises :class:`UnknownKeyError` for a key inside the library's option dicts (optimizer,
    augment, model_kwargs, task_kwargs, sam, adversarial, early_stopping, plateau, transfer)
    that the schema does not declare, naming the closest declared ones. Top-level fields are
    not checked here (experiments add their own); the command line checks those too."""
    declared = schema(_declared_base(config))
    given: dict[str, Option] = {}
    _walk(config, "", given)
    for path in given:
        top = path.split(".")[0]
        if "." not in path or top not in _LIBRARY_DICTS or path in declared:
            continue
        if _flat_augment_key(path) or _under_declared_dict(path, declared):
            continue
        if top == "model_kwargs" and not _model_is_known(config):
            continue  # the unknown model is the error (reported where it is built)
        raise UnknownKeyError(f"unknown config key {path!r}.{close_matches(path, declared)}")


_LIBRARY_DICTS = ("optimizer", "augment", "model_kwargs", "task_kwargs", "sam", "adversarial",
                  "early_stopping", "plateau", "transfer")


def _declared_base(config):
    """``config`` with default_config()'s fields where it lacks them (a config made before a
    field existed, or a trimmed one)."""
    base = default_config()
    for key in config.keys():
        value = config[key]
        if key in ("model_kwargs", "task_kwargs"):
            continue  # declared by the model and the task, not by what the config holds
        if key in base and isinstance(base[key], ml_collections.ConfigDict):
            continue  # keep the declared option dicts
        with base.ignore_type():
            base[key] = value
    return base


def _model_is_known(config) -> bool:
    from jaxvision import models

    return isinstance(config.get("model"), str) and config.model in models.list()


def _under_declared_dict(path: str, declared: dict[str, Option]) -> bool:
    """``model_kwargs.backbone_kwargs.conv`` where ``model_kwargs.backbone_kwargs`` is a
    declared dict option."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        option = declared.get(".".join(parts[:i]))
        if option is not None:
            return isinstance(option.default, dict) or option.default is None
    return False


def _flat_augment_key(path: str) -> bool:
    """``augment.crop_padding``: the flat spelling of ``augment.crop.padding``."""
    return flat_augment_path(path) is not None


def flat_augment_path(path: str) -> str | None:
    """``[prefix.]augment.<op>.<option>`` for a flat ``[prefix.]augment.<op>_<option>``."""
    head, sep, key = path.rpartition("augment.")
    if not sep or "." in key or (head and not head.endswith(".")):
        return None
    from jaxvision.augment.pipeline import OPS

    for op in sorted(OPS, key=len, reverse=True):
        if key.startswith(op + "_"):
            option = key[len(op) + 1:]
            if f"{op}.{option}" in augment_options():
                return f"{head}augment.{op}.{option}"
    return None
