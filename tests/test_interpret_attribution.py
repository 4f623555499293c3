"""jaxvision.interpret.attribution: captum's numbers on a converted ResNet-18, completeness and
finite differences on a trained CNN, guided backprop by hand, batching options, argument checks."""

import json
import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import convert, models
from jaxvision.interpret import attribution as attr


def key(seed):
    """An RBG key: XLA:CPU compiles its generator in a fraction of threefry's time."""
    return jax.random.key(seed, impl="rbg")


def init(model, x):
    return jax.jit(lambda x: model.init(key(0), x, train=False))(x)


def assert_close(ours, theirs, rtol=1e-4):
    """Equal to ``rtol`` of the largest reference magnitude (attributions span many decades)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=rtol * np.abs(theirs).max())


# ------------------------------------------------------------------ captum parity on ResNet-18

@pytest.fixture(scope="module")
def pair():
    """A random torchvision-layout ResNet-18 (random BN statistics too), converted; 2 images.
    torch runs on one thread: on a busy machine its spinning OpenMP threads make these tiny
    calls 20x slower."""
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum.attr")
    from torch_reference import TorchResNet18, randomize_bn

    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=10)).eval()
    model = models.create("resnet18", num_classes=10, conv="xla")
    variables = convert.load_torchvision(model, reference.state_dict(), input_shape=(1, 32, 32, 3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)

    def captum_run(name, **kwargs):
        """captum's attribution of the images (NCHW in torch), as NHWC numpy."""
        nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
        kwargs = {k: nchw(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        out = getattr(captum, name)(reference).attribute(nchw(x), target=[3, 7], **kwargs)
        if isinstance(out, tuple):
            return out[0].detach().numpy().transpose(0, 2, 3, 1), out[1].detach().numpy()
        return out.detach().numpy().transpose(0, 2, 3, 1)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield types.SimpleNamespace(model=model, variables=variables, x=x, target=[3, 7],
                                captum=captum_run, rng=rng)
    torch.set_num_threads(threads)


def test_saliency_matches_captum(pair):
    args = pair.model, pair.variables, pair.x, pair.target
    assert_close(attr.saliency(*args), pair.captum("Saliency"))
    signed = attr.saliency(*args, abs=False)
    assert_close(signed, pair.captum("Saliency", abs=False))
    assert (signed < 0).any()


@pytest.mark.slow
def test_input_x_gradient_and_guided_backprop_match_captum(pair):
    args = pair.model, pair.variables, pair.x, pair.target
    assert_close(attr.input_x_gradient(*args), pair.captum("InputXGradient"))
    assert_close(attr.guided_backprop(*args), pair.captum("GuidedBackprop"))


@pytest.mark.parametrize("method", attr.IG_METHODS)  # one compiled program for all
def test_integrated_gradients_match_captum(pair, method):
    baseline = pair.rng.normal(size=(1, 32, 32, 3)).astype(np.float32)  # shared by both images
    ours, delta = attr.integrated_gradients(pair.model, pair.variables, pair.x, pair.target,
                                            baseline=baseline, n_steps=8, method=method)
    theirs, their_delta = pair.captum("IntegratedGradients", baselines=baseline, n_steps=8,
                                      method=method, return_convergence_delta=True)
    assert_close(ours, theirs)
    np.testing.assert_allclose(delta, their_delta, rtol=0, atol=1e-4 * np.abs(theirs).sum())


def test_occlusion_matches_captum(pair):
    # Windows 16x16 over one channel at a time, stride 6: the last of 4 positions per spatial
    # axis (0, 6, 12, 18) is cut at the edge, and values are covered by 1 to 3 windows per axis.
    ours = attr.occlusion(pair.model, pair.variables, pair.x, pair.target,
                          sliding_window_shapes=(16, 16, 1), strides=(6, 6, 1), baselines=0.5)
    theirs = pair.captum("Occlusion", sliding_window_shapes=(1, 16, 16), strides=(1, 6, 6),
                         baselines=0.5, perturbations_per_eval=48)
    assert_close(ours, theirs)


# ------------------------------------------------------ properties on a CNN trained on digits

@pytest.fixture(scope="module")
def trained():
    """A small CNN (no BatchNorm or dropout) trained for 100 Adam steps on the embedded 8x8
    digits (test accuracy > 90%); 8 test images with their labels. SiLU, not ReLU: with ReLU
    the path integrand is piecewise constant and 64 Gauss-Legendre points leave up to about 1%
    (median 0.3%, max 1.06% over 32 test digits), too close to the 1% bound to test it."""
    import optax

    from jaxvision.data.builders.digits import digits_arrays

    images, labels = digits_arrays("train")
    test_images, test_labels = digits_arrays("test")
    model = models.create("small_cnn", num_classes=10, widths=(8, 16), hidden=32, norm=None,
                          dropout_rate=0.0, act="silu", conv="xla")
    images = jnp.asarray(images, jnp.float32) / 255
    variables = init(model, images[:1])
    tx = optax.adam(1e-2)

    @jax.jit
    def step(variables, state, x, y):
        def loss(v):
            logits = model.apply(v, x, train=False)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        updates, state = tx.update(jax.grad(loss)(variables), state)
        return optax.apply_updates(variables, updates), state

    state = tx.init(variables)
    rng = np.random.default_rng(0)
    for _ in range(100):
        batch = rng.integers(0, len(labels), 128)
        variables, state = step(variables, state, images[batch], labels[batch])
    x_test = jnp.asarray(test_images, jnp.float32) / 255
    accuracy = (model.apply(variables, x_test, train=False).argmax(-1) == test_labels).mean()
    assert accuracy > 0.9
    return types.SimpleNamespace(model=model, variables=variables, x=x_test[:8],
                                 target=test_labels[:8])


def test_integrated_gradients_are_complete_on_a_trained_cnn(trained):
    model, variables, x, target = trained.model, trained.variables, trained.x, trained.target
    ours, delta = attr.integrated_gradients(model, variables, x, target, n_steps=64)
    scores = lambda x: np.take_along_axis(
        np.asarray(model.apply(variables, x, train=False)), target[:, None], 1)[:, 0]
    gap = scores(x) - scores(jnp.zeros_like(x))
    assert (np.abs(gap) > 1).all()  # a trained net: the digits score far from black
    np.testing.assert_allclose(delta, np.asarray(ours).sum((1, 2, 3)) - gap, atol=1e-4)
    assert (np.abs(delta) <= 0.01 * np.abs(gap)).all(), (delta, gap)
    # Bounded memory, same integral: 3 steps of the 8 examples per pass (22 passes, 2 padded).
    chunked, _ = attr.integrated_gradients(model, variables, x, target, n_steps=64,
                                           internal_batch_size=3 * 8)
    assert_close(chunked, ours, rtol=1e-5)


@pytest.fixture(scope="module")
def untied(trained):
    """4 digits with a little noise: no exact ties in the max-pools (blank backgrounds are full
    of them), where one-sided slopes differ and finite differences measure neither."""
    x = trained.x[:4] + 0.05 * jax.random.uniform(key(5), (4, 8, 8, 1))
    target = np.asarray(trained.model.apply(trained.variables, x, train=False)).argmax(-1)
    return trained.model, trained.variables, x, target


def test_saliency_equals_central_differences(untied):
    model, variables, x, target = untied
    grads = np.asarray(attr.saliency(model, variables, x, target, abs=False))
    # Differences in float64, where a step of 1e-6 crosses no max-pool switch and still leaves
    # the rounding far below the gradient.
    eps = 1e-6
    with jax.enable_x64(True):
        model64 = model.clone(dtype=jnp.float64)
        x64 = jnp.asarray(x, jnp.float64)
        basis = eps * jnp.eye(64, dtype=jnp.float64).reshape(64, 8, 8, 1)
        for i in range(4):
            plus, minus = (model64.apply(variables, x64[i] + s * basis, train=False)[:, target[i]]
                           for s in (1, -1))
            numeric = np.asarray(plus - minus).reshape(8, 8, 1) / (2 * eps)
            assert_close(grads[i], numeric, rtol=1e-4)


def test_smoothgrad_averages_saliency_over_the_documented_noise(untied):
    model, variables, x, target = untied
    noise = 0.2 * jax.random.normal(key(3), (6,) + x.shape)
    samples = np.stack([attr.saliency(model, variables, x + n, target) for n in noise])
    options = dict(key=key(3), nt_samples=6, internal_batch_size=4 * 4)  # 2 passes, 1 padded
    for nt_type, expected in [("smoothgrad", samples.mean(0)),
                              ("smoothgrad_sq", (samples**2).mean(0)),
                              ("vargrad", samples.var(0))]:
        ours = attr.smoothgrad(model, variables, x, target, stdevs=0.2, nt_type=nt_type,
                               **options)
        assert_close(ours, expected, rtol=1e-5)
    # No noise: saliency itself.
    assert_close(attr.smoothgrad(model, variables, x, target, stdevs=0.0, **options),
                 attr.saliency(model, variables, x, target), rtol=1e-6)


@pytest.mark.slow  # keeps the default suite under its time budget
def test_occlusion_batching_does_not_change_it(trained):
    model, variables, x = trained.model, trained.variables, trained.x[:3]
    kwargs = dict(sliding_window_shapes=(3, 3, 1), strides=(2, 2, 1))
    whole = attr.occlusion(model, variables, x, **kwargs)
    assert_close(attr.occlusion(model, variables, x, internal_batch_size=5 * 3, **kwargs), whole,
                 rtol=1e-6)
    # A window as large as the input: every value gets the whole image's drop.
    full = attr.occlusion(model, variables, x, sliding_window_shapes=(8, 8, 1))
    logits = model.apply(variables, x, train=False)
    drop = logits.max(-1) - model.apply(variables, jnp.zeros_like(x), train=False)[
        jnp.arange(3), logits.argmax(-1)]
    assert_close(full, jnp.broadcast_to(drop[:, None, None, None], x.shape), rtol=1e-5)


# --------------------------------------------------------------------- guided backprop by hand

def test_guided_backprop_equals_the_hand_computation():
    model = models.create("mlp", num_classes=3, hidden=(6, 5))
    x = jax.random.normal(key(1), (4, 2, 2, 1))
    variables = init(model, x)
    p = jax.tree.map(np.asarray, variables["params"])
    flat = np.asarray(x).reshape(4, 4)
    pre1 = flat @ p["dense0"]["kernel"] + p["dense0"]["bias"]
    pre2 = np.maximum(pre1, 0) @ p["dense1"]["kernel"] + p["dense1"]["bias"]
    target = np.array([0, 1, 2, 1])
    # Back from the target logit; each ReLU passes a gradient only where both it and its
    # input are positive.
    g2 = p["head"]["kernel"][:, target].T
    g2 = np.where((pre2 > 0) & (g2 > 0), g2, 0)
    g1 = g2 @ p["dense1"]["kernel"].T
    g1 = np.where((pre1 > 0) & (g1 > 0), g1, 0)
    expected = (g1 @ p["dense0"]["kernel"].T).reshape(x.shape)
    ours = attr.guided_backprop(model, variables, x, target)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    plain = attr.saliency(model, variables, x, target, abs=False)
    assert np.abs(np.asarray(plain) - expected).max() > 1e-3  # the rule changed something


@pytest.mark.slow  # keeps the default suite under its time budget
def test_every_method_is_jit_and_vmap_safe():
    model = models.create("mlp", num_classes=3, hidden=(8,))
    x = jax.random.normal(key(1), (3, 4, 4, 1))
    variables = init(model, x)
    methods = {
        "saliency": lambda v, x, t: attr.saliency(model, v, x, t, abs=False),
        "input_x_gradient": lambda v, x, t: attr.input_x_gradient(model, v, x, t),
        "guided_backprop": lambda v, x, t: attr.guided_backprop(model, v, x, t),
        "integrated_gradients":
            lambda v, x, t: attr.integrated_gradients(model, v, x, t, n_steps=4)[0],
        "occlusion": lambda v, x, t: attr.occlusion(model, v, x, t,
                                                  sliding_window_shapes=[2, 2, 1]),  # a list
        "smoothgrad": lambda v, x, t: attr.smoothgrad(model, v, x, t, key=key(2)),
    }
    target = jnp.array([0, 2, 1])
    everything = lambda v, x, t: {name: f(v, x, t) for name, f in methods.items()}
    eager = everything(variables, x, target)
    jitted = jax.jit(everything)(variables, x, target)  # a traced target too
    # One example at a time (not smoothgrad: its noise depends on the batch's shape).
    del methods["smoothgrad"]
    vmapped = jax.jit(jax.vmap(lambda xi, ti: jax.tree.map(
        lambda a: a[0], everything(variables, xi[None], ti[None]))))(x, target)
    for name in eager:
        assert_close(jitted[name], eager[name], rtol=1e-5)
        if name in vmapped:
            assert_close(vmapped[name], eager[name], rtol=1e-5)
    # A concrete target is checked against the model's classes under vmap too.
    with pytest.raises(ValueError, match="target class 3 is out of range"):
        jax.vmap(lambda xi: attr.saliency(model, variables, xi[None], 3))(x)


# ---------------------------------------------------------------------------- argument checks

def test_bad_arguments_are_reported():
    model = models.create("mlp", num_classes=3, hidden=(4,))
    x = jnp.ones((2, 2, 2, 1))
    variables = init(model, x)
    args = model, variables, x
    with pytest.raises(ValueError, match=r"baseline has shape \(2, 2, 2\); give a scalar"):
        attr.integrated_gradients(*args, baseline=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="unknown integration method 'riemann'"):
        attr.integrated_gradients(*args, method="riemann")
    with pytest.raises(ValueError, match="riemann_left needs n_steps >= 2"):
        attr.integrated_gradients(*args, method="riemann_left", n_steps=1)
    with pytest.raises(ValueError, match="stdevs >= 0"):
        attr.smoothgrad(*args, key=key(0), stdevs=-0.1)
    with pytest.raises(ValueError, match="unknown nt_type 'smoothgrad_abs'"):
        attr.smoothgrad(*args, key=key(0), nt_type="smoothgrad_abs")
    with pytest.raises(ValueError, match="target class 3 is out of range for 3 classes"):
        attr.saliency(*args, 3)
    with pytest.raises(ValueError, match="out of range"):
        attr.occlusion(*args, [0, 5], sliding_window_shapes=1)
    with pytest.raises(ValueError, match="strides must not exceed"):
        attr.occlusion(*args, sliding_window_shapes=(1, 1, 1), strides=(2, 1, 1))
    with pytest.raises(ValueError, match=r"sliding_window_shapes must be .* 3 positive ints"):
        attr.occlusion(*args, sliding_window_shapes=(2, 2))
    with pytest.raises(ValueError, match="baselines has shape"):
        attr.occlusion(*args, sliding_window_shapes=1, baselines=np.zeros((3, 2, 2, 1)))
    with pytest.raises(ValueError, match="internal_batch_size must be >= 1"):
        attr.integrated_gradients(*args, internal_batch_size=0)
    lenet = models.create("lenet5", num_classes=3)  # tanh
    with pytest.raises(ValueError, match="LeNet5 has act='tanh'"):
        attr.guided_backprop(lenet, variables, x)
    fcn = models.create("tiny_fcn", num_classes=3)  # per-pixel logits
    x = jnp.ones((2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"must return \[N, classes\] logits; TinyFCN returns"):
        attr.saliency(fcn, init(fcn, x), x, 1)


# ---------------------------------------------------------------------------------- benchmark

@pytest.mark.slow
def test_benchmark_quick_smoke(capsys):
    import importlib.util

    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "interpret.py"
    spec = importlib.util.spec_from_file_location("interpret_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    records = bench.main(["--quick"])
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == records
    times = {(r["method"], r["framework"]): r["median_s"] for r in records if r["what"] == "time"}
    assert times[("integrated_gradients", "jaxvision")] > 0
    assert times[("integrated_gradients", "captum")] > 0
    ratio = next(r for r in records if r["what"] == "ratio"
                 and r["method"] == "integrated_gradients")
    assert ratio["max_rel_diff"] < 1e-4  # the same attributions on both sides
