"""Small plotting helpers the chapters share, so a notebook cell shows the picture, not the plumbing.

A flat module of small functions: each takes tensors or arrays, checks them, draws on a matplotlib
``Axes`` (made for you when you pass none) and returns what it drew on, so a notebook can add a
title or save the figure. Chapters add their helpers here.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

ArrayLike = torch.Tensor | np.ndarray


def _as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """A float NumPy copy of ``x`` (detached, on the CPU), so callers may pass tensors from any device."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, not {type(x).__name__}")


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")


def _check_tokens(tokens: Sequence[str], length: int, name: str, axis: str) -> list[str]:
    tokens = [str(t) for t in tokens]
    if len(tokens) != length:
        raise ValueError(
            f"{name} has {len(tokens)} labels but the weights have {length} {axis}; pass one label per {axis[:-1]}"
        )
    return tokens


def attention_heatmap(
    weights: ArrayLike,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    vmax: float | None = 1.0,
) -> Axes:
    """Draw a (T_q, T_k) attention matrix with the query tokens down the side and the key tokens along the top.

    Row ``i`` is what query token ``i`` looks at, so each row of a softmax output sums to one; the colour
    scale runs from 0 to ``vmax`` (1 by default, so two heatmaps are comparable; ``None`` scales to the
    data). ``annotate`` writes each weight in its cell; by default only when the matrix is small
    enough (at most 8 x 8) for the numbers to be readable. Used from chapter 02 on.
    """
    w = _as_numpy(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (queries, keys), got shape {w.shape}; pick one head and batch item")
    queries = _check_tokens(query_tokens, w.shape[0], "query_tokens", "rows")
    keys = _check_tokens(query_tokens if key_tokens is None else key_tokens, w.shape[1], "key_tokens", "columns")
    if ax is None:
        size = max(2.5, 0.45 * max(w.shape) + 1.2)
        _, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=vmax, aspect="equal")
    ax.set_xticks(range(len(keys)), keys, rotation=90)
    ax.set_yticks(range(len(queries)), queries)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    if annotate is None:
        annotate = max(w.shape) <= 8
    if annotate:
        top = vmax if vmax is not None else w.max()
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                colour = "black" if w[i, j] > 0.6 * top else "white"
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=8)
    if title:
        ax.set_title(title, pad=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def attention_heads_grid(
    weights: ArrayLike,
    tokens: Sequence[str],
    ncols: int = 4,
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """Draw every head's (T, T) attention matrix side by side from one (n_head, T, T) tensor.

    Heads of one layer are easiest to compare on one shared colour scale (0 to 1) and in one grid;
    tick labels are written only on the left column and the top row to keep the grid readable.
    Used in chapter 03.
    """
    w = _as_numpy(weights, "weights")
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise ValueError(f"weights must have shape (n_head, T, T), got {w.shape}; pick one batch item and layer")
    _check_int("ncols", ncols)
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    n_head, T, _ = w.shape
    tokens = _check_tokens(tokens, T, "tokens", "rows")
    if titles is None:
        titles = [f"head {h}" for h in range(n_head)]
    elif len(titles) != n_head:
        raise ValueError(f"titles has {len(titles)} entries but there are {n_head} heads; pass one title per head")
    ncols = min(ncols, n_head)
    nrows = math.ceil(n_head / ncols)
    cell = min(3.2, max(1.8, 0.14 * T + 0.8))  # inches per panel: room for the labels, capped for long inputs
    # constrained layout keeps the suptitle and the top row's labels apart (tight_layout does not)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.4), squeeze=False, layout="constrained"
    )
    for h, ax in enumerate(axes.flat):
        if h >= n_head:
            ax.axis("off")
            continue
        ax.imshow(w[h], cmap="viridis", vmin=0.0, vmax=1.0)
        row, col = divmod(h, ncols)
        ax.set_xticks(range(T), tokens if row == 0 else [], rotation=90, fontsize=7)
        ax.set_yticks(range(T), tokens if col == 0 else [], fontsize=7)
        ax.xaxis.set_ticks_position("top")
        ax.set_title(titles[h], fontsize=9)  # matplotlib lifts it above top tick labels
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def figure_widget(draw: Callable[..., None], **controls: Any) -> Any:
    """Controls above an output area that redraws ``draw(**values)`` whenever a control changes.

    Unlike ``ipywidgets.interact``, nothing is drawn until a control moves: a chapter shows the figure
    once statically (for readers without a running kernel) and the stored outputs re-run identically
    under nbval, where interact's first drawing escapes its output area. Each keyword names one of
    ``draw``'s parameters and gives the widget (slider, dropdown) that sets it. Used from chapter 02 on.
    """
    import ipywidgets as widgets

    if not controls:
        raise ValueError("pass at least one control, e.g. figure_widget(draw, head=widgets.Dropdown(options=[0, 1]))")
    panel = widgets.Output()

    def redraw(_change: Any = None) -> None:
        with panel:
            panel.clear_output(wait=True)
            draw(**{name: control.value for name, control in controls.items()})
            plt.show()

    for control in controls.values():
        control.observe(redraw, names="value")
    return widgets.VBox([*controls.values(), panel])


def moving_average(values: Sequence[float] | torch.Tensor, k: int) -> torch.Tensor:
    """Mean of each value and the ``k - 1`` before it (fewer at the start), as float32.

    One batch's loss is noisy; the trend is what a learning curve is read for. Prefix sums make it one
    pass however long the run, and the first points average what exists instead of padding with zeros.
    """
    _check_int("moving_average's window k", k)
    if k < 1:
        raise ValueError(f"moving_average needs a window k >= 1, got {k}")
    v = torch.as_tensor(values, dtype=torch.float64)
    if v.ndim != 1:
        raise ValueError(f"moving_average takes a 1-D sequence of values, got shape {tuple(v.shape)}")
    sums = torch.cat([v.new_zeros(1), v.cumsum(0)])
    end = torch.arange(1, len(v) + 1)
    start = (end - k).clamp(min=0)
    return ((sums[end] - sums[start]) / (end - start)).float()


def loss_curves(history: Any, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw a training run's losses: the noisy per-step training loss and the evaluations on both splits.

    ``history`` is what ``course_lib.train.train`` returns (steps, train_loss, eval_steps, eval_train_loss,
    val_loss); a ``ClassifierHistory`` from ``train_classifier`` (its validation accuracy goes on a second
    y-axis, on the right); or a plain 1-D sequence of per-step training losses. A validation curve that turns
    up while the training curve keeps falling is overfitting. Used from chapter 05 on.
    """
    steps, train_loss, evals = _curves(history)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    if len(train_loss):
        ax.plot(steps, train_loss, color="tab:blue", alpha=0.25, lw=0.8, label="train (each step)")
    handles = []
    if evals == "loss" and history.val_loss:
        ax.plot(history.eval_steps, history.eval_train_loss, "o-", color="tab:blue", ms=3, label="train (eval)")
        ax.plot(history.eval_steps, history.val_loss, "o-", color="tab:orange", ms=3, label="validation")
    if evals == "accuracy" and history.val_accuracy:
        right = ax.twinx()
        handles = right.plot(
            history.eval_steps, history.val_accuracy, "o-", color="tab:orange", ms=3, label="validation accuracy"
        )
        right.set_ylabel("validation accuracy")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per token)" if evals != "accuracy" else "loss (nats per example)")
    ax.grid(alpha=0.3)
    if handles:  # the accuracy line lives on the twin axes: one legend for both
        lines, labels = ax.get_legend_handles_labels()
        ax.legend(lines + handles, labels + [h.get_label() for h in handles], loc="upper right")
    elif ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def _curves(history: Any) -> tuple[Sequence[float], Sequence[float], str | None]:
    """(steps, per-step training losses, which evaluations it has) of what ``loss_curves`` was given."""
    if hasattr(history, "train_loss") and hasattr(history, "steps"):
        evals = "loss" if hasattr(history, "val_loss") else "accuracy" if hasattr(history, "val_accuracy") else None
        evaluated = (history.val_loss if evals == "loss" else history.val_accuracy) if evals else []
        if not history.train_loss and not evaluated:
            raise ValueError("nothing to plot yet: the history holds no losses; call loss_curves after training")
        return history.steps, history.train_loss, evals
    if isinstance(history, (list, tuple, torch.Tensor, np.ndarray)):
        losses = np.asarray(history.detach().cpu() if isinstance(history, torch.Tensor) else history)
        if losses.ndim == 1 and losses.dtype.kind in "iuf":
            if len(losses) == 0:
                raise ValueError("nothing to plot yet: the list of losses is empty")
            return range(len(losses)), losses, None
    raise TypeError(
        f"loss_curves takes the History that train() returns (or train_classifier's ClassifierHistory, or a 1-D "
        f"list of per-step training losses), got {type(history).__name__}; pass the History that train() returns"
    )


class LiveLossPlot:
    """A loss plot that redraws in place after each evaluation: ``train(..., callback=LiveLossPlot())``.

    In a notebook the figure is shown once and then updated through its display handle, so the cell
    keeps one picture instead of a new one per evaluation; elsewhere (a terminal) it only keeps the
    figure, which ``.figure`` returns for saving.
    """

    def __init__(self, title: str | None = None) -> None:
        self.title = title
        self.figure, self.ax = plt.subplots(figsize=(6.5, 3.5))
        plt.close(self.figure)  # shown through the display handle below, not again at the end of the cell
        self._handle = None

    def __call__(self, history: Any) -> None:
        self.ax.clear()
        loss_curves(history, self.ax, self.title)
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)
