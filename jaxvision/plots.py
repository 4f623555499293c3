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


def draw_boxes(ax, boxes, *, labels=None, color: str = "lime", linestyle: str = "-",
               linewidth: float = 1.5, fontsize: float = 6) -> None:
    """xyxy pixel boxes on an Axes showing the image with ``imshow`` (which puts pixel ``i``
    at ``[i - 0.5, i + 0.5]``, hence the half-pixel shift), each with an optional label."""
    from matplotlib.patches import Rectangle

    for index, (x1, y1, x2, y2) in enumerate(boxes):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=color,
                               ls=linestyle, lw=linewidth))
        if labels is not None:
            ax.text(x1 - 0.5, y1 - 1.5, labels[index], color=color, fontsize=fontsize)


def save_prediction(path: str, image, *, boxes=(), labels=None, mask=None,
                    num_classes: int | None = None) -> None:
    """One image with its predicted boxes (and labels), or its predicted mask over it (the
    mask at the image's size: class 0 left clear)."""
    import numpy as np

    height, width = np.shape(image)[:2]
    fig, ax = figure((max(3.0, width / 64), max(3.0, height / 64)))
    ax.imshow(np.squeeze(image), cmap="gray" if np.ndim(image) == 2 or np.shape(image)[-1] == 1
              else None)
    if mask is not None:
        ax.imshow(np.ma.masked_equal(np.asarray(mask), 0), cmap="tab20", alpha=0.5,
                  vmin=0, vmax=max(num_classes or int(np.max(mask)) + 1, 2) - 1,
                  interpolation="nearest", extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    draw_boxes(ax, boxes, labels=labels)
    ax.set_axis_off()
    save(fig, path)
