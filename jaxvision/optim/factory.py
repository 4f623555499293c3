"""Optimizers and schedules from a config: the one place that turns names into optax objects.

``cfg`` is a mapping (``ml_collections.ConfigDict`` or ``dict``). Keys (all optional except
``name`` and ``learning_rate``):

* ``name``: ``sgd`` (``momentum`` > 0 for heavy ball, ``nesterov``), ``momentum`` (SGD with
  momentum, default 0.9), ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``, ``adamw``,
  ``sam_optax`` (``optax.contrib.sam`` in opaque mode around the ``sam_base`` optimizer).
* ``learning_rate``, ``schedule`` and its options (see ``build_schedule``), ``warmup_steps``.
* ``weight_decay`` and ``weight_decay_mode``: ``"coupled"`` adds ``wd * w`` to the gradient
  before the optimizer (PyTorch ``weight_decay=``, L2 regularisation; equals the penalty
  ``(wd/2) sum w**2``), ``"decoupled"`` subtracts ``lr * wd * w`` after it (AdamW, Loshchilov &
  Hutter). Default: decoupled for ``adamw``, coupled otherwise.
* ``decay_mask``: ``"all"`` or ``"no_bias_norm"`` (default; biases and norm scales get no decay).
* ``b1``, ``b2``, ``eps`` (Adam family), ``decay`` (RMSprop, 0.9), ``initial_accumulator_value``
  (AdaGrad, 0.0), ``eps_in_sqrt`` (AdaGrad/RMSprop).
* ``cycle_momentum`` (with ``schedule="one_cycle"``): the momentum (SGD, RMSprop) or Adam's
  ``b1`` cycles inversely to the LR between ``max_momentum`` (0.95) and ``base_momentum`` (0.85),
  as ``torch.optim.lr_scheduler.OneCycleLR(cycle_momentum=True)`` (PyTorch's default; here
  off by default, so existing configs keep their constant momentum). Held at
  ``max_momentum`` during a warmup.
* ``grad_clip_norm``: clip by global norm before everything else.
* ``frozen``: list of path regexes never updated; ``lr_multipliers``: ``{regex: factor}``.
* ``sam_rho``, ``sam_base`` (for ``sam_optax``).

Defaults are set so one step equals the course's formulas: AdaGrad starts its
accumulator at 0 with ``eps`` inside the square root (optax defaults to 0.1 and 1e-7);
RMSprop's accumulator starts at 0 with ``eps`` inside the root (optax's default).

``sam_optax`` returns an opaque ``optax.contrib.sam``: its ``update`` must be called as
``tx.update(grads, state, params, grad_fn=lambda p, i: grad_of_loss(p))`` and it takes one
extra gradient internally; BatchNorm statistics from ``grad_fn`` must be discarded. The
jaxvision SAM (``jaxvision.optim.sam.sam_value_and_grad``) is the preferred path: it has an
explicit m-sharpness group size and logs its statistics.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import optax

from jaxvision.optim import schedules as sched
from jaxvision.optim.partition import decay_mask, discriminative_lr, freeze

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "sam_optax")
SCHEDULES = ("constant", "step", "multistep", "exponential", "polynomial", "cosine",
             "cosine_restarts", "one_cycle", "cyclic")


def _get(cfg: Mapping[str, Any], key: str, default: Any) -> Any:
    value = cfg.get(key, default)
    return default if value is None else value


def build_schedule(cfg: Mapping[str, Any], total_steps: int) -> optax.Schedule:
    """Learning-rate schedule ``cfg['schedule']`` with optional linear warmup in front.

    Options (steps, not epochs): ``step``: ``step_size``, ``gamma``; ``multistep``:
    ``milestones``, ``gamma``; ``exponential``: ``gamma``; ``polynomial``: ``power``,
    ``end_learning_rate``; ``cosine``: ``min_learning_rate``, ``cosine_steps`` (``T_max``; set,
    the cosine goes on past it and climbs back, as PyTorch's ``CosineAnnealingLR``; unset, it
    spans the run); ``cosine_restarts``:
    ``first_cycle_steps``, ``cycle_mult``, ``min_learning_rate``; ``one_cycle``: ``pct_start``,
    ``div_factor``, ``final_div_factor`` (``learning_rate`` is the peak); ``cyclic``:
    ``max_learning_rate``, ``step_size_up``, ``cyclic_mode``. Decaying schedules span
    ``total_steps - warmup_steps`` so that the warmup comes first and the decay ends on time.
    """
    lr = float(cfg["learning_rate"])
    if lr < 0:
        raise ValueError(f"optimizer.learning_rate must be >= 0, got {lr}")
    name = _get(cfg, "schedule", "constant")
    warmup = int(_get(cfg, "warmup_steps", 0))
    if warmup < 0 or warmup > max(total_steps, 0):
        raise ValueError(f"optimizer.warmup_steps must be in [0, total_steps={total_steps}], "
                         f"got {warmup}")
    steps = max(total_steps - warmup, 1)
    gamma = float(_get(cfg, "gamma", 0.1))
    min_lr = float(_get(cfg, "min_learning_rate", 0.0))
    if name == "constant":
        main = sched.constant(lr)
    elif name == "step":
        main = sched.step_decay(lr, step_size=int(_get(cfg, "step_size", max(steps // 3, 1))),
                                gamma=gamma)
    elif name == "multistep":
        milestones = _get(cfg, "milestones", (steps // 2, (3 * steps) // 4))
        main = sched.multistep_decay(lr, milestones=list(milestones), gamma=gamma)
    elif name == "exponential":
        main = sched.exponential_decay(lr, gamma=float(_get(cfg, "gamma", 0.97)))
    elif name == "polynomial":
        main = sched.polynomial_decay(lr, total_steps=steps, power=float(_get(cfg, "power", 1.0)),
                                      end_lr=float(_get(cfg, "end_learning_rate", 0.0)))
    elif name == "cosine":
        period = _get(cfg, "cosine_steps", 0)
        main = sched.cosine_decay(lr, total_steps=int(period) or steps, min_lr=min_lr,
                                  periodic=bool(period))
    elif name == "cosine_restarts":
        main = sched.cosine_warm_restarts(
            lr, first_cycle_steps=int(_get(cfg, "first_cycle_steps", max(steps // 4, 1))),
            cycle_mult=int(_get(cfg, "cycle_mult", 1)), min_lr=min_lr)
    elif name == "one_cycle":
        main = sched.one_cycle(lr, total_steps=steps, pct_start=float(_get(cfg, "pct_start", 0.3)),
                               div_factor=float(_get(cfg, "div_factor", 25.0)),
                               final_div_factor=float(_get(cfg, "final_div_factor", 1e4)))
    elif name == "cyclic":
        main = sched.cyclic(lr, max_lr=float(_get(cfg, "max_learning_rate", 10 * lr)),
                            step_size_up=int(_get(cfg, "step_size_up", max(steps // 8, 1))),
                            mode=_get(cfg, "cyclic_mode", "triangular"))
    else:
        raise ValueError(f"unknown optimizer.schedule {name!r}; use one of {', '.join(SCHEDULES)}")
    return sched.with_warmup(main, warmup_steps=warmup) if warmup else main


def build_momentum_schedule(cfg: Mapping[str, Any], total_steps: int) -> optax.Schedule | None:
    """The one-cycle momentum schedule of ``cfg`` (``cycle_momentum``), or None when off.

    It spans the same steps as the LR's one cycle (after ``warmup_steps``, held at
    ``max_momentum`` until then) and takes ``pct_start``: momentum falls while the LR rises.
    """
    if not _get(cfg, "cycle_momentum", False):
        return None
    if _get(cfg, "schedule", "constant") != "one_cycle":
        raise ValueError("optimizer.cycle_momentum needs optimizer.schedule='one_cycle'")
    base, top = float(_get(cfg, "base_momentum", 0.85)), float(_get(cfg, "max_momentum", 0.95))
    if not 0 <= base <= top < 1:
        raise ValueError("optimizer.base_momentum and max_momentum need 0 <= base <= max < 1, "
                         f"got {base}, {top}")
    warmup = int(_get(cfg, "warmup_steps", 0))
    cycle = sched.one_cycle_momentum(total_steps=max(total_steps - warmup, 1),
                                     pct_start=float(_get(cfg, "pct_start", 0.3)),
                                     base_momentum=base, max_momentum=top)
    if not warmup:
        return cycle
    return lambda step: jax.numpy.where(step < warmup, top, cycle(step - warmup))


def _base_optimizer(name: str, cfg: Mapping[str, Any], lr: Any,
                    momentum_schedule: optax.Schedule | None = None,
                    ) -> optax.GradientTransformation:
    """The optimizer ``name`` without weight decay, driven by ``lr`` (a float or a schedule);
    ``momentum_schedule`` replaces the momentum (Adam: ``b1``) by a schedule."""
    eps = _get(cfg, "eps", None)
    if momentum_schedule is not None:
        return _cycled_momentum_optimizer(name, cfg, lr, momentum_schedule)
    if name in ("sgd", "momentum", "nesterov"):
        default_momentum = 0.0 if name == "sgd" else 0.9
        momentum = float(_get(cfg, "momentum", default_momentum)) or None
        nesterov = bool(_get(cfg, "nesterov", name == "nesterov"))
        if nesterov and momentum is None:
            raise ValueError("optimizer.nesterov=True needs optimizer.momentum > 0")
        return optax.sgd(lr, momentum=momentum, nesterov=nesterov)
    if name == "adagrad":
        return optax.adagrad(lr, initial_accumulator_value=float(_get(cfg, "initial_accumulator_value", 0.0)),
                             eps=float(1e-8 if eps is None else eps))
    if name == "rmsprop":
        momentum = float(_get(cfg, "momentum", 0.0)) or None
        return optax.rmsprop(lr, decay=float(_get(cfg, "decay", 0.9)),
                             eps=float(1e-8 if eps is None else eps),
                             eps_in_sqrt=bool(_get(cfg, "eps_in_sqrt", True)), momentum=momentum,
                             centered=bool(_get(cfg, "centered", False)))
    if name in ("adam", "adamw"):
        return optax.adam(lr, b1=float(_get(cfg, "b1", 0.9)), b2=float(_get(cfg, "b2", 0.999)),
                          eps=float(1e-8 if eps is None else eps))
    raise ValueError(f"unknown optimizer.name {name!r}; use one of {', '.join(OPTIMIZERS)}")


def _cycled_momentum_optimizer(name: str, cfg: Mapping[str, Any], lr: Any,
                               momentum: optax.Schedule) -> optax.GradientTransformation:
    """SGD, RMSprop or Adam with the momentum (b1) a schedule: ``optax.inject_hyperparams``
    evaluates it at every step, as OneCycleLR rewrites the param group's momentum/betas."""
    eps = _get(cfg, "eps", None)
    if name in ("sgd", "momentum", "nesterov"):
        return optax.inject_hyperparams(optax.sgd)(
            learning_rate=lr, momentum=momentum,
            nesterov=bool(_get(cfg, "nesterov", name == "nesterov")))
    if name == "rmsprop":
        return optax.inject_hyperparams(optax.rmsprop)(
            learning_rate=lr, momentum=momentum, decay=float(_get(cfg, "decay", 0.9)),
            eps=float(1e-8 if eps is None else eps),
            eps_in_sqrt=bool(_get(cfg, "eps_in_sqrt", True)),
            centered=bool(_get(cfg, "centered", False)))
    if name in ("adam", "adamw"):
        return optax.inject_hyperparams(optax.adam)(
            learning_rate=lr, b1=momentum, b2=float(_get(cfg, "b2", 0.999)),
            eps=float(1e-8 if eps is None else eps))
    raise ValueError(f"optimizer.cycle_momentum needs sgd, momentum, nesterov, rmsprop, adam or "
                     f"adamw, got {name!r}")


def _decayed_optimizer(name: str, cfg: Mapping[str, Any], lr: Any,
                       momentum_schedule: optax.Schedule | None = None,
                       ) -> optax.GradientTransformation:
    """The optimizer ``name`` with its (coupled or decoupled, masked) weight decay."""
    base = _base_optimizer(name, cfg, lr, momentum_schedule)
    weight_decay = float(_get(cfg, "weight_decay", 0.0))
    if weight_decay < 0:
        raise ValueError(f"optimizer.weight_decay must be >= 0, got {weight_decay}")
    if not weight_decay:
        return base
    mode = _get(cfg, "weight_decay_mode", "decoupled" if name == "adamw" else "coupled")
    mask_name = _get(cfg, "decay_mask", "no_bias_norm")
    if mask_name not in ("all", "no_bias_norm"):
        raise ValueError(f"optimizer.decay_mask must be 'all' or 'no_bias_norm', got {mask_name!r}")
    mask = decay_mask if mask_name == "no_bias_norm" else None
    if mode == "coupled":
        return optax.chain(optax.add_decayed_weights(weight_decay, mask=mask), base)
    if mode == "decoupled":
        return optax.chain(base, decoupled_weight_decay(weight_decay, learning_rate=lr, mask=mask))
    raise ValueError(f"optimizer.weight_decay_mode must be 'coupled' or 'decoupled', got {mode!r}")


def decoupled_weight_decay(weight_decay: float, *, learning_rate: Any,
                           mask: Any = None) -> optax.GradientTransformation:
    """Adds ``-lr(t) * weight_decay * w`` to the updates (AdamW/SGDW decay, after the optimizer).

    Chained after ``optax.adam(lr)`` it is exactly ``optax.adamw(lr, weight_decay)``.
    """
    lr_fn = learning_rate if callable(learning_rate) else (lambda _: learning_rate)

    def init_fn(params):
        del params
        return optax.ScaleByScheduleState(count=jax.numpy.zeros([], jax.numpy.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("decoupled weight decay needs params: call tx.update(grads, state, params)")
        lr_now = lr_fn(state.count)
        decayed = jax.tree.map(lambda u, p: u - lr_now * weight_decay * p, updates, params)
        return decayed, optax.ScaleByScheduleState(count=optax.safe_int32_increment(state.count))

    tx = optax.GradientTransformation(init_fn, update_fn)
    return optax.masked(tx, mask) if mask is not None else tx


def build_optimizer(cfg: Mapping[str, Any], total_steps: int) -> optax.GradientTransformation:
    """Optax optimizer named by ``cfg['name']`` driven by ``build_schedule`` (see module doc)."""
    schedule = build_schedule(cfg, total_steps)
    momentum = build_momentum_schedule(cfg, total_steps)
    name = cfg["name"]
    if name == "sam_optax":
        base_name = _get(cfg, "sam_base", "momentum")
        if base_name == "sam_optax":
            raise ValueError("optimizer.sam_base cannot be 'sam_optax'")
        base = _decayed_optimizer(base_name, cfg, schedule, momentum)
        rho = float(_get(cfg, "sam_rho", 0.05))
        adv = optax.chain(normalize_global(eps=float(_get(cfg, "sam_eps", 1e-12))), optax.sgd(rho))
        tx = optax.contrib.sam(base, adv, sync_period=2, opaque_mode=True,
                               batch_axis_name=_get(cfg, "sam_batch_axis_name", None))
    else:
        tx = _decayed_optimizer(name, cfg, schedule, momentum)
    multipliers = _get(cfg, "lr_multipliers", None)
    if multipliers:
        tx = discriminative_lr(tx, multipliers=dict(multipliers))
    frozen = _get(cfg, "frozen", None)
    if frozen:
        tx = freeze(tx, frozen=list(frozen))
    clip = float(_get(cfg, "grad_clip_norm", 0.0))
    if clip:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    return tx


def normalize_global(*, eps: float = 1e-12) -> optax.GradientTransformation:
    """``g / (||g||_2 + eps)`` over the whole tree: optax.contrib.normalize without the 0/0 NaN."""

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        norm = optax.tree.norm(updates)
        return jax.tree.map(lambda g: g / (norm + eps), updates), state

    return optax.GradientTransformation(init_fn, update_fn)
