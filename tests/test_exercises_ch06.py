"""Chapter 06 checkers: right answers pass, the usual mistakes get their hint, unfinished cells say "not yet"."""

import pytest
import torch

from course_lib.baselines import words
from course_lib.exercises import check


def lora_params(d_in, d_out, r):
    return r * (d_in + d_out)


def last_positions(mask):
    return mask.sum(dim=1) - 1


def merged_weight(W, A, B, alpha, r):
    return W + (alpha / r) * B @ A


def bow_margin(weight, bias, vocab, sentence):
    rows = sorted({vocab[w] for w in words(sentence) if w in vocab})
    scores = weight[rows].sum(dim=0) + bias
    return (scores[1] - scores[0]).item()


@pytest.mark.parametrize(
    "name, fn",
    [
        ("ch06.lora_params", lora_params),
        ("ch06.last_token", last_positions),
        ("ch06.merge", merged_weight),
        ("ch06.bow_score", bow_margin),
    ],
)
def test_right_answers_pass(name, fn):
    result = check(name, fn)
    assert result.passed, result.message


def test_unfinished_cells_say_not_yet():
    def unfinished(*args): ...

    for name in ("ch06.lora_params", "ch06.last_token", "ch06.merge", "ch06.bow_score"):
        result = check(name, unfinished)
        assert not result.passed and "replace the `...`" in result.message


@pytest.mark.parametrize(
    "name, fn, hint",
    [
        ("ch06.lora_params", lambda d_in, d_out, r: d_in * d_out, "frozen matrix W"),
        ("ch06.lora_params", lambda d_in, d_out, r: r * d_in, "one of the two factors"),
        ("ch06.last_token", lambda mask: mask.sum(dim=1), "those are the lengths"),
        ("ch06.merge", lambda W, A, B, alpha, r: W + B @ A, "scaled by alpha / r"),
        (
            "ch06.bow_score",
            lambda w, b, v, s: (
                sum((w[v[t]] for t in words(s) if t in v), start=b)[1].item()
                - sum((w[v[t]] for t in words(s) if t in v), start=b)[0].item()
            ),
            "count each known word once",
        ),
    ],
)
def test_common_mistakes_get_hints(name, fn, hint):
    result = check(name, fn)
    assert not result.passed and hint in result.message


def test_questions_have_one_right_answer():
    from course_lib.exercises import answer

    for name, right in (("ch06.q1", "b"), ("ch06.q2", "c"), ("ch06.q3", "a")):
        assert answer(name, right).startswith("right:")
        wrong = "a" if right != "a" else "b"
        assert answer(name, wrong).startswith("not quite:")


def test_bow_score_rejects_nan():
    result = check("ch06.bow_score", lambda w, b, v, s: float("nan"))
    assert not result.passed and "your margin is nan" in result.message


def test_bow_score_in_place_on_the_bias_is_harmless():
    received = []

    def aliasing(weight, bias, vocab, sentence):
        received.append(bias.clone())
        scores = bias  # an alias, not a copy: += changes what the checker handed over
        for w in set(words(sentence)):
            if w in vocab:
                scores += weight[vocab[w]]
        return float(scores[1] - scores[0])

    assert check("ch06.bow_score", aliasing).passed
    assert all(torch.equal(b, received[0]) for b in received)  # every call got a fresh, untouched bias


def test_merge_float32_gets_a_dtype_hint_and_keeps_the_random_state():
    state = torch.get_rng_state()
    result = check("ch06.merge", lambda W, A, B, alpha, r: merged_weight(W, A, B, alpha, r).float())
    assert not result.passed and "your result is float32; the inputs are float64" in result.message
    assert check("ch06.merge", merged_weight).passed
    assert torch.equal(state, torch.get_rng_state())
