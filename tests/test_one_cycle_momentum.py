"""One-cycle momentum cycling from the optimizer factory, step for step against PyTorch's
``OneCycleLR(cycle_momentum=True)``: the momentum (Adam: beta1) values and the trajectories."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.optim import build_momentum_schedule, build_optimizer

torch = pytest.importorskip("torch")

STEPS, MAX_LR = 20, 0.1
TARGET = np.array([1.0, -2.0, 0.5, 3.0], np.float32)


def _cfg(name, **extra):
    return dict(name=name, learning_rate=MAX_LR, schedule="one_cycle", pct_start=0.3,
                div_factor=25.0, final_div_factor=1e4, cycle_momentum=True,
                base_momentum=0.85, max_momentum=0.95, momentum=0.9, weight_decay=0.0, **extra)


def _torch_run(name):
    """Torch's parameters after each step, and the momentum/beta1 each step used."""
    w = torch.zeros(4, requires_grad=True)
    opt = (torch.optim.SGD([w], lr=MAX_LR, momentum=0.9) if name == "momentum"
           else torch.optim.Adam([w], lr=MAX_LR))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=STEPS,
                                                pct_start=0.3, base_momentum=0.85,
                                                max_momentum=0.95, cycle_momentum=True)
    target = torch.from_numpy(TARGET)
    momenta, params = [], []
    for _ in range(STEPS):
        group = opt.param_groups[0]
        momenta.append(group["momentum"] if name == "momentum" else group["betas"][0])
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
        sched.step()
        params.append(w.detach().numpy().copy())
    return np.array(momenta), np.array(params)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_momentum_cycles_as_torch_one_cycle_lr(name):
    want_momenta, want_params = _torch_run(name)
    schedule = build_momentum_schedule(_cfg(name), STEPS)
    np.testing.assert_allclose([float(schedule(t)) for t in range(STEPS)], want_momenta,
                               rtol=1e-6)
    # Falls from 0.95 to 0.85 while the LR rises (to step pct_start * T - 1 = 5), then back.
    assert want_momenta[0] == pytest.approx(0.95) and want_momenta[5] == pytest.approx(0.85)
    assert want_momenta[-1] == pytest.approx(0.95)
    tx = build_optimizer(_cfg(name), STEPS)
    w = jnp.zeros(4)
    state = tx.init(w)
    for t in range(STEPS):
        grads = 2 * (w - TARGET)
        updates, state = tx.update(grads, state, w)
        w = optax.apply_updates(w, updates)
        np.testing.assert_allclose(w, want_params[t], rtol=2e-5, atol=2e-6)


def test_cycle_momentum_off_by_default_and_needs_one_cycle():
    assert build_momentum_schedule(dict(name="momentum", learning_rate=0.1), 10) is None
    with pytest.raises(ValueError, match="one_cycle"):
        build_optimizer(dict(name="momentum", learning_rate=0.1, schedule="cosine",
                             cycle_momentum=True), 10)
    with pytest.raises(ValueError, match="adagrad"):
        build_optimizer(_cfg("adagrad"), 10)


def test_warmup_holds_max_momentum_then_cycles():
    schedule = build_momentum_schedule(_cfg("momentum", warmup_steps=5), STEPS + 5)
    cycle = build_momentum_schedule(_cfg("momentum"), STEPS)
    np.testing.assert_allclose([float(schedule(t)) for t in range(5)], 0.95)
    np.testing.assert_allclose([float(schedule(t + 5)) for t in range(STEPS)],
                               [float(cycle(t)) for t in range(STEPS)], rtol=1e-6)
