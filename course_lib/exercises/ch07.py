"""Checkers and concept questions for chapter 07, BERT pretraining with masked-language modelling.

The masking reference is written here as an element-by-element loop over the given random draws,
independent of ``course_lib.mlm``, so a mistake the library might share is still caught.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from course_lib.exercises import exercise, question

_MASK, _VOCAB, _SPECIAL = 4, 30, (0, 2, 3)


def _reference_mask(ids: torch.Tensor, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor, p: float):
    x, y = ids.clone(), torch.full_like(ids, -100)
    for i in range(ids.numel()):
        if ids.view(-1)[i].item() in _SPECIAL or u.view(-1)[i] >= p:
            continue
        y.view(-1)[i] = ids.view(-1)[i]
        if v.view(-1)[i] < 0.8:
            x.view(-1)[i] = _MASK
        elif v.view(-1)[i] < 0.9:
            x.view(-1)[i] = r.view(-1)[i]
    return x, y


@exercise("ch07.mask_rule")
def _mask_rule(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> tuple[bool, str]:
    """``fn(ids, u, v, r, p)`` applies the 80/10/10 rule with the given draws; mask id 4, specials 0, 2, 3."""
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(5, _VOCAB, (4, 12), generator=g)
    ids[:, 0], ids[:, -1], ids[0, -3:] = 2, 3, 0  # [CLS] ... [SEP], and padding in the first row
    u, v, r = (
        torch.rand(ids.shape, generator=g),
        torch.rand(ids.shape, generator=g),
        torch.randint(_VOCAB, ids.shape, generator=g),
    )
    p = 0.4
    got = fn(ids.clone(), u, v, r, p)
    if got is None:
        return False, "your function returned None: replace the `...` in its body with your code"
    if not isinstance(got, tuple) or len(got) != 2:
        return False, "return a pair (masked_inputs, labels)"
    x, y = (torch.as_tensor(t) for t in got)
    want_x, want_y = _reference_mask(ids, u, v, r, p)
    if x.shape != ids.shape or y.shape != ids.shape:
        return False, f"both outputs should have the input's shape {tuple(ids.shape)}"
    if (x == -100).any():
        return False, "your first output holds -100s: return the pair in the order (masked_inputs, labels)"
    if not (y == -100).any():
        return False, (
            "labels must be -100 wherever a token is not a target (the loss skips -100; 0 is a real token id), "
            "and the pair goes in the order (masked_inputs, labels)"
        )
    special = torch.isin(ids, torch.tensor(_SPECIAL))
    if (y[special] != -100).any() or not torch.equal(x[special], ids[special]):
        return False, "[CLS], [SEP] and [PAD] are never targets: leave them unchanged with label -100"
    if not torch.equal(y, want_y):
        if ((y != -100) == (u < p)).all():
            return False, "exclude the special tokens from the targets (u < p and not special)"
        return False, "labels: the original token where u < p (and not special), -100 everywhere else"
    if not torch.equal(x, want_x):
        if torch.equal(x == _MASK, want_y != -100):
            return (
                False,
                "every target became [MASK]; only those with v < 0.8 should, 10% get the random token r, 10% stay",
            )
        return False, "inputs: v < 0.8 -> [MASK] (id 4), 0.8 <= v < 0.9 -> r, otherwise the token stays as it is"
    return True, "the 80/10/10 rule: targets are picked first, then each target's fate is drawn"


@exercise("ch07.expected_masks")
def _expected_masks(value: Any) -> tuple[bool, str]:
    """Expected number of [MASK] tokens in a 128-token window ([CLS] + 126 tokens + [SEP]) at mask_prob 0.15."""
    value = float(value)
    right = 126 * 0.15 * 0.8
    if math.isclose(value, right, abs_tol=0.01):
        return True, f"126 x 0.15 x 0.8 = {right:.2f}: about 19 targets, of which 80% are shown as [MASK]"
    if math.isclose(value, 128 * 0.15 * 0.8, abs_tol=0.01):
        return False, "[CLS] and [SEP] are never targets: only 126 of the 128 positions can be picked"
    if math.isclose(value, 126 * 0.15, abs_tol=0.01):
        return False, "that is the number of targets; only 80% of them are replaced by [MASK]"
    return False, "targets are 15% of the 126 ordinary tokens, and 80% of the targets become [MASK]"


@exercise("ch07.baseline")
def _baseline(fn: Callable[[list[int], list[int]], float]) -> tuple[bool, str]:
    """``fn(train_tokens, target_tokens)``: accuracy of always guessing the most frequent training token."""
    # the most frequent target is never the most frequent training token; the second case has no tie even
    # when the targets are (wrongly) counted together with the training tokens
    cases = [([5, 6, 5, 7, 5, 6, 8], [5, 6, 6, 6, 5], 0.4), ([3, 3, 9, 9, 9, 1], [3, 3, 3, 9, 1], 0.2)]
    for train, targets, right in cases:
        got = fn(list(train), list(targets))
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        got = float(got)
        if math.isclose(got, right, abs_tol=1e-6):
            continue
        peeked = Counter(targets).most_common(1)[0][1] / len(targets)
        if math.isclose(got, peeked, abs_tol=1e-6):
            return False, "count the most frequent token in the training tokens, not in the targets"
        return False, (
            f"for train={train}, targets={targets} expected {right}: find the most frequent training token "
            "(collections.Counter), then the share of targets equal to it"
        )
    return True, "2 of the 5 targets are the most frequent training token: 40%"


question(
    "ch07.q1",
    "Why does BERT replace only 80% of its prediction targets with [MASK], and leave 10% unchanged and 10% random?",
    [
        ("To save compute", False, "every target costs the same whatever it is replaced by"),
        (
            "[MASK] never occurs in fine-tuning inputs; if only [MASK] positions were graded, the model could neglect the representation of ordinary tokens. Random and unchanged targets make every token possibly graded",
            True,
            "the mismatch between pre-training and fine-tuning inputs is what the 10/10 reduces",
        ),
        (
            "Random tokens are a data augmentation that makes the vocabulary larger",
            False,
            "the vocabulary is fixed; random tokens only make the model check whether each token fits",
        ),
        ("So that the loss starts lower", False, "the loss at initialisation is about ln(vocab) whatever the input"),
    ],
)

question(
    "ch07.q2",
    "Original BERT also trained next-sentence prediction (NSP): is sentence B the real next sentence? Why did RoBERTa drop it?",
    [
        (
            "NSP was too hard for the model to learn",
            False,
            "it was easy: negatives came from other documents, so a change of topic gave them away",
        ),
        (
            "Training on full-length windows of contiguous text without NSP matched or beat BERT on downstream tasks; the task was mostly topic detection and its half-length segments cost context",
            True,
            "Liu et al. (2019) compared input formats and losses and found NSP unnecessary",
        ),
        ("NSP cannot be trained together with MLM", False, "BERT trained both at once, adding the two losses"),
        ("NSP needs labelled data", False, "its labels come free from the text itself, like MLM's"),
    ],
)

question(
    "ch07.q3",
    "A GPT learns from every token of a window; BERT's MLM learns from about 15%. What follows?",
    [
        (
            "BERT needs no more compute than GPT per useful signal",
            False,
            "each window gives BERT about 6 times fewer predictions to learn from",
        ),
        (
            "MLM extracts less training signal per window, one reason ELECTRA replaced it with a task graded at every position",
            True,
            "ELECTRA's replaced-token detection asks, for every token, whether a small generator swapped it",
        ),
        (
            "Masking more (say 80%) always trains faster",
            False,
            "with most tokens hidden there is too little context left to predict from",
        ),
        ("BERT sees only 15% of the tokens", False, "it sees all of them (some replaced); it is graded on 15%"),
    ],
)
