"""Schedules against their formulas and torch.optim.lr_scheduler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import torch_lrs

from jaxvision.optim import build_schedule, schedules as S


def _values(schedule, steps):
    return np.asarray(jax.vmap(schedule)(jnp.asarray(steps)))


def test_step_exponential_cosine_course_values():
    np.testing.assert_allclose(_values(S.step_decay(0.1, step_size=30, gamma=0.1), [0, 29, 30, 59, 60, 90]),
                               [0.1, 0.1, 0.01, 0.01, 0.001, 1e-4], rtol=1e-5)
    np.testing.assert_allclose(_values(S.exponential_decay(0.1, gamma=0.95), [1, 10]), [0.095, 0.0598737], rtol=1e-5)
    np.testing.assert_allclose(_values(S.exponential_decay(0.1, gamma=0.97), [1, 10, 100]),
                               [0.097, 0.07374241, 0.00475525], rtol=1e-5)
    np.testing.assert_allclose(_values(S.cosine_decay(0.1, total_steps=100), [0, 25, 50, 75, 100]),
                               [0.1, 0.0853553, 0.05, 0.0146447, 0.0], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(_values(S.multistep_decay(1.0, milestones=[3, 5], gamma=0.5), [0, 2, 3, 4, 5, 9]),
                               [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(_values(S.polynomial_decay(1.0, total_steps=10, power=2.0), [0, 5, 10, 12]),
                               [1.0, 0.25, 0.0, 0.0])


def test_sgdr_course_values():
    sched = S.cosine_warm_restarts(0.1, first_cycle_steps=10, cycle_mult=2)
    np.testing.assert_allclose(_values(sched, [5, 9, 10, 20, 30, 50, 70, 150, 310]),
                               [0.05, 0.002447, 0.1, 0.05, 0.1, 0.05, 0.1, 0.1, 0.1], rtol=1e-3)
    assert S.restart_steps(first_cycle_steps=10, cycle_mult=2, num_cycles=5) == [10, 30, 70, 150, 310]


def test_one_cycle_course_values():
    sched = S.one_cycle(0.01, total_steps=1000, pct_start=0.1)
    np.testing.assert_allclose(_values(sched, [0, 99, 999]), [4e-4, 0.01, 4e-8], rtol=1e-4)


def test_warmup_in_front():
    sched = S.with_warmup(S.cosine_decay(1.0, total_steps=10), warmup_steps=4)
    np.testing.assert_allclose(_values(sched, [0, 2, 4, 9, 14]),
                               [0.0, 0.5, 1.0, 0.5 * (1 + np.cos(np.pi * 5 / 10)), 0.0], atol=1e-6)
    cfg = {"learning_rate": 1.0, "schedule": "cosine", "warmup_steps": 4}
    np.testing.assert_allclose(_values(build_schedule(cfg, 14), [0, 2, 4, 9, 14]),
                               _values(sched, [0, 2, 4, 9, 14]), atol=1e-6)


def test_cyclic_triangular_formula():
    sched = S.cyclic(0.1, max_lr=1.0, step_size_up=4)
    np.testing.assert_allclose(_values(sched, [0, 2, 4, 6, 8, 10]), [0.1, 0.55, 1.0, 0.55, 0.1, 0.55], rtol=1e-5)


def test_reduce_on_plateau_logic():
    state = S.reduce_on_plateau_init(1.0)
    lrs = []
    for metric in [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0]:
        state = S.reduce_on_plateau_update(state, metric, factor=0.5, patience=2)
        lrs.append(float(state.lr))
    # Improvements at epochs 0, 1, 5; reductions after 3 bad epochs (patience 2): epochs 4 and 8.
    np.testing.assert_allclose(lrs, [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25])


def test_torch_parity_step_by_step():
    torch = pytest.importorskip("torch")
    lr_sched = torch.optim.lr_scheduler
    cases = [
        (lambda o: lr_sched.OneCycleLR(o, max_lr=0.1, total_steps=100), S.one_cycle(0.1, total_steps=100), 100),
        (lambda o: lr_sched.OneCycleLR(o, max_lr=0.1, total_steps=50, pct_start=0.25, anneal_strategy="linear",
                                       three_phase=True),
         S.one_cycle(0.1, total_steps=50, pct_start=0.25, anneal="linear", three_phase=True), 50),
        (lambda o: lr_sched.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.001),
         S.cosine_warm_restarts(0.1, first_cycle_steps=5, cycle_mult=2, min_lr=0.001), 80),
        (lambda o: lr_sched.CosineAnnealingWarmRestarts(o, T_0=7), S.cosine_warm_restarts(0.1, first_cycle_steps=7), 40),
        (lambda o: lr_sched.StepLR(o, step_size=7, gamma=0.5), S.step_decay(0.1, step_size=7, gamma=0.5), 40),
        (lambda o: lr_sched.MultiStepLR(o, milestones=[5, 12], gamma=0.3),
         S.multistep_decay(0.1, milestones=[5, 12], gamma=0.3), 20),
        (lambda o: lr_sched.ExponentialLR(o, gamma=0.9), S.exponential_decay(0.1, gamma=0.9), 30),
        (lambda o: lr_sched.CosineAnnealingLR(o, T_max=30, eta_min=0.01),
         S.cosine_decay(0.1, total_steps=30, min_lr=0.01), 31),
        (lambda o: lr_sched.CosineAnnealingLR(o, T_max=12, eta_min=0.01),  # on past T_max
         S.cosine_decay(0.1, total_steps=12, min_lr=0.01, periodic=True), 50),
        (lambda o: lr_sched.PolynomialLR(o, total_iters=20, power=2.0), S.polynomial_decay(0.1, total_steps=20, power=2.0), 25),
        (lambda o: lr_sched.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=3, mode="triangular2"),
         S.cyclic(0.01, max_lr=0.1, step_size_up=5, step_size_down=3, mode="triangular2"), 40),
        (lambda o: lr_sched.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.97),
         S.cyclic(0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.97), 30),
    ]
    for make, ours, steps in cases:
        expected = torch_lrs(torch, make, steps)
        np.testing.assert_allclose(_values(ours, np.arange(steps)), expected, rtol=2e-5, atol=1e-9,
                                   err_msg=str(make(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))))


def test_torch_parity_reduce_on_plateau():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(1, 0.5, 10), 0.5 + 0.01 * rng.random(30), np.linspace(0.5, 0.2, 10)])
    expected = torch_lrs(torch, lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, factor=0.5, patience=3, cooldown=2, min_lr=0.01), len(metrics), metrics=metrics)
    state = S.reduce_on_plateau_init(0.1)
    ours = []
    update = jax.jit(lambda s, m: S.reduce_on_plateau_update(s, m, factor=0.5, patience=3, cooldown=2, min_lr=0.01))
    for m in metrics:
        ours.append(float(state.lr))
        state = update(state, m)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_factory_names_all_build(tmp_path):
    for name in ("constant", "step", "multistep", "exponential", "polynomial", "cosine", "cosine_restarts",
                 "one_cycle", "cyclic"):
        sched = build_schedule({"learning_rate": 0.1, "schedule": name, "warmup_steps": 2}, 40)
        values = _values(sched, np.arange(40))
        assert np.all(np.isfinite(values)) and values.max() <= 1.0 + 1e-6, name
    path = S.plot_schedules({"cos": S.cosine_decay(0.1, total_steps=20)}, total_steps=20, path=str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 1000 and path.endswith("s.png")


def test_config_cosine_steps_continues_past_the_period():
    from jaxvision.optim import build_schedule

    periodic = build_schedule({"learning_rate": 0.1, "schedule": "cosine", "cosine_steps": 10}, 100)
    spanning = build_schedule({"learning_rate": 0.1, "schedule": "cosine"}, 100)
    np.testing.assert_allclose([float(periodic(t)) for t in (0, 5, 10, 15, 20)],
                               [0.1, 0.05, 0.0, 0.05, 0.1], atol=1e-7)
    assert float(spanning(10)) == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 0.1)))
