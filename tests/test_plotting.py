"""Tests of dnn_course.plotting: the figures hold the expected lines, axes and titles."""

import matplotlib

matplotlib.use("Agg")  # headless

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from dnn_course.plotting import (
    plot_class_examples,
    plot_image_grid,
    plot_learning_curves,
    plot_loss_curves,
)
from dnn_course.training import History

NAMES = [f"class {i}" for i in range(10)]


def histories():
    return {
        "ReLU": History(train_loss=[1.0, 0.5, 0.3], train_acc=[0.6, 0.8, 0.9], val_acc=[0.55, 0.75, 0.85]),
        "tanh": History(train_loss=[1.2, 0.7, 0.4], train_acc=[0.5, 0.7, 0.8], val_acc=[0.5, 0.65, 0.7]),
        "no validation": History(train_loss=[2.0, 1.0], train_acc=[0.3, 0.4]),
    }


def images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28), dtype=np.float32), np.arange(n) % 10


def test_learning_curves_one_colour_per_run_solid_train_dashed_validation():
    open_before = plt.get_fignums()
    fig = plot_learning_curves(histories(), title="MNIST")
    assert isinstance(fig, Figure) and plt.get_fignums() == open_before  # not left open in pyplot
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == [
        "ReLU (train)",
        "ReLU (validation)",
        "tanh (train)",
        "tanh (validation)",
        "no validation (train)",
    ]
    assert lines["ReLU (train)"].get_linestyle() == "-" and lines["ReLU (validation)"].get_linestyle() == "--"
    assert to_rgba(lines["ReLU (train)"].get_color()) == to_rgba(lines["ReLU (validation)"].get_color())
    assert to_rgba(lines["ReLU (train)"].get_color()) != to_rgba(lines["tanh (train)"].get_color())
    np.testing.assert_array_equal(lines["tanh (validation)"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["tanh (validation)"].get_ydata(), [0.5, 0.65, 0.7])
    assert ax.get_title() == "MNIST" and ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)


def test_curves_draw_into_given_axes():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot_learning_curves(histories(), ax=left) is fig
    assert plot_loss_curves(histories(), ax=right, title="loss", log_scale=True) is fig
    assert len(left.get_lines()) == 5 and len(right.get_lines()) == 3
    assert right.get_yscale() == "log" and right.get_title() == "loss"


def test_loss_curves_one_line_per_run():
    fig = plot_loss_curves(histories())
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["ReLU", "tanh", "no validation"]
    np.testing.assert_array_equal(ax.get_lines()[2].get_ydata(), [2.0, 1.0])
    assert ax.get_title() == ""


def test_image_grid_titles_are_class_names_of_the_drawn_images():
    x, y = images()
    fig = plot_image_grid(x, y, NAMES, n_rows=2, n_cols=3, seed=1)
    assert len(fig.axes) == 6
    for ax in fig.axes:
        shown = ax.get_images()[0].get_array()
        matches = [i for i in range(len(x)) if np.array_equal(x[i], shown)]
        assert len(matches) == 1
        assert ax.get_title() == NAMES[y[matches[0]]]
    again = plot_image_grid(x.reshape(40, 784), y, NAMES, n_rows=2, n_cols=3, seed=1)
    assert [a.get_title() for a in again.axes] == [a.get_title() for a in fig.axes]


def test_image_grid_errors():
    x, y = images(5)
    with pytest.raises(ValueError, match="needs 6 images, but x has only 5"):
        plot_image_grid(x, y, NAMES, n_rows=2, n_cols=3)
    with pytest.raises(ValueError, match="square"):
        plot_image_grid(np.zeros((5, 10)), y, NAMES, n_rows=1, n_cols=1)


def test_class_examples_one_row_per_class():
    x, _ = images(14)
    y = np.arange(14) % 4  # classes 0 and 1 have 4 examples, classes 2 and 3 have 3
    names = NAMES[:4]
    fig = plot_class_examples(x, y, names, per_class=4)
    assert len(fig.axes) == 16
    rows = np.array(fig.axes).reshape(4, 4)
    assert [row[0].get_ylabel() for row in rows] == names
    for c, row in enumerate(rows):
        drawn = [ax for ax in row if ax.get_images()]
        assert len(drawn) == (4 if c < 2 else 3)
        assert row[3].axison == (c < 2)  # a missing example leaves its slot blank
        for ax in drawn:
            index = [i for i in range(14) if np.array_equal(x[i], ax.get_images()[0].get_array())]
            assert y[index[0]] == c


def test_image_grid_with_chosen_indices_in_order():
    x, y = images(20)
    fig = plot_image_grid(x, y, NAMES, n_rows=2, n_cols=3, indices=[5, 0, 13, 7])
    drawn = [ax for ax in fig.axes if ax.get_images()]
    assert len(fig.axes) == 6 and len(drawn) == 4
    for ax, i in zip(drawn, [5, 0, 13, 7], strict=False):
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), x[i])
        assert ax.get_title() == NAMES[y[i]]
    assert not fig.axes[4].axison and not fig.axes[5].axison
    with pytest.raises(ValueError, match="7 indices do not fit in a 2x3 grid"):
        plot_image_grid(x, y, NAMES, n_rows=2, n_cols=3, indices=range(7))


def test_book_style_figures_have_no_text_below_the_minimum():
    from dnn_course.plotting import MAX_WIDTH_IN, MIN_FONT_PT, smallest_font_pt, use_book_style

    saved = dict(plt.rcParams)
    try:
        use_book_style()
        x, y = images(10)
        figures = [
            plot_learning_curves(histories(), title="MNIST"),
            plot_loss_curves(histories()),
            plot_image_grid(x, y, NAMES, n_rows=2, n_cols=5),
        ]
        for fig in figures:
            assert smallest_font_pt(fig) >= MIN_FONT_PT
            assert fig.get_figwidth() <= MAX_WIDTH_IN
        assert plt.rcParams["figure.dpi"] == 100
    finally:
        plt.rcParams.update(saved)


def test_smallest_font_finds_small_text_and_ignores_empty_text():
    from dnn_course.plotting import smallest_font_pt

    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("epoch", fontsize=12)
    ax.tick_params(labelsize=11)
    ax.set_title("", fontsize=4)  # empty: not drawn
    assert smallest_font_pt(fig) == 11
    ax.text(0.5, 0.5, "tiny", fontsize=7)
    assert smallest_font_pt(fig) == 7
    assert smallest_font_pt(Figure()) == float("inf")


def test_book_style_stores_inline_figures_at_twice_the_pixels_shown_at_book_size():
    """In IPython (the book's build) a figure is a retina PNG: 2x the pixels, displayed at BOOK_DPI."""
    import struct

    from IPython.core.interactiveshell import InteractiveShell

    from dnn_course.plotting import BOOK_DPI, BOOK_PIXEL_RATIO, use_book_style

    saved = dict(plt.rcParams)
    shell = InteractiveShell.instance()
    try:
        use_book_style()
        fig = plt.figure(figsize=(4.0, 2.0))
        fig.gca().plot([0, 1], [0, 1])
        data, metadata = shell.display_formatter.format(fig)
        plt.close(fig)
        png = data["image/png"]
        png = png if isinstance(png, bytes) else __import__("base64").b64decode(png)
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        shown = metadata["image/png"]
        assert (shown["width"], shown["height"]) == (width // BOOK_PIXEL_RATIO, height // BOOK_PIXEL_RATIO)
        # the setting the inline backend re-applies when it is configured at the first figure
        from matplotlib_inline.config import InlineBackend

        assert InlineBackend.instance().figure_formats == {"retina"}
        # about 4 x 2 inches at BOOK_DPI once shown (bbox_inches="tight" trims a little)
        assert 0.8 * 4 * BOOK_DPI <= shown["width"] <= 4 * BOOK_DPI and width >= 2 * 0.8 * 4 * BOOK_DPI
    finally:
        plt.rcParams.update(saved)
        InteractiveShell.clear_instance()
