"""Chapter 05's checkers accept right answers, agree with course_lib's sampler, and catch the typical mistakes."""

import math

import torch

from course_lib.exercises import answer, check
from course_lib.generate import sample_next


def _top_k(logits, k):
    kept = logits.topk(k).indices
    probs = torch.zeros_like(logits)
    probs[kept] = torch.softmax(logits[kept], dim=0)
    return probs


def _top_p(probs, p):
    sorted_probs, order = probs.sort(descending=True)
    keep = (sorted_probs.cumsum(0) - sorted_probs) < p
    out = torch.zeros_like(probs)
    out[order[keep]] = sorted_probs[keep]
    return out / out.sum()


def test_init_loss():
    assert check("ch05.init_loss", math.log(50257)).passed
    bits = check("ch05.init_loss", math.log2(50257))
    assert not bits.passed and "bits" in bits.message


def test_window():
    assert check("ch05.window", lambda t, s, T: (t[s : s + T], t[s + 1 : s + T + 1])).passed
    same = check("ch05.window", lambda t, s, T: (t[s : s + T], t[s : s + T]))
    assert not same.passed and "shifted by one" in same.message


def test_top_k_right_and_wrong():
    assert check("ch05.top_k", _top_k).passed
    unnormalised = check(
        "ch05.top_k", lambda lg, k: torch.where(lg >= lg.topk(k).values[-1], torch.softmax(lg, 0), 0.0)
    )
    assert not unnormalised.passed and "renormalise" in unnormalised.message
    assert "returned None" in check("ch05.top_k", lambda lg, k: None).message


def test_top_p_right_and_off_by_one():
    assert check("ch05.top_p", _top_p).passed

    def too_few(probs, p):  # stops before the token that crosses p
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) < p
        keep[0] = True
        out = torch.zeros_like(probs)
        out[order[keep]] = sorted_probs[keep]
        return out / out.sum()

    wrong = check("ch05.top_p", too_few)
    assert not wrong.passed and "too few" in wrong.message


def test_reference_solutions_agree_with_the_library_sampler():
    """The distributions the checkers accept are the ones course_lib.generate.sample_next draws from."""
    logits = torch.tensor([1.5, -0.3, 2.7, 0.1, 2.2, -1.0, 0.9])
    n = 40_000
    for settings, ours in [
        ({"top_k": 3}, _top_k(logits, 3)),
        ({"top_p": 0.8}, _top_p(torch.softmax(logits, 0), 0.8)),
    ]:
        draws = sample_next(logits.expand(n, -1), generator=torch.Generator().manual_seed(0), **settings)
        freq = torch.bincount(draws.flatten(), minlength=len(logits)).float() / n
        assert (freq[ours == 0] == 0).all()
        assert (freq - ours).abs().max() < 0.015


def test_questions_have_one_right_answer_each():
    for name, right in [("ch05.q1", "a"), ("ch05.q2", "b"), ("ch05.q3", "a")]:
        assert answer(name, right).startswith("right")
        for wrong in "abcd".replace(right, ""):
            assert answer(name, wrong).startswith("not quite")


def test_init_loss_accepts_a_rounded_answer_and_nudges_a_rough_one():
    assert check("ch05.init_loss", 10.8).passed
    assert check("ch05.init_loss", 10.83).passed
    rough = check("ch05.init_loss", 10.5)
    assert not rough.passed and "two decimals" in rough.message
