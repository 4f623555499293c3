"""The pretrained-weights registry on its real code path, without the network: a torchvision-
layout ResNet-18 state dict built here is served by a loopback HTTP server and registered under
a test entry with its real sha256 prefix; ``models.create(..., weights=...)`` downloads, checks,
converts and caches it exactly as it would the publisher's file."""

import functools
import hashlib
import http.server
import os
import socket
import sys
import threading

import jax
import numpy as np
import pytest

from jaxvision import models
from jaxvision.models import pretrained

torch = pytest.importorskip("torch")

from torch_reference import TorchResNet18, randomize_bn, torch_forward  # noqa: E402

NUM_CLASSES = 10


class _Server:
    """``http.server`` on 127.0.0.1 (port 0) in a thread, serving ``root``; counts GETs."""

    def __init__(self, root):
        hits = self.hits = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                hits.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The "publisher": a torch ResNet-18 saved as ``resnet18-<sha256[:8]>.pth`` (and a
    corrupted copy under the same name in ``bad/``), served over loopback."""
    root = tmp_path_factory.mktemp("publisher")
    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=NUM_CLASSES)).eval()
    staging = root / "staging.pth"
    torch.save(reference.state_dict(), staging)
    data = staging.read_bytes()
    staging.unlink()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    filename = f"resnet18-{prefix}.pth"
    (root / filename).write_bytes(data)
    corrupted = bytearray(data)
    corrupted[len(corrupted) // 2] ^= 0xFF
    (root / "bad").mkdir()
    (root / "bad" / filename).write_bytes(bytes(corrupted))
    server = _Server(root)
    yield {"reference": reference, "server": server, "filename": filename, "prefix": prefix,
           "bytes": data}
    server.close()


def _entry(url, name="TEST_LOOPBACK"):
    resnet = pretrained.get_weights("resnet18", "IMAGENET1K_V1")
    return pretrained.Weights(model="resnet18", name=name, url=url,
                              input_spec=resnet.input_spec, resize_size=resnet.resize_size,
                              num_classes=NUM_CLASSES)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(pretrained.CACHE_ENV, str(root))
    return root


def _register(monkeypatch, entry):
    monkeypatch.setitem(pretrained._REGISTRY, (entry.model, entry.name), entry)
    return entry


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_loopback_download_converts_to_torch_logits_and_second_create_uses_cache(
        published, cache, monkeypatch):
    server = published["server"]
    entry = _register(monkeypatch, _entry(f"{server.url}/{published['filename']}"))
    assert entry.sha256 == published["prefix"]  # torchvision's rule: the file name's hash suffix
    hits_before = len(server.hits)

    first = models.create("resnet18", weights="TEST_LOOPBACK")
    assert len(server.hits) == hits_before + 1
    assert _files(cache) == sorted([f"weights/{published['filename']}",
                                    f"weights/{entry.converted_filename}"])
    assert (cache / "weights" / published["filename"]).read_bytes() == published["bytes"]
    assert first.input_spec == entry.input_spec and first.weights is entry

    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    expected = torch_forward(published["reference"], x)
    model, variables = first
    assert model == models.create("resnet18", num_classes=NUM_CLASSES)
    ours = np.asarray(first(x))
    assert ours.shape == expected.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)

    # Second create: the cached safetensors, no request, and no torch needed any more.
    monkeypatch.setitem(sys.modules, "torch", None)
    second = models.create("resnet18", weights="TEST_LOOPBACK")
    assert len(server.hits) == hits_before + 1
    jax.tree.map(np.testing.assert_array_equal, second.variables, first.variables)
    np.testing.assert_allclose(np.asarray(second(x)), expected, atol=1e-4, rtol=1e-4)


def test_checksum_mismatch_is_refused_and_leaves_nothing_in_the_cache(
        published, cache, monkeypatch):
    server = published["server"]
    _register(monkeypatch, _entry(f"{server.url}/bad/{published['filename']}"))
    hits_before = len(server.hits)
    with pytest.raises(ValueError, match=f"checksum mismatch.*does not start with "
                                         f"'{published['prefix']}'"):
        models.create("resnet18", weights="TEST_LOOPBACK")
    assert len(server.hits) == hits_before + 1  # it was downloaded, then refused
    assert _files(cache) == []  # no partial file, no source, no conversion


def test_a_corrupt_file_put_in_the_cache_by_hand_is_refused(published, cache, monkeypatch):
    _register(monkeypatch, _entry(f"{published['server'].url}/{published['filename']}"))
    (cache / "weights").mkdir(parents=True)
    target = cache / "weights" / published["filename"]
    target.write_bytes(published["bytes"][:-10])
    with pytest.raises(ValueError, match="checksum mismatch"):
        models.create("resnet18", weights="TEST_LOOPBACK")
    assert _files(cache) == [f"weights/{published['filename']}"]  # nothing converted from it


def test_offline_names_the_url_and_the_cache_path(published, cache, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{published['filename']}"
    _register(monkeypatch, _entry(url))
    with pytest.raises(pretrained.WeightsUnavailableError) as info:
        models.create("resnet18", weights="TEST_LOOPBACK")
    message = str(info.value)
    assert url in message
    assert str(cache / "weights" / published["filename"]) in message
    assert _files(cache) == []
    # Following the message (the file put there by hand) works without the network.
    (cache / "weights" / published["filename"]).write_bytes(published["bytes"])
    model, variables = models.create("resnet18", weights="TEST_LOOPBACK")
    assert variables["params"]["head"]["kernel"].shape == (512, NUM_CLASSES)


def test_reading_a_pth_without_torch_says_so_before_downloading(published, cache, monkeypatch):
    server = published["server"]
    _register(monkeypatch, _entry(f"{server.url}/{published['filename']}"))
    monkeypatch.setitem(sys.modules, "torch", None)
    hits_before = len(server.hits)
    with pytest.raises(ValueError, match="needs PyTorch once.*not installed"):
        models.create("resnet18", weights="TEST_LOOPBACK")
    assert len(server.hits) == hits_before


def test_unknown_weights_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V9' for model 'resnet50'; "
                                         r"available: IMAGENET1K_V2, IMAGENET1K_V1"):
        models.create("resnet50", weights="IMAGENET1K_V9")
    with pytest.raises(ValueError, match=r"no pretrained weights .* 'lenet5'.*resnet18"):
        models.create("lenet5", weights="IMAGENET1K_V1")


def test_weight_names_resolve_as_torchvision_names_them():
    assert pretrained.get_weights("resnet50", "DEFAULT").name == "IMAGENET1K_V2"
    v2 = pretrained.get_weights("resnet50", "ResNet50_Weights.IMAGENET1K_V2")
    assert v2.url == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
    assert v2.sha256 == "11ad3fa6" and v2.resize_size == 232
    assert v2.input_spec.image_size == (224, 224)
    assert v2.input_spec.mean == (0.485, 0.456, 0.406)
    features = pretrained.get_weights("vgg16", "IMAGENET1K_FEATURES")
    assert features.sha256 == "88682ab5"  # first hex run after a '-' before a '.', as torch.hub
    swag = pretrained.get_weights("vit_b16", "IMAGENET1K_SWAG_E2E_V1")
    assert swag.input_spec.image_size == (384, 384) and swag.interpolation == "bicubic"
    pretrained_names = models.list_models(pretrained=True)
    assert {"alexnet", "resnet18", "resnet50", "vgg16_bn", "vit_b16", "vit_l32"} <= set(
        pretrained_names)
    assert "lenet5" not in pretrained_names and "lenet5" in models.list_models()
    assert models.list("vit_*", pretrained=True) == ["vit_b16", "vit_b32", "vit_l16", "vit_l32"]


def _num_params(entry):
    model = pretrained._build(entry, num_classes=entry.num_classes)
    size = entry.input_spec.image_size[0]
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jax.numpy.zeros(
        (1, size, size, 3)), train=False))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize("model", ["alexnet", "resnet18", "se_resnet50", "vgg11_bn", "vit_b32"])
def test_registered_architectures_have_the_publishers_parameter_count(model):
    """Each entry builds the model its file was saved from: the parameter count torchvision
    publishes for the weights (``meta["num_params"]``) is the jaxvision model's."""
    for name in pretrained.list_weights(model):
        entry = pretrained.get_weights(model, name)
        assert _num_params(entry) == entry.meta["num_params"], (model, name)


@pytest.mark.slow
def test_every_registered_architecture_has_the_publishers_parameter_count():
    for model in pretrained.pretrained_models():
        for name in pretrained.list_weights(model):
            entry = pretrained.get_weights(model, name)
            assert _num_params(entry) == entry.meta["num_params"], (model, name)


def test_local_pth_and_safetensors_files_work_the_same_way(published, cache, tmp_path):
    from safetensors.torch import save_file

    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    expected = torch_forward(published["reference"], x)
    pth = tmp_path / "my_resnet18.pth"
    pth.write_bytes(published["bytes"])
    st = tmp_path / "my_resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in published["reference"].state_dict().items()}, str(st))
    for path in (pth, st, str(st)):
        loaded = models.create("resnet18", weights=path)
        assert loaded.model.num_classes == NUM_CLASSES  # read from the file's head
        np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-4, rtol=1e-4)
    headless = models.create("resnet18", weights=st, num_classes=None)
    assert "head" not in headless.variables["params"]
    jax.tree.map(np.testing.assert_array_equal, headless.variables["batch_stats"],
                 loaded.variables["batch_stats"])


def test_a_new_head_is_fresh_and_the_rest_is_loaded(tmp_path):
    """Fine-tuning set-up: another ``num_classes`` keeps every other array of the file and
    initialises the head as ``model.init`` would from ``rng``. (A jaxvision-layout file of a
    small model, so the fresh init compiles quickly; the ResNet-18 case is the slow test.)"""
    source = models.create("small_cnn", num_classes=10)
    shape = (1, 16, 16, 3)
    rng = np.random.default_rng(1)
    saved = jax.tree.map(lambda s: rng.normal(size=s.shape).astype(s.dtype), jax.eval_shape(
        pretrained._init, source, jax.random.key(1), shape))
    path = tmp_path / "small_cnn.safetensors"
    pretrained.save_variables(str(path), saved, input_shape=shape)
    new_head = models.create("small_cnn", weights=path, num_classes=3, rng=jax.random.key(7))
    fresh = pretrained._init(new_head.model, jax.random.key(7), shape)  # model.init
    assert new_head.variables["params"]["head"]["kernel"].shape == (128, 3)
    jax.tree.map(np.testing.assert_array_equal, new_head.variables["params"]["head"],
                 fresh["params"]["head"])
    for collection in ("params", "batch_stats"):
        for name in saved[collection]:
            if name != "head":
                jax.tree.map(np.testing.assert_array_equal, new_head.variables[collection][name],
                             saved[collection][name])


@pytest.mark.slow
def test_a_new_head_on_torchvision_weights(published, tmp_path):
    from safetensors.torch import save_file

    st = tmp_path / "my_resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in published["reference"].state_dict().items()}, str(st))
    new_head = models.create("resnet18", weights=st, num_classes=3, rng=jax.random.key(7))
    fresh = pretrained._init(new_head.model, jax.random.key(7), (1, 224, 224, 3))  # model.init
    np.testing.assert_array_equal(new_head.variables["params"]["head"]["kernel"],
                                  fresh["params"]["head"]["kernel"])
    state = published["reference"].state_dict()
    np.testing.assert_array_equal(new_head.variables["params"]["conv1"]["kernel"],
                                  state["conv1.weight"].numpy().transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(new_head.variables["batch_stats"]["layer4_1"]["bn2"]["var"],
                                  state["layer4.1.bn2.running_var"].numpy())


def test_converted_cache_file_is_itself_a_weights_file(published, cache, monkeypatch):
    """The cached safetensors (Flax layout, spec in its metadata) loads as a local path."""
    entry = _register(monkeypatch, _entry(f"{published['server'].url}/{published['filename']}"))
    first = models.create("resnet18", weights="TEST_LOOPBACK")
    path = cache / "weights" / entry.converted_filename
    assert pretrained.is_converted(str(path))
    again = models.create("resnet18", weights=path)
    assert again.input_spec == entry.input_spec
    jax.tree.map(np.testing.assert_array_equal, again.variables, first.variables)


def test_other_architecture_options_do_not_silently_load(published, cache, monkeypatch):
    _register(monkeypatch, _entry(f"{published['server'].url}/{published['filename']}"))
    with pytest.raises(ValueError, match="do not fit ResNet as configured.*se"):
        models.create("resnet18", weights="TEST_LOOPBACK", se_reduction=16)
    assert os.path.exists(cache / "weights" / published["filename"])


def test_init_from_takes_published_weights_by_name(published, cache, monkeypatch):
    """``config.init_from = "<model>.<WEIGHTS>"``: the engine starts from the same cached,
    converted file that ``create`` uses; a new head stays fresh through ``init_dont_load``."""
    from jaxvision.train.init_from import check_source, load_initial_variables

    server = published["server"]
    _register(monkeypatch, _entry(f"{server.url}/{published['filename']}"))
    check_source("resnet18.TEST_LOOPBACK")
    model = models.create("resnet18", num_classes=3)
    shapes = jax.eval_shape(pretrained._init, model, jax.random.key(0), (1, 64, 64, 3))
    fresh = jax.tree.map(lambda s: np.full(s.shape, 7, s.dtype), shapes)
    hits_before = len(server.hits)
    params, model_state = load_initial_variables(
        "resnet18.TEST_LOOPBACK", model, fresh["params"], {"batch_stats": fresh["batch_stats"]},
        dont_load=("head",))
    assert len(server.hits) == hits_before + 1
    state = published["reference"].state_dict()
    np.testing.assert_array_equal(params["layer2_0"]["downsample_conv"]["kernel"],
                                  state["layer2.0.downsample.0.weight"].numpy().transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model_state["batch_stats"]["bn1"]["mean"],
                                  state["bn1.running_mean"].numpy())
    np.testing.assert_array_equal(params["head"]["kernel"], fresh["params"]["head"]["kernel"])
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET1K_V9'.*IMAGENET1K_V1"):
        check_source("resnet18.IMAGENET1K_V9")


@pytest.mark.parametrize("height, width", [(300, 400), (500, 333), (120, 90)])
def test_weights_transforms_match_torchvision_eval_resize_and_crop(height, width):
    """ResNet-50 V2's evaluation transform (shorter side to 232, antialiased bilinear, rounded
    to uint8 as torchvision does on uint8 tensors; center crop 224; ImageNet normalisation)
    against torch's ``interpolate(antialias=True)``: at most one grey level apart (rounding)."""
    entry = pretrained.get_weights("resnet50", "IMAGENET1K_V2")
    rng = np.random.default_rng(height)
    image = np.cumsum(rng.integers(0, 256, (height, width, 3)), axis=0).astype(np.uint8)
    ours = entry.transforms(image)
    assert ours.shape == (1, 224, 224, 3) and ours.dtype == np.float32
    short, long = min(height, width), max(height, width)
    size = (232, int(232 * long / short)) if height <= width else (int(232 * long / short), 232)
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(image).permute(2, 0, 1)[None], size=size, mode="bilinear",
        antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
    top, left = round((size[0] - 224) / 2), round((size[1] - 224) / 2)
    crop = resized[top:top + 224, left:left + 224].astype(np.float32) / 255
    mean, std = np.float32(entry.input_spec.mean), np.float32(entry.input_spec.std)
    grey_levels = np.abs(ours[0] - (crop - mean) / std) * std * 255
    assert grey_levels.max() <= 1.001 and grey_levels.mean() < 0.3
    with pytest.raises(ValueError, match="expected uint8 images"):
        entry.transforms(image.astype(np.float32))
