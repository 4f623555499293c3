"""Pretrained weights: ``create("resnet50", weights="IMAGENET1K_V2")`` as torchvision's ``weights=``.

A :class:`Weights` entry names the publisher's file (its real URL), the sha256 prefix that
torchvision puts in the file name (``resnet50-11ad3fa6.pth``: the file's sha256 starts with
``11ad3fa6``, torchvision's ``check_hash`` rule) and the preprocessing the weights were trained
with (an :class:`~jaxvision.inference.InputSpec` for the model input, plus the resize-then-crop
of the evaluation transform).

The first use downloads the file into ``<cache>/weights/`` (``$JAXVISION_CACHE``, default
``~/.cache/jaxvision``): into a temporary file in that folder, verified, then renamed, so a
corrupt or partial download never sits in the cache. It is converted once through
:func:`jaxvision.convert.load_torchvision` and stored as ``<model>.<NAME>-<hash>.safetensors``
(Flax layout, the input spec and source in its metadata); later uses read only that file,
which needs neither the network nor PyTorch. Reading the publisher's ``.pth`` needs PyTorch,
once. Offline, the error names the URL and the path to put the file at.

``weights`` may also be a local file: a torchvision/timm ``.pth``/``.safetensors``/``.npz``
state dict, or a ``.safetensors`` this module wrote (:func:`save_variables`).

    pretrained = models.create("resnet50", weights="IMAGENET1K_V2")   # or "DEFAULT"
    logits = pretrained(pretrained.weights.transforms(uint8_images))  # resize 232, crop 224
    model, variables = pretrained                                     # plain Flax from here
    models.create("resnet50", weights="IMAGENET1K_V2", num_classes=10)  # new head, fresh
    models.list_models(pretrained=True); models.list_weights("vit_b16")

``config.init_from = "resnet50.IMAGENET1K_V2"`` starts a training run from the same file.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from typing import Any, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.inference import InputSpec

log = logging.getLogger("jaxvision.models")

CACHE_ENV = "JAXVISION_CACHE"
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torchvision.hub's: the hash suffix of a file name
_FORMAT = "jaxvision-variables"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailableError(ConnectionError):
    """The publisher's file could not be fetched (offline, moved, refused)."""


@dataclasses.dataclass(frozen=True)
class Weights:
    """One published set of weights for one zoo model (torchvision's ``Weights``).

    ``input_spec``: the model input (crop size, mean, std). ``resize_size`` and
    ``interpolation``: the evaluation transform resizes the shorter side to ``resize_size``
    with this interpolation, then center-crops to ``input_spec.image_size`` (torchvision's
    ``ImageClassification``). ``num_classes``: the classifier in the file;
    ``features_only``: its classifier is not usable, so ``create`` builds the model headless.
    ``model_kwargs``: what the file's architecture needs beyond the zoo default (a ViT's
    ``image_size``). ``sha256``: hash prefix, by default the file name's suffix.
    """

    model: str
    name: str
    url: str
    input_spec: InputSpec
    resize_size: int
    interpolation: str = "bilinear"
    num_classes: int = 1000
    features_only: bool = False
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sha256: str = ""
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # acc@1, num_params, ...
    default: bool = False

    def __post_init__(self):
        if not self.sha256:
            match = HASH_REGEX.search(self.filename)
            if match is None or not match.group(1):
                raise ValueError(f"{self.url!r} has no '-<sha256 prefix>.' in its file name; give "
                                 "Weights(sha256=...) explicitly")
            object.__setattr__(self, "sha256", match.group(1))
        if not re.fullmatch(r"[0-9a-f]{6,64}", self.sha256):
            raise ValueError(f"Weights.sha256 must be 6 to 64 lower-case hex digits, got "
                             f"{self.sha256!r}")

    def transforms(self, images) -> np.ndarray:
        """The evaluation transform the weights were measured with (torchvision's
        ``ImageClassification``): uint8 ``[H, W, C]`` or ``[N, H, W, C]`` -> shorter side
        resized to ``resize_size`` (antialiased, rounded back to uint8 as torchvision does on
        uint8 tensors), center crop to ``input_spec.image_size``, ``/255``, ``(x-mean)/std``."""
        return np.asarray(crop_transform(images, self.resize_size, self.input_spec,
                                         interpolation=self.interpolation))

    @property
    def filename(self) -> str:
        """The publisher's file name (the name the file has in the cache)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def converted_filename(self) -> str:
        return f"{self.model}.{self.name}-{self.sha256}.safetensors"


def crop_transform(images, resize_size: int, spec: InputSpec, *,
                   interpolation: str = "bilinear") -> jax.Array:
    """Resize the shorter side to ``resize_size``, center-crop to ``spec.image_size``,
    normalise with ``spec``: float32 ``[N, h, w, C]`` (see :meth:`Weights.transforms`)."""
    from jaxvision.inference import to_model_input

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"expected uint8 images [H, W, C] or [N, H, W, C], got {x.dtype} "
                         f"{x.shape}")
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}")
    n, h, w, c = x.shape
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(resize_size * long / short)  # torchvision's Resize(int) rule
    new_h, new_w = (resize_size, new_long) if h <= w else (new_long, resize_size)
    method = {"bilinear": "linear", "bicubic": "cubic"}[interpolation]
    y = x.astype(np.float32)
    if (new_h, new_w) != (h, w):
        y = jax.image.resize(jnp.asarray(y), (n, new_h, new_w, c), method=method,
                             antialias=True)
        y = jnp.clip(jnp.round(y), 0, 255)
    crop_h, crop_w = spec.image_size
    if crop_h > new_h or crop_w > new_w:
        raise ValueError(f"crop {spec.image_size} is larger than the resized image "
                         f"{(new_h, new_w)}")
    top, left = int(round((new_h - crop_h) / 2.0)), int(round((new_w - crop_w) / 2.0))
    y = y[:, top:top + crop_h, left:left + crop_w]
    return to_model_input(spec, jnp.asarray(y).astype(jnp.uint8))


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A model with its weights and preprocessing. ``model, variables = create(...)`` unpacks;
    ``pretrained(x)`` is ``model.apply(variables, x, train=False)``."""

    model: Any
    variables: dict
    input_spec: InputSpec | None
    weights: Weights | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.variables))

    def __call__(self, x):
        """Inference (``train=False``), jitted once per model configuration."""
        return _predict(self.model, self.variables, x)


@functools.partial(jax.jit, static_argnums=0)
def _predict(model, variables, x):
    return model.apply(variables, x, train=False)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model, key, shape):
    return model.init({"params": key, "dropout": key}, jnp.zeros(shape), train=False)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[tuple[str, str], Weights] = {}


def register_weights(entry: Weights) -> Weights:
    """Adds ``entry`` under ``(entry.model, entry.name)``; a name is registered once."""
    key = (entry.model, entry.name)
    if key in _REGISTRY:
        raise ValueError(f"weights {entry.name!r} for {entry.model!r} are registered twice")
    _REGISTRY[key] = entry
    return entry


def list_weights(model: str) -> builtins.list[str]:
    """Names of the weights published for the zoo model ``model`` (default first)."""
    entries = [e for (m, _), e in _REGISTRY.items() if m == model]
    return [e.name for e in sorted(entries, key=lambda e: (not e.default, e.name))]


def pretrained_models() -> builtins.list[str]:
    """Sorted zoo names that have at least one registered set of weights."""
    return sorted({m for m, _ in _REGISTRY})


def list_models(pattern: str = "*", *, pretrained: bool = False) -> builtins.list[str]:
    """timm's ``list_models``: zoo names matching ``pattern``; ``pretrained=True``: only those
    with published weights."""
    from jaxvision.models.registry import list as list_zoo

    return list_zoo(pattern, pretrained=pretrained)


def get_weights(model: str, name: str) -> Weights:
    """The entry ``name`` (``"IMAGENET1K_V2"``, ``"DEFAULT"`` or ``"ResNet50_Weights.IMAGENET1K_V2"``)
    of ``model``; an unknown name stops with the available ones."""
    if not isinstance(name, str):
        raise ValueError(f"weights must be a name such as 'IMAGENET1K_V1' or a file path, got "
                         f"{type(name).__name__}")
    short = name.rsplit(".", 1)[-1] if re.fullmatch(r"\w+_Weights\.\w+", name) else name
    available = list_weights(model)
    if not available:
        raise ValueError(f"no pretrained weights are registered for model {model!r}; models with "
                         f"weights: {', '.join(pretrained_models())}")
    if short == "DEFAULT":
        short = available[0]
    if (model, short) not in _REGISTRY:
        raise ValueError(f"unknown weights {name!r} for model {model!r}; available: "
                         f"{', '.join(available)} (or 'DEFAULT' = {available[0]}), or a local "
                         ".pth/.safetensors/.npz path")
    return _REGISTRY[(model, short)]


def weights_reference(text: str) -> Weights | None:
    """The entry a ``"<model>.<WEIGHTS>"`` string names (timm's ``"resnet50.a1_in1k"`` form:
    ``"resnet50.IMAGENET1K_V2"``, ``"resnet18.DEFAULT"``), or None when it names none; used by
    ``config.init_from``."""
    match = re.fullmatch(r"(\w+)\.([A-Z][A-Z0-9_]*)", os.fspath(text))
    if match is None or not list_weights(match.group(1)):
        return None
    return get_weights(*match.groups())


# --------------------------------------------------------------------------------------------
# Cache, download, checksum
# --------------------------------------------------------------------------------------------


def cache_dir() -> str:
    """``$JAXVISION_CACHE``, or ``$XDG_CACHE_HOME/jaxvision`` (default ``~/.cache/jaxvision``)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "jaxvision")
    return os.path.abspath(os.path.expanduser(root))


def _weights_dir(root: str | None) -> str:
    return os.path.join(root or cache_dir(), "weights")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_error(what: str, digest: str, prefix: str) -> ValueError:
    return ValueError(f"checksum mismatch for {what}: its sha256 is {digest}, which does not start "
                      f"with {prefix!r} (the hash in the publisher's file name); the file is "
                      "corrupt or not the published one, so it was not used")


def download(url: str, destination: str, sha256_prefix: str, *, timeout: float = 30.0) -> str:
    """Fetches ``url`` to ``destination`` through a temporary file in the same folder, checks
    that its sha256 starts with ``sha256_prefix``, then renames it into place: a failed or
    corrupt download leaves nothing behind."""
    folder = os.path.dirname(destination)
    os.makedirs(folder, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".partial")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                log.info("downloading %s to %s", url, destination)
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError) as error:
                reason = getattr(error, "reason", None) or error
                raise WeightsUnavailableError(
                    f"cannot download {url} ({type(error).__name__}: {reason}). Without network "
                    f"access, fetch that file elsewhere and put it at {destination} (its sha256 "
                    f"must start with {sha256_prefix}); it is then used from there") from None
        if not digest.hexdigest().startswith(sha256_prefix):
            raise _checksum_error(f"the download of {url}", digest.hexdigest(), sha256_prefix)
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return destination


def _require_torch(path: str, url: str = "") -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        source = f" ({url})" if url else ""
        raise ValueError(f"converting {path}{source} needs PyTorch once: it is a pickled torch "
                         "state dict and PyTorch is not installed (pip install torch, CPU is "
                         "enough). The converted .safetensors it leaves in the cache then loads "
                         "without PyTorch; or give a .safetensors file instead") from None


# --------------------------------------------------------------------------------------------
# Flat safetensors of Flax variables
# --------------------------------------------------------------------------------------------


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _unflatten(flat: Mapping[str, Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def save_variables(path: str, variables: Mapping, *, input_shape: tuple[int, ...] | None = None,
                   input_spec: InputSpec | None = None, model_kwargs: Mapping | None = None,
                   **metadata: str) -> None:
    """Flax variables as one ``.safetensors`` (keys ``params/conv1/kernel``), atomically, with
    what rebuilding the model needs in its metadata: ``input_shape`` (NHWC, for models whose
    parameters depend on it), the ``input_spec`` and architecture ``model_kwargs``. Such a
    file is a ``weights=`` path for ``models.create``."""
    from safetensors.numpy import save_file

    if input_shape is None and input_spec is not None:
        input_shape = (1, *input_spec.shape)
    if input_shape is not None:
        metadata["input_shape"] = json.dumps([int(d) for d in input_shape])
    if input_spec is not None:
        metadata["input_spec"] = json.dumps(input_spec.to_json())
    if model_kwargs:
        metadata["model_kwargs"] = json.dumps(dict(model_kwargs))

    flat = {k: np.ascontiguousarray(np.asarray(v)) for k, v in _flatten(variables).items()}
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".convert-", suffix=".partial")
    os.close(fd)
    try:
        save_file(flat, partial, metadata={"format": _FORMAT, **metadata})
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(path, framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def read_variables(path: str) -> dict:
    """``{"params": ..., "batch_stats": ...}`` of a ``.safetensors`` written by this module."""
    return _unflatten(_read_safetensors(path)[0])


def is_converted(path: str) -> bool:
    """Whether ``path`` is a ``.safetensors`` of Flax variables written by this module."""
    if not path.endswith(".safetensors"):
        return False
    from safetensors import safe_open

    with safe_open(path, framework="np") as f:
        return (f.metadata() or {}).get("format") == _FORMAT


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _build(entry: Weights, **overrides):
    from jaxvision.models.registry import create

    return create(entry.model, **{**dict(entry.model_kwargs), **overrides})


def converted_path(entry: Weights, *, root: str | None = None) -> str:
    """The cached, converted ``.safetensors`` of ``entry``, fetched and converted if missing."""
    folder = _weights_dir(root)
    target = os.path.join(folder, entry.converted_filename)
    if os.path.exists(target):
        return target
    source = os.path.join(folder, entry.filename)
    if source.endswith((".pth", ".pt")):
        _require_torch(source, entry.url)
    if not os.path.exists(source):
        download(entry.url, source, entry.sha256)
    else:  # put there by hand (offline) or by an earlier run: verified before use
        digest = sha256_file(source)
        if not digest.startswith(entry.sha256):
            raise _checksum_error(source, digest, entry.sha256)
    from jaxvision import convert

    model = _build(entry, num_classes=entry.num_classes)
    variables = convert.load_torchvision(model, source)
    save_variables(target, variables, input_spec=entry.input_spec,
                   model_kwargs=entry.model_kwargs, model=entry.model, weights=entry.name,
                   url=entry.url, sha256=sha256_file(source))
    log.info("converted %s to %s", source, target)
    return target


def _fit(model, flat: dict[str, np.ndarray], *, what: str, rng=None,
         input_shape: tuple[int, ...] | None = None) -> dict:
    """``flat`` (``params/...`` paths) as the variables of ``model``. A classifier ``head`` of
    another size (or none) keeps a fresh initialisation; any other difference stops.
    ``input_shape`` traces the model (default: its ``image_size`` or 224, RGB)."""
    size = getattr(model, "image_size", 224)
    shape = tuple(input_shape) if input_shape else (1, size, size, 3)
    key = rng if rng is not None else jax.random.key(0)
    expected = {k: v for k, v in _flatten(jax.eval_shape(_init, model, key, shape)).items()
                if k.split("/")[0] in ("params", "batch_stats")}
    is_head = lambda path: path.split("/")[1] == "head"  # noqa: E731
    result, fresh_needed, problems = {}, [], []
    for path, spec in expected.items():
        value = flat.get(path)
        if value is not None and tuple(value.shape) == tuple(spec.shape):
            result[path] = jnp.asarray(value, spec.dtype)
        elif is_head(path):
            fresh_needed.append(path)
        else:
            problems.append(f"{path}: " + ("missing" if value is None else
                                          f"weights {tuple(value.shape)}, model {tuple(spec.shape)}"))
    problems += [f"{path}: not in the model" for path in flat
                 if path not in expected and not is_head(path)]
    if problems:
        raise ValueError(f"{what} do not fit {type(model).__name__} as configured: "
                         + "; ".join(problems[:8]) + ("; ..." if len(problems) > 8 else "")
                         + ". Keep the architecture options of the published model (only "
                         "num_classes may change: a new head is freshly initialised)")
    if fresh_needed:
        fresh = _flatten(_init(model, key, shape))
        result.update({path: fresh[path] for path in fresh_needed})
        log.info("%s: new head %s freshly initialised", what, fresh_needed)
    return _unflatten(result)


def load(name: str, weights: str, *, root: str | None = None, rng=None,
         **overrides) -> Pretrained:
    """``models.create(name, weights=...)``: the model, its pretrained variables and input spec.

    ``weights``: a registered name (``list_weights(name)``, ``"DEFAULT"``) or a local file.
    ``num_classes`` may differ from the published head (a fresh head, from ``rng``) or be
    ``None`` (headless); the other ``overrides`` must keep the published architecture.
    ``root``: the cache folder (default :func:`cache_dir`).
    """
    path = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if isinstance(path, str) and (os.path.sep in path or os.path.exists(path)
                                  or path.endswith((".pth", ".pt", ".safetensors", ".npz"))):
        return _load_file(name, path, rng=rng, **overrides)
    entry = get_weights(name, weights)
    if entry.features_only:
        overrides.setdefault("num_classes", None)
    overrides.setdefault("num_classes", entry.num_classes)
    flat, _ = _read_safetensors(converted_path(entry, root=root))
    model = _build(entry, **overrides)
    variables = _fit(model, flat, what=f"weights {entry.name} of {entry.model}", rng=rng,
                     input_shape=(1, *entry.input_spec.shape))
    return Pretrained(model=model, variables=variables, input_spec=entry.input_spec, weights=entry)


def _load_file(name: str, path: str, *, rng=None, **overrides) -> Pretrained:
    """A local file: a torchvision-layout state dict or a safetensors this module wrote. A
    file named as a registered publisher's file is checked against its hash first."""
    from jaxvision import convert
    from jaxvision.models.registry import create

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file at {path!r}")
    entry = next((e for (m, _), e in _REGISTRY.items()
                  if m == name and e.filename == os.path.basename(path)), None)
    spec = entry.input_spec if entry else None
    input_shape = (1, *spec.shape) if spec else None
    if entry is not None:
        digest = sha256_file(path)
        if not digest.startswith(entry.sha256):
            raise _checksum_error(path, digest, entry.sha256)
        overrides = {**dict(entry.model_kwargs), **overrides}
    if is_converted(path):
        flat, metadata = _read_safetensors(path)
        if metadata.get("input_spec"):
            spec = InputSpec.from_json(json.loads(metadata["input_spec"]))
        overrides = {**json.loads(metadata.get("model_kwargs", "{}")), **overrides}
        if metadata.get("input_shape"):
            input_shape = tuple(json.loads(metadata["input_shape"]))
    else:
        if path.endswith((".pth", ".pt")):
            _require_torch(path)
        state_dict = convert.load_state_dict(path)
        model_for_file = create(name, **{**overrides, "num_classes": 1})
        flat = _flatten(convert._converter_for(model_for_file)(state_dict))
    if "num_classes" not in overrides and "params/head/bias" in flat:
        overrides["num_classes"] = int(flat["params/head/bias"].shape[0])
    model = create(name, **overrides)
    variables = _fit(model, {k: np.asarray(v) for k, v in flat.items()},
                     what=f"weights {path}", rng=rng, input_shape=input_shape)
    return Pretrained(model=model, variables=variables, input_spec=spec, weights=entry)


# --------------------------------------------------------------------------------------------
# The published weights (torchvision's URLs, hash prefixes and evaluation transforms)
# --------------------------------------------------------------------------------------------

_TV = "https://download.pytorch.org/models/"


def _tv(model: str, name: str, filename: str, *, crop: int = 224, resize: int = 256,
        interpolation: str = "bilinear", mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        default: bool = False, **kwargs) -> None:
    register_weights(Weights(
        model=model, name=name, url=_TV + filename,
        input_spec=InputSpec(image_size=(crop, crop), channels=3, mean=mean, std=std),
        resize_size=resize, interpolation=interpolation, default=default, **kwargs))


def _register_torchvision() -> None:
    acc = lambda top1, n: {"acc@1": top1, "num_params": n}  # noqa: E731
    _tv("alexnet", "IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", default=True,
        meta=acc(56.522, 61100840))
    for depth, filename, top1, n in ((18, "resnet18-f37072fd.pth", 69.758, 11689512),
                                     (34, "resnet34-b627a593.pth", 73.314, 21797672),
                                     (50, "resnet50-0676ba61.pth", 76.130, 25557032),
                                     (101, "resnet101-63fe2227.pth", 77.374, 44549160),
                                     (152, "resnet152-394f9c45.pth", 78.312, 60192808)):
        _tv(f"resnet{depth}", "IMAGENET1K_V1", filename, default=depth < 50, meta=acc(top1, n))
    for depth, filename, top1, n in ((50, "resnet50-11ad3fa6.pth", 80.858, 25557032),
                                     (101, "resnet101-cd907fc2.pth", 81.886, 44549160),
                                     (152, "resnet152-f82ba261.pth", 82.284, 60192808)):
        _tv(f"resnet{depth}", "IMAGENET1K_V2", filename, resize=232, default=True,
            meta=acc(top1, n))
    for model, filename, top1, n in (
            ("vgg11", "vgg11-8a719046.pth", 69.020, 132863336),
            ("vgg11_bn", "vgg11_bn-6002323d.pth", 70.370, 132868840),
            ("vgg13", "vgg13-19584684.pth", 69.928, 133047848),
            ("vgg13_bn", "vgg13_bn-abd245e5.pth", 71.586, 133053736),
            ("vgg16", "vgg16-397923af.pth", 71.592, 138357544),
            ("vgg16_bn", "vgg16_bn-6c64b313.pth", 73.360, 138365992),
            ("vgg19", "vgg19-dcbb9e9d.pth", 72.376, 143667240),
            ("vgg19_bn", "vgg19_bn-c79401a0.pth", 74.218, 143678248)):
        _tv(model, "IMAGENET1K_V1", filename, default=True, meta=acc(top1, n))
    # ssd.pytorch's VGG-16 trunk: 0-255 inputs (std 1/255), no usable classifier.
    _tv("vgg16", "IMAGENET1K_FEATURES", "vgg16_features-amdegroot-88682ab5.pth",
        mean=(0.48235, 0.45882, 0.40784), std=(1 / 255, 1 / 255, 1 / 255), features_only=True,
        meta={"num_params": 138357544})
    bicubic = dict(interpolation="bicubic")
    for model, name, filename, crop, resize, extra, top1, n in (
            ("vit_b16", "IMAGENET1K_V1", "vit_b_16-c867db91.pth", 224, 256, {}, 81.072, 86567656),
            ("vit_b16", "IMAGENET1K_SWAG_E2E_V1", "vit_b_16_swag-9ac1b537.pth", 384, 384,
             bicubic, 85.304, 86859496),
            ("vit_b16", "IMAGENET1K_SWAG_LINEAR_V1", "vit_b_16_lc_swag-4e70ced5.pth", 224, 224,
             bicubic, 81.886, 86567656),
            ("vit_b32", "IMAGENET1K_V1", "vit_b_32-d86f8d99.pth", 224, 256, {}, 75.912, 88224232),
            ("vit_l16", "IMAGENET1K_V1", "vit_l_16-852ce7e3.pth", 224, 242, {}, 79.662, 304326632),
            ("vit_l16", "IMAGENET1K_SWAG_E2E_V1", "vit_l_16_swag-4f3808c9.pth", 512, 512,
             bicubic, 88.064, 305174504),
            ("vit_l16", "IMAGENET1K_SWAG_LINEAR_V1", "vit_l_16_lc_swag-4d563306.pth", 224, 224,
             bicubic, 85.146, 304326632),
            ("vit_l32", "IMAGENET1K_V1", "vit_l_32-c7638314.pth", 224, 256, {}, 76.972, 306535400)):
        _tv(model, name, filename, crop=crop, resize=resize, default=name == "IMAGENET1K_V1",
            model_kwargs={"image_size": crop} if crop != 224 else {}, meta=acc(top1, n), **extra)
    _tv("mobilenet_v2", "IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", meta=acc(71.878, 3504872))
    _tv("mobilenet_v2", "IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", resize=232, default=True,
        meta=acc(72.154, 3504872))
    # EfficientNet's image_size (the resolution of compound scaling) follows the weights' crop.
    for model, name, filename, crop, resize, extra, top1, n in (
            ("efficientnet_b0", "IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth", 224,
             256, bicubic, 77.692, 5288548),
            ("efficientnet_b1", "IMAGENET1K_V1", "efficientnet_b1_rwightman-bac287d4.pth", 240,
             256, bicubic, 78.642, 7794184),
            ("efficientnet_b1", "IMAGENET1K_V2", "efficientnet_b1-c27df63c.pth", 240, 255, {},
             79.838, 7794184),
            ("efficientnet_b2", "IMAGENET1K_V1", "efficientnet_b2_rwightman-c35c1473.pth", 288,
             288, bicubic, 80.608, 9109994),
            ("efficientnet_b3", "IMAGENET1K_V1", "efficientnet_b3_rwightman-b3899882.pth", 300,
             320, bicubic, 82.008, 12233232)):
        _tv(model, name, filename, crop=crop, resize=resize, meta=acc(top1, n),
            default=(model, name) != ("efficientnet_b1", "IMAGENET1K_V1"),
            model_kwargs={"image_size": crop}, **extra)


def _register_timm() -> None:
    """timm's release files whose layout a jaxvision model shares. They follow torch.hub's
    naming (timm's ``download_cached_file`` checks the same ``-<sha256 prefix>.`` suffix);
    the evaluation transform is timm's ``crop_pct=0.875`` (224 from 256), bicubic."""
    register_weights(Weights(
        model="se_resnet50", name="TIMM_RA_IN1K",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
            "seresnet50_ra_224-8efdb4bb.pth",
        input_spec=InputSpec(image_size=(224, 224), channels=3, mean=_IMAGENET_MEAN,
                             std=_IMAGENET_STD),
        resize_size=256, interpolation="bicubic", default=True,
        meta={"acc@1": 80.26, "num_params": 28088024, "publisher": "timm (seresnet50)"}))


_register_torchvision()
_register_timm()

__all__ = ["CACHE_ENV", "Pretrained", "Weights", "WeightsUnavailableError", "cache_dir",
           "converted_path", "download", "get_weights", "list_models", "list_weights", "load",
           "pretrained_models", "read_variables", "register_weights", "save_variables",
           "sha256_file", "weights_reference"]
