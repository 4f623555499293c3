"""The course notebooks (fundamentals; training in depth) run top to bottom on embedded data and
print what their text claims (tests/test_notebooks.py runs the other notebooks)."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def execute(name: str) -> tuple[str, int]:
    """Runs ``notebooks/name`` (stored without outputs); returns its printed text and how many
    figures it showed."""
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [cell for cell in code if cell.outputs or cell.execution_count], \
        f"{name} is stored with outputs: clear them"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in code for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    return text, figures


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not printed"
    return float(match.group(1).replace(",", ""))


@pytest.mark.slow
def test_fundamentals_notebook():
    text, figures = execute("fundamentals.ipynb")
    assert figures == 2  # the convolution panels and the loss curve
    assert number(r"max \|by hand - library\| = (\S+)", text) < 1e-5
    # The first dense layer on a 224x224x3 image: 224 * 224 * 3 * 256 weights + 256 biases.
    assert "224x224x3 image: first dense layer (256 units) 38,535,424 weights" in text
    assert "first conv layer (32 3x3 filters) 896" in text  # 3 * 3 * 3 * 32 + 32
    # MLP 64 -> 256 -> 128 -> 10: 64*256+256 + 256*128+128 + 128*10+10.
    assert number(r"MLP \(256, 128 hidden\) ([\d,]+) parameters", text) == 50_826
    assert "pool k=2 s=2: receptive field 16, jump 4" in text
    assert "traced from the ops: (16, 16) jump (4, 4)" in text
    assert number(r"final test accuracy: (\S+)", text) > 0.93
    assert number(r"reloaded test accuracy: (\S+)", text) > 0.93


@pytest.mark.slow
def test_training_in_depth_notebook():
    text, figures = execute("training_in_depth.ipynb")
    assert figures == 4  # gallery, BatchNorm curves, schedules, the one-cycle run
    assert "shapes kept and values in [0, 1]: True" in text
    for name in ("BatchNorm", "no norm"):
        assert number(name + r": mean train loss in epoch 1 (\S+),", text) < 2.0
        assert number(name + r":.*test accuracy after 3 epochs (\S+)", text) > 0.8
    # torch's OneCycleLR: starts at max_lr / 25, peaks at 30% of the steps, ends at start / 1e4.
    assert "one-cycle: starts at 0.0040, peaks at 0.1000 on step 89, ends at 4.00e-07" in text
    assert number(r"one-cycle run: test accuracy (\S+)", text) > 0.9
    assert number(r"reloaded test accuracy: (\S+)", text) > 0.9
