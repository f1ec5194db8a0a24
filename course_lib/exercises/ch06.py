"""Checkers and concept questions for chapter 06, GPT fine-tuning.

LoRA answers are compared with ``course_lib.lora.LoRALinear`` (its own tests check it in float64), last-token
positions with ``course_lib.classify.last_token_index``, and bag-of-words margins with a
``BagOfWordsClassifier``'s own ``scores``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_lib.baselines import BagOfWordsClassifier
from course_lib.classify import last_token_index
from course_lib.exercises import changed_in_place, dtype_mismatch, exercise, nonfinite, question
from course_lib.lora import LoRALinear, count_trainable


def _missing(got: Any) -> tuple[bool, str] | None:
    if got is None or got is Ellipsis:
        return False, "your function returned nothing yet: replace the `...` in its body with your code"
    return None


@exercise("ch06.lora_params")
def _lora_params(fn: Callable[[int, int, int], int]) -> tuple[bool, str]:
    """``fn(d_in, d_out, r)`` = the trainable parameters of a rank-r LoRA on ``nn.Linear(d_in, d_out)``."""
    for d_in, d_out, r in [(128, 384, 8), (768, 768, 4), (64, 10, 1), (4096, 11008, 16)]:
        expected = count_trainable(LoRALinear(nn.Linear(d_in, d_out, device="meta"), r=r))
        got = fn(d_in, d_out, r)
        verdict = _missing(got)
        if verdict:
            return verdict
        if got == d_in * d_out:
            return False, "that is the frozen matrix W; LoRA trains A (r x d_in) and B (d_out x r) instead"
        if got == r * d_in or got == r * d_out:
            return False, "you counted one of the two factors; LoRA trains both A (r x d_in) and B (d_out x r)"
        if got != expected:
            return False, f"for d_in={d_in}, d_out={d_out}, r={r} you said {got}, LoRA trains {expected}"
    return True, "r * (d_in + d_out): for a 4096 x 11008 matrix at r=16 that is 241,664 instead of 45 million"


@exercise("ch06.last_token")
def _last_token(fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[bool, str]:
    """``fn(mask)`` = the (B,) position of each row's last 1 in a right-padded mask."""
    g = torch.Generator().manual_seed(6)
    for B, T in [(1, 1), (3, 5), (8, 12)]:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        mask = (torch.arange(T) < lengths[:, None]).long()  # (B, T)
        expected = last_token_index(mask)
        got = fn(mask)
        verdict = _missing(got)
        if verdict:
            return verdict
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return False, f"return a tensor of shape {tuple(expected.shape)}, one position per row"
        if torch.equal(got, lengths):
            return False, "those are the lengths; positions count from 0, so the last real token is at length - 1"
        if not torch.equal(got.long(), expected):
            return False, f"for the mask {mask.tolist()} expected {expected.tolist()}, got {got.tolist()}"
    return True, "each row's last real token; the classifier reads its vector there"


@exercise("ch06.merge")
def _merge(fn: Callable[..., torch.Tensor]) -> tuple[bool, str]:
    """``fn(W, A, B, alpha, r)`` = the merged weight, checked by putting it into a plain ``nn.Linear``."""
    g = torch.Generator().manual_seed(60)
    d_in, d_out, r, alpha = 6, 5, 2, 8.0
    with torch.random.fork_rng():  # the layers' random init; the learner's random state is kept
        torch.manual_seed(60)
        lora = LoRALinear(nn.Linear(d_in, d_out).double(), r=r, alpha=alpha).double()
    with torch.no_grad():
        lora.B.copy_(torch.randn(d_out, r, generator=g, dtype=torch.float64))
        x = torch.randn(4, d_in, generator=g, dtype=torch.float64)
        expected = lora(x)
    W, A, B = lora.base.weight.detach().clone(), lora.A.detach().clone(), lora.B.detach().clone()
    got = fn(W.clone(), A.clone(), B.clone(), alpha, r)
    verdict = _missing(got)
    if verdict:
        return verdict
    if not isinstance(got, torch.Tensor) or got.shape != W.shape:
        return False, f"the merged weight must have W's shape {tuple(W.shape)}; B @ A is (out, in)"
    bad = nonfinite(got)
    if bad:
        return False, f"your merged weight contains {bad}"
    hint = dtype_mismatch(got, W)
    if hint:
        return False, hint
    if torch.allclose(got, W + B @ A, atol=1e-9):
        return False, "almost: the update is scaled by alpha / r"
    plain = nn.functional.linear(x, got.detach(), lora.base.bias.detach())
    if not torch.allclose(plain, expected, atol=1e-9):
        return False, f"a Linear with your weight differs from the LoRA layer by {(plain - expected).abs().max():.2e}"
    return True, "W + (alpha / r) * B @ A: after merging, the LoRA layer costs no more than the original"


@exercise("ch06.bow_score")
def _bow_score(fn: Callable[..., float]) -> tuple[bool, str]:
    """``fn(weight, bias, vocab, sentence)`` = positive minus negative score of a bag-of-words model."""
    vocab = {w: i for i, w in enumerate(["good", "bad", "not", "film", ",", "!"])}
    g = torch.Generator().manual_seed(66)
    model = BagOfWordsClassifier(vocab, torch.randn(len(vocab), 2, generator=g), torch.randn(2, generator=g))
    for sentence in ["Good film!", "not GOOD, not bad", "an unknown word", "good good good"]:
        scores = model.scores([sentence])[0]
        expected = (scores[1] - scores[0]).item()
        weight, bias = model.weight.clone(), model.bias.clone()  # copies: `scores = bias; scores += ...` is harmless
        got = fn(weight, bias, dict(model.vocab), sentence)
        verdict = _missing(got)
        if verdict:
            return verdict
        got = float(got)
        if not abs(got - expected) <= 1e-4:  # written so that NaN fails too
            note = changed_in_place(weight=(weight, model.weight), bias=(bias, model.bias))
            if nonfinite(got):
                return (
                    False,
                    f"on {sentence!r} your margin is {got}: add the known words' weight rows to the bias" + note,
                )
            if not note and ("good good" in sentence or "not" in sentence):
                return False, f"on {sentence!r}: count each known word once (a bag of distinct words), lower-cased"
            return False, f"on {sentence!r} the margin is {expected:.4f}, you said {got:.4f}" + note
    return True, "a sum of per-word weights: order and repetition play no part, which is the model's weakness"


question(
    "ch06.q1",
    "A GPT classifier reads the vector of the last real token of each sentence. Why the last, not the first?",
    [
        (
            "The last token is always the most important word of a sentence",
            False,
            "No: the last token is often a full stop. Its position matters, not its meaning.",
        ),
        (
            "With causal attention only the last token has attended to every token of the sentence",
            True,
            "Yes: position t sees positions 0..t, so the first token's vector knows only the first token. "
            "(BERT, whose attention is bidirectional, can use its first token instead.)",
        ),
        (
            "The first token's vector is reserved for the language-model head",
            False,
            "No: the LM head reads every position, and the classifier does not use it at all.",
        ),
        (
            "Padding would otherwise change the result",
            False,
            "Right padding comes after the last real token, so a causal model's first token is not affected either; "
            "the reason is what each position has seen.",
        ),
    ],
)

question(
    "ch06.q2",
    "A LoRA layer is created with B = 0. What does the model compute before the first training step?",
    [
        (
            "Random outputs, because A is random",
            False,
            "A is random, but B A = 0 whatever A is, so the update adds nothing.",
        ),
        (
            "Zero, because the layer's output is multiplied by B",
            False,
            "Only the update goes through B; the frozen W x is still there.",
        ),
        (
            "Exactly what the pretrained model computes",
            True,
            "Yes: y = W x + (alpha/r) B A x = W x. Fine-tuning starts from the pretrained model, not from a "
            "perturbed copy; that is why one factor starts at zero (and the other random, so gradients flow).",
        ),
        (
            "Nothing: LoRA layers must be merged before they can run",
            False,
            "Merging is an optional speed-up after training; the unmerged layer runs as it is.",
        ),
    ],
)

question(
    "ch06.q3",
    "With the same architecture, data and steps, the pretrained GPT beats the one trained from random "
    "initialisation. What does pretraining give it?",
    [
        (
            "Representations of English learned from unlabelled text: which tokens mean similar things and how "
            "words combine, so the 8,056 labelled sentences only have to teach the task",
            True,
            "Yes: predicting the next token forces the model to encode a lot about language; the classifier head "
            "reads those features. From random weights, all of it must come from the small labelled set.",
        ),
        (
            "The test sentences' labels, seen during pretraining",
            False,
            "No: pretraining never sees a label, and never sees a validation or test sentence at all.",
        ),
        ("More parameters", False, "No: both models have exactly the same architecture and parameter count."),
        ("A better learning rate", False, "No: both runs use the same optimizer, learning rate and schedule."),
    ],
)
