"""course_lib.scaling: the power-law fit against numpy.polyfit and known laws; the addition task and its scores."""

import math

import numpy as np
import pytest
import torch

from course_lib.scaling import (
    addition_examples,
    addition_problems,
    addition_stream,
    addition_tokenizer,
    fit_power_law,
    score_addition,
)


def test_power_law_recovers_an_exact_law():
    x = np.array([1e3, 3e3, 1e4, 3e4, 1e5])
    fit = fit_power_law(x, 7.5 * x**-0.076)
    assert fit.alpha == pytest.approx(0.076, abs=1e-12)
    assert fit.a == pytest.approx(7.5, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0)
    assert fit(2e3) == pytest.approx(7.5 * 2e3**-0.076)


def test_power_law_matches_polyfit_on_noisy_data():
    rng = np.random.default_rng(0)
    x = np.logspace(3, 6, 9)
    y = 4.0 * x**-0.3 * np.exp(rng.normal(0, 0.05, x.shape))
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    fit = fit_power_law(x, y)
    assert fit.alpha == pytest.approx(-slope, rel=1e-10)
    assert math.log(fit.a) == pytest.approx(intercept, rel=1e-10)
    assert 0.9 < fit.r2 < 1.0


@pytest.mark.parametrize(
    "x, y, match",
    [
        ([1, 2], [1, 2, 3], "same length"),
        ([5, 5], [1, 2], "two distinct"),
        ([1, -2], [1, 2], "positive"),
        ([1, 2], [0, 1], "positive"),
        ([1, np.inf], [1, 2], "finite"),
    ],
)
def test_power_law_refuses_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y)


def test_addition_problems_are_correct_and_reversed():
    problems = addition_problems(200, 3, torch.Generator().manual_seed(0))
    assert len(problems) == 200
    for prompt, answer in problems:
        a, b = prompt.rstrip("=").split("+")
        assert len(a) == len(b) == 3 and len(answer) == 4
        assert int(answer[::-1]) == int(a) + int(b)
    assert addition_problems(5, 3, torch.Generator().manual_seed(1)) == addition_problems(
        5, 3, torch.Generator().manual_seed(1)
    )


def test_addition_problems_never_draw_excluded_ones():
    test = addition_problems(500, 2, torch.Generator().manual_seed(0))
    train = addition_problems(20_000, 2, torch.Generator().manual_seed(1), exclude=test)
    assert len(train) == 20_000 and not set(train) & set(test)
    assert len(set(addition_problems(20_000, 2, torch.Generator().manual_seed(1))) & set(test)) > 400  # without it
    every = [(f"{a}+{b}=", f"{a + b:02d}"[::-1]) for a in range(10) for b in range(10)]
    assert addition_problems(50, 1, torch.Generator(), exclude=every[1:]) == [every[0]] * 50
    for exclude in (every, every + [("07+05=", "210")]):  # problems of another size do not hide a full set
        with pytest.raises(ValueError, match="none is left to draw"):
            addition_problems(1, 1, torch.Generator(), exclude=exclude)


@pytest.mark.parametrize(
    ("n", "n_digits", "message"),
    [
        (0, 3, "n must be a positive int, got 0"),
        (5, 0, "n_digits must be an int from 1 to 9, got 0"),
        (5, 10, "n_digits must be an int from 1 to 9, got 10"),
        (2.0, 3, "n must be a positive int, got 2.0"),
    ],
)
def test_addition_problems_refuse_bad_sizes(n, n_digits, message):
    with pytest.raises(ValueError, match=message):
        addition_problems(n, n_digits, torch.Generator())


def test_stream_round_trips():
    tok = addition_tokenizer()
    problems = [("071+893=", "4690"), ("000+001=", "1000")]
    assert tok.decode(addition_stream(problems, tok).tolist()) == "071+893=4690\n000+001=1000\n"


def test_examples_mask_the_prompt():
    tok = addition_tokenizer()
    x, y = addition_examples([("071+893=", "4690"), ("000+001=", "1000")], tok)
    assert x.shape == y.shape == (2, 11)
    assert tok.decode(x[0].tolist()) == "071+893=469"
    assert (y[:, :7] == -100).all()  # positions 0..6 would predict prompt characters
    assert tok.decode(y[0, 7:].tolist()) == "4690" and tok.decode(y[1, 7:].tolist()) == "1000"
    with pytest.raises(ValueError, match="problems is empty"):
        addition_examples([], tok)
    with pytest.raises(ValueError, match="share one layout"):  # 2- and 3-digit problems cannot share rows
        addition_examples([("071+893=", "4690"), ("12+34=", "640")], tok)


class _Oracle(torch.nn.Module):
    """Predicts the next character of a fixed text, except at positions listed in ``wrong``."""

    def __init__(self, texts, tok, wrong=(), confidence=5.0):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))
        self.ids = torch.tensor([tok.encode(t) for t in texts])
        self.vocab, self.wrong, self.confidence = tok.vocab_size, set(wrong), confidence

    def forward(self, idx):
        assert torch.equal(idx, self.ids[:, : idx.shape[1]])  # only ever fed the text itself
        nxt = self.ids[:, 1 : idx.shape[1] + 1]
        logits = torch.zeros(*idx.shape, self.vocab)
        logits.scatter_(-1, nxt[..., None], self.confidence)
        for row, col in self.wrong:  # move the preference to another token
            logits[row, col] = 0
            logits[row, col, (nxt[row, col] + 1) % self.vocab] = self.confidence
        return logits, None


def test_scores_against_a_model_with_known_mistakes():
    tok = addition_tokenizer()
    problems = [("071+893=", "4690"), ("000+001=", "1000"), ("500+500=", "0001")]
    texts = [p + a for p, a in problems]
    # positions predicting answer digits are 7..10; one mistake in problem 0, two in problem 2
    model = _Oracle(texts, tok, wrong=[(0, 9), (2, 7), (2, 10)])
    scores = score_addition(model, tok, problems)
    assert scores.exact_match == pytest.approx(1 / 3)
    assert scores.digit_accuracy == pytest.approx(9 / 12)
    p_right = math.exp(5) / (math.exp(5) + tok.vocab_size - 1)  # softmax of one logit 5 among zeros
    p_wrong = 1 / (math.exp(5) + tok.vocab_size - 1)
    expected = (9 * math.log(p_right) + 3 * math.log(p_wrong)) / 3
    assert scores.log_likelihood == pytest.approx(expected, rel=1e-5)


def test_scores_with_context_and_bad_layouts():
    tok = addition_tokenizer()
    problems = [("12+34=", "640"), ("99+99=", "891")]
    context = "10+10=020\n"
    model = _Oracle([context + p + a for p, a in problems], tok)
    scores = score_addition(model, tok, problems, context=context)
    assert (scores.exact_match, scores.digit_accuracy) == (1.0, 1.0)
    with pytest.raises(ValueError, match="one layout"):
        score_addition(model, tok, [("1+1=", "20"), ("12+34=", "640")])
    with pytest.raises(ValueError, match="empty"):
        score_addition(model, tok, [])
