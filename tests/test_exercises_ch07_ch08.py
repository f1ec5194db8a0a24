"""Chapters 07 and 08's checkers accept right answers, agree with course_lib.mlm, and catch the typical mistakes."""

from collections import Counter

import torch
from test_exercises import assert_rejected

from course_lib.exercises import answer, check
from course_lib.mlm import mask_tokens


def _mask(ids, u, v, r, p):
    special = torch.isin(ids, torch.tensor([0, 2, 3]))
    target = (u < p) & ~special
    y = torch.where(target, ids, -100)
    x = torch.where(target & (v < 0.8), 4, ids)
    return torch.where(target & (v >= 0.8) & (v < 0.9), r, x), y


def test_mask_rule_accepts_the_rule_and_agrees_with_the_library():
    assert check("ch07.mask_rule", _mask).passed
    ids = torch.randint(5, 30, (3, 9), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    u, v, r = (
        torch.rand(ids.shape, generator=g),
        torch.rand(ids.shape, generator=g),
        torch.randint(30, ids.shape, generator=g),
    )
    x, y = mask_tokens(ids, 4, 30, (0, 2, 3), mask_prob=0.4, generator=torch.Generator().manual_seed(1))
    ex, ey = _mask(ids, u, v, r, 0.4)
    assert torch.equal(x, ex) and torch.equal(y, ey)


def test_mask_rule_mistakes_get_hints():
    all_mask = check(
        "ch07.mask_rule",
        lambda ids, u, v, r, p: (
            torch.where((u < p) & ~torch.isin(ids, torch.tensor([0, 2, 3])), 4, ids),
            _mask(ids, u, v, r, p)[1],
        ),
    )
    assert not all_mask.passed and "v < 0.8" in all_mask.message
    no_special = check("ch07.mask_rule", lambda ids, u, v, r, p: (ids, torch.where(u < p, ids, -100)))
    assert not no_special.passed and "never targets" in no_special.message
    assert_rejected(check("ch07.mask_rule", lambda *a: None), "your function returned None")


def test_expected_masks_and_baseline():
    assert check("ch07.expected_masks", 126 * 0.15 * 0.8).passed
    assert "[CLS]" in check("ch07.expected_masks", 128 * 0.15 * 0.8).message
    assert "80%" in check("ch07.expected_masks", 126 * 0.15).message
    right = lambda train, targets: sum(t == Counter(train).most_common(1)[0][0] for t in targets) / len(targets)  # noqa: E731
    wrong = lambda train, targets: sum(t == Counter(targets).most_common(1)[0][0] for t in targets) / len(targets)  # noqa: E731
    assert check("ch07.baseline", right).passed
    assert "training tokens" in check("ch07.baseline", wrong).message


def test_ch08_checkers():
    assert check("ch08.head_params", 770).passed
    assert "bias" in check("ch08.head_params", 768).message

    def first_piece(word_ids, tags):
        out, prev = [], None
        for w in word_ids:
            out.append(-100 if w is None or w == prev else tags[w])
            prev = w
        return out

    assert check("ch08.word_labels", first_piece).passed
    every = check("ch08.word_labels", lambda ids, tags: [-100 if w is None else tags[w] for w in ids])
    assert not every.passed and "first piece" in every.message
    assert check("ch08.accuracy", lambda lg, y: (lg.argmax(-1) == y).float().mean().item()).passed
    assert "divide" in check("ch08.accuracy", lambda lg, y: (lg.argmax(-1) == y).sum().item()).message


def test_questions_have_one_right_answer_each():
    for name in ("ch07.q1", "ch07.q2", "ch07.q3", "ch08.q1", "ch08.q2", "ch08.q3"):
        verdicts = [answer(name, c).startswith("right") for c in "abcd"]
        assert verdicts.count(True) == 1, name


def test_mask_rule_order_and_ignore_index_mistakes():
    swapped = check("ch07.mask_rule", lambda ids, u, v, r, p: _mask(ids, u, v, r, p)[::-1])
    assert not swapped.passed and "(masked_inputs, labels)" in swapped.message
    zeros = check("ch07.mask_rule", lambda *a: (_mask(*a)[0], _mask(*a)[1].clamp(min=0)))
    assert not zeros.passed and "-100 wherever a token is not a target" in zeros.message


def test_baseline_cannot_be_passed_by_peeking_or_hard_coding():
    def peek(train, targets):  # counts the targets too: a 5:5 tie in the first case hid this
        mode = Counter(train + targets).most_common(1)[0][0]
        return sum(t == mode for t in targets) / len(targets)

    result = check("ch07.baseline", peek)
    assert not result.passed and "training tokens" in result.message
    assert_rejected(check("ch07.baseline", lambda train, targets: 0.4), "expected 0.2: find the most frequent")


def test_ch08_hard_coded_answers_fail_and_none_labels_get_a_hint():
    assert_rejected(check("ch08.accuracy", lambda lg, y: 0.6), "expected 0.75: take logits.argmax(dim=-1)")
    assert "divide" in check("ch08.accuracy", lambda lg, y: (lg.argmax(-1) == y).sum().item()).message
    wanted = [-100, 5, 2, -100, -100, 0, 10, -100, -100]
    assert_rejected(check("ch08.word_labels", lambda ids, tags: wanted), "give a token its word's tag")
    nones = check("ch08.word_labels", lambda ids, tags: [None if w is None else -100 for w in ids])
    assert not nones.passed and "not None" in nones.message
