"""The training config: defaults every experiment starts from, and the checks that stop a bad
value before anything is loaded or compiled."""

from __future__ import annotations

import math
import numbers

import jax.numpy as jnp
import ml_collections

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Data: a TFDS name (embedded: 'digits', 'shapes/cls32', 'shapes/det64') or 'folder:<path>'.
    c.dataset = "digits"
    c.data_dir = ml_collections.config_dict.placeholder(str)  # default: $TFDS_DATA_DIR or ~/tensorflow_datasets
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
    c.optimizer = ml_collections.ConfigDict(dict(
        name="adamw", learning_rate=1e-3, schedule="cosine", warmup_steps=0, momentum=0.9,
        nesterov=False, weight_decay=1e-4))
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
    # On-device augmentation (jaxvision.augment.build): a preset name and/or a list of ops,
    # e.g. preset='cifar' or ops=('flip', 'crop') with crop_padding=4. Neither: no augmentation.
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
