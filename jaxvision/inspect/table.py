"""A per-layer table of a Flax model (like Keras' ``model.summary()`` or torchinfo) and its FLOPs.

Every submodule call is recorded with ``flax.linen.intercept_methods`` while the model is traced
(``jax.eval_shape``: nothing is computed), so any model works without a line of model code.
FLOPs come from XLA's cost analysis: of the compiled program for the whole model
(:func:`flops`, the count the hardware will run), and of each leaf layer on its own (a layer
that calls no other layer: a conv, a dense, a norm), lowered but not compiled (compiling every
layer would take ten times as long; a lone layer's count is the same). Work done between
layers by plain functions (ReLU, residual adds, pooling, attention's softmax(QK^T)V) belongs to
no leaf; the table reports it as ``(outside leaf layers)`` so that the column sums to the
model's total.

XLA counts a multiply-add as 2 FLOPs and skips the taps a convolution's zero padding covers.
On CPU jaxvision's default ``conv="auto"`` runs convolutions as Winograd/im2col GEMMs, which
XLA counts as what they are; build the model with ``conv="xla"`` for the textbook count.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class Row:
    """One module call: ``flops`` and ``params`` of a non-leaf sum those of its leaves."""

    name: str
    type: str
    depth: int
    output_shape: Any
    params: int
    flops: float
    activation_bytes: int
    leaf: bool


@dataclasses.dataclass
class Summary:
    rows: list[Row]
    total_params: int
    state_size: int          # non-trainable variables (BatchNorm statistics, ...)
    total_flops: float
    activation_bytes: int    # sum over leaf outputs: the forward pass's activations
    input_bytes: int

    def table(self, max_depth: int | None = None) -> str:
        return format_table(self, max_depth=max_depth)

    def __str__(self) -> str:
        return self.table()


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype)
                        if hasattr(a, "dtype") else a, tree)


def _size(tree) -> int:
    return int(sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(tree)))


def _nbytes(tree) -> int:
    return int(sum(math.prod(np.shape(leaf)) * jnp.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree.leaves(tree) if hasattr(leaf, "dtype")))


def _shapes(tree):
    shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(tree) if hasattr(leaf, "dtype")]
    return shapes[0] if len(shapes) == 1 else shapes


def compiled_flops(fn: Callable, *args, compile: bool = True) -> float:  # noqa: A002
    """FLOPs XLA's cost analysis gives ``jax.jit(fn)(*args)`` (args may be
    ``jax.ShapeDtypeStruct``s; nothing runs): of the compiled program, or with
    ``compile=False`` of the lowered one (before XLA's passes; a tenth of the time)."""
    lowered = jax.jit(fn).lower(*args)
    cost = (lowered.compile() if compile else lowered).cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per device program
        cost = cost[0]
    return float(cost.get("flops", 0.0))


def _init(model: nn.Module, x, call_kwargs):
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x.shape, x.dtype),
                                             **call_kwargs))


def flops(model: nn.Module, input_shape: Sequence[int], *, variables=None, dtype=jnp.float32,
          train: bool = False) -> float:
    """FLOPs of one forward pass of ``model`` on a batch of ``input_shape`` (XLA cost analysis)."""
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    kwargs = dict(train=train)
    variables = _abstract(variables) if variables is not None else _init(model, x, kwargs)
    mutable = [k for k in variables if k != "params"] if train else False

    def forward(variables, x):
        return model.apply(variables, x, train=train, mutable=mutable,
                           rngs={"dropout": jax.random.key(0)})

    return compiled_flops(forward, variables, x)


def _subtree(tree, path: tuple[str, ...]):
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return {}
        tree = tree[part]
    return tree


def _record_calls(model, variables, x, call_kwargs):
    """Every submodule ``__call__`` in start order: (path, type, depth, out, leaf, layer)."""
    calls, stack = [], []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not module.path:
            return next_fun(*args, **kwargs)
        record = dict(path=tuple(module.path), type=type(module).__name__, depth=len(stack),
                      leaf=True)
        if stack:
            stack[-1]["leaf"] = False
        calls.append(record)
        stack.append(record)
        try:
            out = next_fun(*args, **kwargs)
        finally:
            stack.pop()
        record["out"] = _abstract(out)
        if record["leaf"]:  # enough to run the layer on its own
            record["layer"] = (module.clone(parent=None), _abstract(module.variables),
                               _abstract(args), {k: v for k, v in kwargs.items()})
        return out

    mutable = [k for k in variables if k != "params"] if call_kwargs.get("train") else False
    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda v, x: model.apply(v, x, mutable=mutable, **call_kwargs,
                                                rngs={"dropout": jax.random.key(0)}),
                       variables, x)
    return calls


def _layer_flops(layer, cache: dict) -> float:
    module, variables, args, kwargs = layer
    static = {k: v for k, v in kwargs.items() if not hasattr(v, "shape")}
    arrays = {k: v for k, v in kwargs.items() if hasattr(v, "shape")}
    key = (repr(module), repr(jax.tree.map(lambda a: (a.shape, a.dtype), (variables, args,
                                                                            arrays))),
           repr(static))
    if key not in cache:
        def run(variables, args, arrays):
            return module.apply(variables, *args, **arrays, **static, mutable=True,
                                rngs={"dropout": jax.random.key(0)})
        try:
            cache[key] = compiled_flops(run, variables, args, arrays, compile=False)
        except Exception:  # noqa: BLE001 - a layer that cannot run alone gets no count
            cache[key] = float("nan")
    return cache[key]


def summary(model: nn.Module, input_shape: Sequence[int], *, variables=None, dtype=jnp.float32,
            train: bool = False, max_depth: int | None = None, print_fn: Callable | None = print,
            ) -> Summary:
    """Prints and returns the per-layer table of ``model`` on a batch of ``input_shape``.

    Columns: name, type, output shape, parameters, FLOPs and activation memory (output bytes).
    Totals: parameters (equal to ``param_count(variables['params'])``), non-trainable state,
    FLOPs (equal to :func:`flops`), and activations (sum of the leaf layers' outputs).
    ``print_fn=None`` prints nothing; ``max_depth`` hides deeper rows (not the totals).
    """
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    call_kwargs = dict(train=train)
    variables = _abstract(variables) if variables is not None else _init(model, x, call_kwargs)
    calls = _record_calls(model, variables, x, call_kwargs)
    cache: dict = {}
    rows = []
    for call in calls:
        params = _size(_subtree(variables.get("params", {}), call["path"]))
        rows.append(Row(name="/".join(call["path"]), type=call["type"], depth=call["depth"],
                        output_shape=_shapes(call["out"]), params=params,
                        flops=_layer_flops(call["layer"], cache) if call["leaf"] else 0.0,
                        activation_bytes=_nbytes(call["out"]), leaf=call["leaf"]))
    # A parent's FLOPs: the sum over the leaves below it (rows follow call order).
    for i, row in enumerate(rows):
        if not row.leaf:
            j, total = i + 1, 0.0
            while j < len(rows) and rows[j].depth > row.depth:
                total += rows[j].flops if rows[j].leaf else 0.0
                j += 1
            row.flops = total
    total = flops(model, input_shape, variables=variables, dtype=dtype, train=train)
    leaf_flops = sum(r.flops for r in rows if r.leaf and not math.isnan(r.flops))
    rows.append(Row("(outside leaf layers)", "functions", 0, "", 0, total - leaf_flops, 0, True))
    result = Summary(rows=rows, total_params=_size(variables.get("params", {})),
                     state_size=_size({k: v for k, v in variables.items() if k != "params"}),
                     total_flops=total,
                     activation_bytes=sum(r.activation_bytes for r in rows if r.leaf),
                     input_bytes=_nbytes(x))
    if print_fn is not None:
        print_fn(format_table(result, max_depth=max_depth))
    return result


def _human(n: float, unit: str = "") -> str:
    if math.isnan(n):
        return "?"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def format_table(result: Summary, *, max_depth: int | None = None) -> str:
    """The text table of a :class:`Summary` (name indented by depth)."""
    header = ("Layer", "Type", "Output shape", "Params", "FLOPs", "Activations")
    lines = []
    for r in result.rows:
        if max_depth is not None and r.depth > max_depth:
            continue
        lines.append(("  " * r.depth + r.name, r.type, str(r.output_shape),
                      f"{r.params:,}" if r.params else "-", _human(r.flops),
                      _human(r.activation_bytes, "B") if r.activation_bytes else "-"))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    fmt = "  ".join("{:<%d}" % w if i < 3 else "{:>%d}" % w for i, w in enumerate(widths))
    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    out = [rule, fmt.format(*header), rule, *(fmt.format(*line) for line in lines), rule,
           f"Total params: {result.total_params:,}",
           f"Non-trainable state: {result.state_size:,}",
           f"Total FLOPs (XLA): {_human(result.total_flops)} ({result.total_flops:,.0f})",
           f"Input: {_human(result.input_bytes, 'B')}   "
           f"Activations (leaf outputs): {_human(result.activation_bytes, 'B')}", rule]
    return "\n".join(out)
