"""The notebooks run top to bottom on embedded data (programmatic API as users call it)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# Every notebook takes 40 s to a few minutes: they run in the slow step, which CI also runs.
# tests/test_notebooks_course.py runs the course notebooks, with checks of their own figures.
COURSE_NOTEBOOKS = {"fundamentals.ipynb", "training_in_depth.ipynb"}
NOTEBOOKS = [pytest.param(path, marks=pytest.mark.slow)
             for path in sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
             if path.name not in COURSE_NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: getattr(p, "name", None))
def test_notebook_executes(path, tfds_dir, monkeypatch):
    monkeypatch.setenv("QUICKSTART_EPOCHS", "3")
    monkeypatch.setenv("QUICKSTART_DATA_DIR", tfds_dir)
    monkeypatch.setenv("PYTHONPATH", str(path.parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(path, as_version=4)
    quickstart = path.name == "quickstart.ipynb"
    if quickstart:  # a user's own figure after the library ran: the inline backend stays
        notebook.cells.append(nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"))
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("reloaded test accuracy" in o.get("text", "") for o in outputs)
    if quickstart:
        assert any("image/png" in o.get("data", {}) for o in notebook.cells[-1].outputs)
        # Progress shows in the notebook (the jaxvision logger's default handler), with
        # neither TensorFlow's start-up lines nor TFDS's build messages.
        shown = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "step " in shown and "eval_accuracy=" in shown, shown[-2000:]
        for chatter in ("oneDNN", "Downloading and preparing", "absl::InitializeLog"):
            assert chatter not in shown
