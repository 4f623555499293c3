"""The one place figures are made: matplotlib's object API, no pyplot and no backend switch,
so the library never changes a notebook's or a caller's matplotlib state."""

from __future__ import annotations


def figure(figsize: tuple[float, float], *, nrows: int = 1, ncols: int = 1):
    """``(fig, axes)``: one Axes for a 1x1 grid, else a 2-D array of them."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=nrows * ncols == 1)
    return fig, axes


def save(fig, path: str, *, dpi: int = 100) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
