"""Figures of the course: learning curves and sample images, and the book's figure style.

Every function returns a ``matplotlib.figure.Figure`` and never calls
``plt.show()``. New figures are created through pyplot (so a notebook's inline
backend is set up) and then immediately released from pyplot with
``plt.close(fig)``: nothing accumulates in pyplot's list of open figures, a cell
ending with the call shows the figure exactly once, ``fig = plot_...(...)``
shows nothing, and ``fig.savefig(path)`` works anywhere, including headless
(Agg) runs. In a loop, or anywhere but the last line of a cell, show a
figure with IPython's ``display(fig)``.

The book's chapters call :func:`use_book_style` once, so that every figure is drawn at
:data:`BOOK_DPI` with no text smaller than :data:`MIN_FONT_PT` points and is at most
:data:`MAX_WIDTH_IN` inches wide: it then fits the text column of the site at its natural
size, and its smallest text is as large as the site's footnotes
(``scripts/check_site.py`` checks both in a browser). In a notebook (the book's build), the
figures are stored with :data:`BOOK_PIXEL_RATIO` times as many pixels each way and shown at
the same size (IPython's "retina" PNG, its display size in its metadata, which the site writes
into the image's style; ``book/_static/course.css`` never shrinks a figure, so the fixed size
cannot distort it), so that they stay sharp on high-density screens.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from .training import History

__all__ = [
    "BOOK_DPI",
    "BOOK_PIXEL_RATIO",
    "MAX_WIDTH_IN",
    "MIN_FONT_PT",
    "plot_class_examples",
    "plot_image_grid",
    "plot_learning_curves",
    "plot_loss_curves",
    "smallest_font_pt",
    "use_book_style",
]

#: Resolution (pixels per inch) of the book's figures; 1 pt of text is BOOK_DPI / 72 pixels.
BOOK_DPI = 100
#: Pixels stored per displayed pixel of a book figure in a notebook (IPython's "retina" PNG).
BOOK_PIXEL_RATIO = 2
#: Smallest font size (points) allowed in a figure of the book: 11 pt at 100 dpi is 15 px.
MIN_FONT_PT = 11.0
#: Widest figure (inches) that fits the site's text column at its natural size.
MAX_WIDTH_IN = 7.2

_BOOK_RC = {
    "figure.dpi": BOOK_DPI,
    "savefig.dpi": BOOK_DPI,
    "figure.figsize": (6.4, 4.0),
    "font.size": 12.0,
    "axes.titlesize": 12.5,
    "axes.labelsize": 12.0,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 12.5,
}


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's figure style (dpi, font sizes, default size).

    Inside IPython (a chapter being executed), inline figures also become "retina" PNGs:
    :data:`BOOK_PIXEL_RATIO` times the pixels, displayed :data:`BOOK_DPI` per inch wide.
    """
    plt.rcParams.update(_BOOK_RC)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is part of the course's environment
        return
    if get_ipython() is not None:
        # Through the inline backend's own setting, so that it survives the backend being
        # configured later (at the first figure), which resets the display formatters.
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        from matplotlib_inline.config import InlineBackend

        assert BOOK_PIXEL_RATIO == 2, "IPython's retina format doubles the pixels"
        with warnings.catch_warnings():  # matplotlib_inline's own observer uses a deprecated traitlets hook
            warnings.simplefilter("ignore", DeprecationWarning)
            InlineBackend.instance().figure_formats = {"retina"}
        set_matplotlib_formats("retina")


def smallest_font_pt(fig: Figure) -> float:
    """The font size (points) of the smallest visible, non-empty text in ``fig``.

    Covers titles, axis labels, tick labels, legends and free text. Returns ``inf`` for a
    figure without text.
    """
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()  # tick labels exist only once drawn
    renderer = canvas.get_renderer()
    sizes = [
        text.get_fontsize()
        for text in fig.findobj(Text)
        if text.get_visible() and text.get_text().strip() and _really_shown(text, renderer)
    ]
    return min(sizes, default=float("inf"))


def _really_shown(text: Text, renderer) -> bool:
    """False for texts that are drawn nowhere (e.g. tick labels outside the axes' view)."""
    extent = text.get_window_extent(renderer)
    figure_box = text.figure.bbox
    return (
        extent.width > 0
        and extent.height > 0
        and extent.x1 > figure_box.x0
        and extent.x0 < figure_box.x1
        and extent.y1 > figure_box.y0
        and extent.y0 < figure_box.y1
    )


def plot_learning_curves(
    histories: Mapping[str, History], *, title: str | None = None, ax: Axes | None = None
) -> Figure:
    """Training (solid) and validation (dashed) accuracy per epoch of several runs.

    Each run gets one colour for both of its lines; the legend names the run.
    Runs without validation data get only the training line.

    Args:
        histories: run label -> History, in the order to draw them.
        title: axes title.
        ax: draw into these axes instead of a new figure.

    Returns:
        The figure that holds the axes.
    """
    ax = _axes(ax, figsize=(7, 4.5))
    for i, (label, history) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        epochs = np.arange(1, len(history.train_acc) + 1)
        ax.plot(epochs, history.train_acc, color=colour, linestyle="-", label=f"{label} (train)")
        if history.val_acc:
            ax.plot(
                np.arange(1, len(history.val_acc) + 1),
                history.val_acc,
                color=colour,
                linestyle="--",
                label=f"{label} (validation)",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    _finish(ax, title, histories)
    return ax.figure


def plot_loss_curves(
    histories: Mapping[str, History],
    *,
    title: str | None = None,
    ax: Axes | None = None,
    log_scale: bool = False,
) -> Figure:
    """Mean training loss per epoch of several runs, one coloured line per run.

    Args:
        histories: run label -> History.
        title: axes title.
        ax: draw into these axes instead of a new figure.
        log_scale: logarithmic loss axis (useful when the loss spans decades).

    Returns:
        The figure that holds the axes.
    """
    ax = _axes(ax, figsize=(7, 4.5))
    for i, (label, history) in enumerate(histories.items()):
        epochs = np.arange(1, len(history.train_loss) + 1)
        ax.plot(epochs, history.train_loss, color=f"C{i % 10}", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy + L2)")
    if log_scale:
        ax.set_yscale("log")
    _finish(ax, title, histories)
    return ax.figure


def plot_image_grid(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    *,
    n_rows: int,
    n_cols: int,
    seed: int = 0,
    indices: Sequence[int] | None = None,
) -> Figure:
    """A grid of images, each titled with its class name, filled row by row.

    Args:
        x: images, shape ``(n, 28, 28)`` or ``(n, 784)`` (any square size).
        y: integer labels, shape ``(n,)``, indices into ``class_names``.
        class_names: name of each class, e.g. ``dnn_course.datasets.CLASS_NAMES["mnist"]``.
        n_rows, n_cols: grid size.
        seed: without ``indices``, ``n_rows * n_cols`` images (at most ``n``) are
            drawn without replacement with ``np.random.default_rng(seed)``.
        indices: the images to show, in order (at most ``n_rows * n_cols``);
            overrides the random choice. Unused cells stay blank.

    Returns:
        The figure, with ``n_rows * n_cols`` axes.
    """
    images = _as_images(x)
    y = np.asarray(y)
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"n_rows and n_cols must be positive, got {n_rows} and {n_cols}")
    count = n_rows * n_cols
    if indices is None:
        if count > len(images):
            raise ValueError(f"a {n_rows}x{n_cols} grid needs {count} images, but x has only {len(images)}")
        indices = np.random.default_rng(seed).choice(len(images), size=count, replace=False)
    elif len(indices) > count:
        raise ValueError(f"{len(indices)} indices do not fit in a {n_rows}x{n_cols} grid")
    fig, axes = _subplots(n_rows, n_cols, figsize=(1.4 * n_cols, 1.6 * n_rows))
    for k, ax in enumerate(axes.flat):
        if k < len(indices):
            _show_image(ax, images[indices[k]])
            ax.set_title(str(class_names[int(y[indices[k]])]), fontsize=MIN_FONT_PT)
        else:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_class_examples(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int = 8, *, seed: int = 0
) -> Figure:
    """One row per class with ``per_class`` randomly chosen examples of it.

    The class name labels the start of each row (the first axes' y label). A
    class with fewer than ``per_class`` examples leaves the rest of its row blank.

    Args:
        x: images, shape ``(n, 28, 28)`` or ``(n, 784)``.
        y: integer labels, shape ``(n,)``.
        class_names: name of each class; one row per entry.
        per_class: images per row.
        seed: seeds the choice of examples.

    Returns:
        The figure, with ``len(class_names) * per_class`` axes.
    """
    images = _as_images(x)
    y = np.asarray(y)
    if per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    rng = np.random.default_rng(seed)
    n_classes = len(class_names)
    fig, axes = _subplots(n_classes, per_class, figsize=(1.1 * per_class + 1.2, 1.1 * n_classes))
    for row, name in enumerate(class_names):
        members = np.flatnonzero(y == row)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col, ax in enumerate(axes[row]):
            if col < len(chosen):
                _show_image(ax, images[chosen[col]])
            else:
                ax.set_axis_off()
        axes[row, 0].set_ylabel(str(name), rotation=0, ha="right", va="center", fontsize=MIN_FONT_PT)
    fig.tight_layout()
    return fig


def _axes(ax: Axes | None, figsize) -> Axes:
    if ax is not None:
        return ax
    fig, ax = plt.subplots(figsize=figsize)
    plt.close(fig)  # released from pyplot: shown only when returned or displayed
    return ax


def _subplots(n_rows: int, n_cols: int, figsize):
    fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    plt.close(fig)
    return fig, axes


def _finish(ax: Axes, title: str | None, histories: Mapping[str, History]) -> None:
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if histories:
        ax.legend()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs


def _show_image(ax: Axes, image: np.ndarray) -> None:
    vmax = 255 if np.issubdtype(image.dtype, np.integer) else 1.0  # uint8 pixels or floats in [0, 1]
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _as_images(x: np.ndarray) -> np.ndarray:
    """(n, h, w) stays; (n, h*w) with a square h*w becomes (n, h, w)."""
    x = np.asarray(x)
    if x.ndim == 3:
        return x
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side == x.shape[1]:
            return x.reshape(len(x), side, side)
    raise ValueError(f"x must be images of shape (n, h, w) or (n, h*w) with a square h*w, got {x.shape}")
