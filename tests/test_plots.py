"""The shared plotting helpers draw what they are given, label it with the tokens, and reject bad input early."""

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.plots import attention_heads_grid, attention_heatmap, figure_widget, moving_average  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_heatmap_shows_the_weights_with_tokens_on_both_axes():
    w = torch.softmax(torch.randn(3, 4), dim=-1)
    ax = attention_heatmap(w, ["a", "b", "c"], ["w", "x", "y", "z"], title="t")
    np.testing.assert_allclose(ax.images[0].get_array(), w.numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert ax.get_title() == "t"
    # small matrices are annotated with their weights, rounded to two places
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in w.flatten().tolist())


def test_heatmap_defaults_keys_to_queries_and_skips_numbers_when_large():
    w = np.full((10, 10), 0.1)
    ax = attention_heatmap(w, [str(i) for i in range(10)], vmax=None)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(10)]
    assert len(ax.texts) == 0


def test_heatmap_draws_on_a_given_axes_and_accepts_gradients():
    _, ax = plt.subplots()
    w = torch.ones(2, 2, requires_grad=True) / 2
    assert attention_heatmap(w, ["p", "q"], ax=ax) is ax


def test_heatmap_rejects_bad_input_with_the_fix():
    with pytest.raises(ValueError, match="2-D"):
        attention_heatmap(torch.ones(1, 2, 2), ["a", "b"])
    with pytest.raises(ValueError, match="query_tokens has 2 labels but the weights have 3 rows"):
        attention_heatmap(torch.ones(3, 3), ["a", "b"])
    with pytest.raises(ValueError, match="key_tokens has 1 labels but the weights have 3 columns"):
        attention_heatmap(torch.ones(3, 3), ["a", "b", "c"], ["k"])
    with pytest.raises(TypeError, match="not list"):
        attention_heatmap([[1.0]], ["a"])


def test_heads_grid_draws_one_panel_per_head_and_hides_spares():
    w = torch.softmax(torch.randn(5, 3, 3), dim=-1)
    fig = attention_heads_grid(w, ["x", "y", "z"], ncols=3, suptitle="layer 0")
    axes = fig.axes
    assert len(axes) == 6
    drawn = [ax for ax in axes if ax.images]
    assert len(drawn) == 5 and not axes[5].axison
    for h, ax in enumerate(drawn):
        np.testing.assert_allclose(ax.images[0].get_array(), w[h].numpy(), rtol=1e-6)
        assert ax.get_title() == f"head {h}"
    # labels only on the outer edges: top row has key labels, left column query labels
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["x", "y", "z"]
    assert {t.get_text() for t in axes[4].get_xticklabels()} == {""}
    assert [t.get_text() for t in axes[3].get_yticklabels()] == ["x", "y", "z"]
    assert {t.get_text() for t in axes[4].get_yticklabels()} == {""}
    assert fig._suptitle.get_text() == "layer 0"


def test_heads_grid_rejects_bad_input_with_the_fix():
    with pytest.raises(ValueError, match=r"\(n_head, T, T\)"):
        attention_heads_grid(torch.ones(2, 3, 4), ["a", "b", "c"])
    with pytest.raises(ValueError, match="tokens has 2 labels"):
        attention_heads_grid(torch.ones(2, 3, 3), ["a", "b"])
    with pytest.raises(ValueError, match="one title per head"):
        attention_heads_grid(torch.ones(2, 3, 3), ["a", "b", "c"], titles=["only one"])
    with pytest.raises(ValueError, match="ncols must be at least 1"):
        attention_heads_grid(torch.ones(2, 3, 3), ["a", "b", "c"], ncols=0)


def test_figure_widget_redraws_with_every_controls_value_only_on_change():
    import ipywidgets as widgets

    calls = []
    head = widgets.Dropdown(options=[0, 1, 2], value=0)
    scale = widgets.FloatSlider(value=1.0, min=0.5, max=2.0)
    box = figure_widget(lambda head, scale: calls.append((head, scale)), head=head, scale=scale)
    assert calls == []  # nothing drawn until a control moves
    assert list(box.children[:2]) == [head, scale] and isinstance(box.children[2], widgets.Output)
    head.value = 2
    scale.value = 1.5
    assert calls == [(2, 1.0), (2, 1.5)]
    with pytest.raises(ValueError, match="at least one control"):
        figure_widget(lambda: None)


def test_moving_average_matches_the_definition():
    values = torch.randn(60, generator=torch.Generator().manual_seed(0)).tolist()
    for k in (1, 5, 25, 100):
        windows = [values[max(0, i - k + 1) : i + 1] for i in range(60)]
        by_hand = torch.tensor([sum(w) / len(w) for w in windows])
        torch.testing.assert_close(moving_average(values, k), by_hand)
    assert moving_average([], 3).shape == (0,)


def test_moving_average_rejects_bad_input():
    with pytest.raises(ValueError, match="window k >= 1"):
        moving_average([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="1-D"):
        moving_average(torch.zeros(2, 3), 2)


def test_moving_average_and_grid_want_int_sizes():
    with pytest.raises(TypeError, match="window k must be an int, got 2.5"):
        moving_average([1.0, 2.0], 2.5)
    with pytest.raises(TypeError, match="ncols must be an int, got 2.5"):
        attention_heads_grid(torch.ones(2, 3, 3), ["a", "b", "c"], ncols=2.5)


def test_loss_curves_draws_a_history_its_evaluations_and_a_classifier_history():
    from course_lib.classify import ClassifierHistory
    from course_lib.plots import loss_curves
    from course_lib.train import History

    history = History(steps=[0, 1, 2], train_loss=[3.0, 2.5, 2.0], eval_steps=[0, 3])
    history.eval_train_loss, history.val_loss = [3.1, 1.9], [3.2, 2.1]
    ax = loss_curves(history, title="run")
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[3.0, 2.5, 2.0], [3.1, 1.9], [3.2, 2.1]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train (each step)", "train (eval)", "validation"]

    clf = ClassifierHistory(steps=[0, 1], train_loss=[0.7, 0.6], eval_steps=[0, 2], val_accuracy=[0.5, 0.75])
    ax = loss_curves(clf)
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[0.7, 0.6]]
    (right,) = [other for other in ax.figure.axes if other is not ax]  # accuracy has its own y-axis
    assert [list(line.get_ydata()) for line in right.get_lines()] == [[0.5, 0.75]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train (each step)", "validation accuracy"]

    ax = loss_curves([3.0, 2.0, 1.5])  # a plain list of per-step losses
    assert list(ax.get_lines()[0].get_xdata()) == [0, 1, 2] and list(ax.get_lines()[0].get_ydata()) == [3.0, 2.0, 1.5]


def test_loss_curves_rejects_what_it_cannot_draw():
    from course_lib.plots import loss_curves
    from course_lib.train import History

    with pytest.raises(ValueError, match="nothing to plot yet"):
        loss_curves(History())
    with pytest.raises(ValueError, match="nothing to plot yet"):
        loss_curves([])
    for wrong in ({"train_loss": [1.0]}, "1.0 2.0", [[1.0, 2.0]], 3.0):
        with pytest.raises(TypeError, match="pass the History that train\\(\\) returns"):
            loss_curves(wrong)
