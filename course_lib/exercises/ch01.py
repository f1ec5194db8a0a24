"""Exercises and concept questions of chapter 01 (tokens and embeddings)."""

from __future__ import annotations

import math
import random

import torch

from course_lib.exercises import LearnerRaised, exercise, question

UNWRITTEN = "your function returns None: write its body in place of the `...`"


@exercise("ch01.encode")
def _encode(fn) -> tuple[bool, str]:
    from course_lib.tokenizers import BPETokenizer

    corpus = "low lower lowest newer newest wider widest slow slower slowest"
    bpe = BPETokenizer.train(corpus, vocab_size=256 + 12)
    merges = [pair for pair, _ in sorted(bpe.merges.items(), key=lambda kv: kv[1][0])]  # in the order learned
    for word in ("lowest", "slower", "newer", "west", "x", "lowlowlow", ""):
        got = fn(word, merges)
        if got is None:
            return False, UNWRITTEN
        want = bpe.encode(word)
        if list(got) != want:
            hint = (
                "start from list(word.encode('utf-8')); for rank, pair in enumerate(merges) merge pair into 256 + rank"
            )
            return False, f"bpe_encode({word!r}) should be {want}, got {list(got)}; {hint}"
    return True, "applying the merges in the order they were learned reproduces the library's encoding"


@exercise("ch01.pair_counts")
def _pair_counts(fn) -> tuple[bool, str]:
    rng = random.Random(1)
    cases = [[1, 2, 1, 2, 1], [7], [3, 3, 3, 3]] + [[rng.randrange(4) for _ in range(30)] for _ in range(10)]
    for ids in cases:
        got = fn(list(ids))
        if got is None:
            return False, UNWRITTEN
        want: dict[tuple[int, int], int] = {}
        for pair in zip(ids, ids[1:], strict=False):
            want[pair] = want.get(pair, 0) + 1
        got = {tuple(k): v for k, v in dict(got).items() if v}
        if got != want:
            return False, f"for ids={ids[:10]}... expected {dict(list(want.items())[:4])}...; count zip(ids, ids[1:])"
    return True, "every adjacent pair counted, overlaps included (BPE then merges the most frequent)"


@exercise("ch01.one_hot_lookup")
def _one_hot_lookup(fn) -> tuple[bool, str]:
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(11, 5, generator=g, dtype=torch.float64)
    # the second case's largest id is below V - 1, so F.one_hot(ids) without num_classes is too narrow
    for ids in (torch.tensor([[3, 0, 10], [3, 3, 7]]), torch.tensor([[1, 4], [2, 0]])):
        try:
            got = fn(ids, weight)
        except LearnerRaised as raised:
            if "cannot be multiplied" in str(raised.exc):
                return False, (
                    f"for ids={ids.tolist()} F.one_hot(ids) has only max(ids) + 1 = {int(ids.max()) + 1} columns; "
                    "give it num_classes=weight.shape[0]"
                )
            raise
        if got is None:
            return False, UNWRITTEN
        got = torch.as_tensor(got)
        want = torch.nn.functional.embedding(ids, weight)  # (B, T, 5)
        if got.shape != want.shape:
            return False, f"expected shape {tuple(want.shape)} (batch, tokens, embedding dim), got {tuple(got.shape)}"
        if not torch.allclose(got.double(), want, atol=1e-12):
            return False, (
                "row i of one_hot(ids) @ weight should be weight[ids[i]]; use F.one_hot(ids, V).to(weight.dtype)"
            )
    return True, "one-hot times the matrix picks out rows: exactly what nn.Embedding's lookup does, without the matmul"


def _sinusoidal_reference(length: int, dim: int) -> torch.Tensor:
    table = torch.empty(length, dim, dtype=torch.float64)
    for pos in range(length):
        for i in range(0, dim, 2):
            angle = pos / 10000 ** (i / dim)
            table[pos, i], table[pos, i + 1] = math.sin(angle), math.cos(angle)
    return table


@exercise("ch01.offset_dot")
def _offset_dot(fn) -> tuple[bool, str]:
    for k, dim in ((0, 8), (1, 8), (5, 16), (37, 64)):
        got = fn(k, dim)
        if got is None:
            return False, UNWRITTEN
        table = _sinusoidal_reference(k + 3, dim)
        want = float(table[2] @ table[2 + k])
        if not math.isclose(float(got), want, rel_tol=1e-6, abs_tol=1e-9):
            hint = "sin(a) sin(b) + cos(a) cos(b) = cos(a - b): each pair of columns contributes cos(k * its frequency)"
            if k == 0:
                hint = "at k = 0 each (sin, cos) pair contributes sin^2 + cos^2 = 1, so the answer is d / 2"
            return False, f"pe_dot({k}, {dim}) should be {want:.6f}, got {float(got):.6f}; {hint}"
    return True, "PE[p] . PE[p+k] = sum over frequencies of cos(k w_i): it depends on the offset k only, never on p"


question(
    "ch01.q1",
    "Why can a byte-level BPE tokenizer encode any string, while BERT's WordPiece sometimes outputs [UNK]?",
    [
        (
            "BPE's vocabulary is larger",
            False,
            "size is not the reason: a 50,000-token WordPiece vocabulary still "
            "lacks many characters; a 300-token byte-level BPE has none missing",
        ),
        (
            "BPE starts from the 256 possible bytes, and every string is a sequence of UTF-8 bytes",
            True,
            "merges only "
            "shorten sequences; whatever was never merged stays as single bytes, which are always in the vocabulary",
        ),
        (
            "BPE was trained on more languages",
            False,
            "the Shakespeare-trained BPE of this chapter has never seen Chinese and still encodes it, as raw bytes",
        ),
    ],
)

question(
    "ch01.q2",
    "For a token id i, what does nn.Embedding(V, d) return?",
    [
        (
            "Row i of its (V, d) weight matrix: the same as one_hot(i) @ weight",
            True,
            "a lookup is a matrix product with a one-hot vector, computed without building the vector",
        ),
        (
            "A fixed random vector that never changes in training",
            False,
            "the table is a parameter: gradients reach the rows of the tokens that were used, so they are learned",
        ),
        (
            "The vector of the token's characters",
            False,
            "the table knows only ids; any relation between tokens is learned from data",
        ),
    ],
)

question(
    "ch01.q3",
    "A model whose tokenizer turns 'strawberry' into one token is asked how many r's it contains. Why is this hard?",
    [
        (
            "It has too few parameters to count to three",
            False,
            "counting to three is easy; the difficulty is what it is counting over",
        ),
        (
            "The letters are not in its input: it receives one id, and must have learned the spelling of that id from "
            "data",
            True,
            "nothing in the id says which letters it stands for; spelling is knowledge the model may or may "
            "not have picked up",
        ),
        ("Tokenizers remove repeated letters", False, "tokenization is lossless: decoding gives back the exact text"),
    ],
)
