"""Checkers and concept questions for chapter 04, the transformer block.

LayerNorm answers are compared with PyTorch's own ``F.layer_norm``; parameter counts with a ``GPT`` built
on the meta device (shapes without storage, so even GPT-2 XL costs nothing); the post-LN block with
``course_lib``'s ``Block``, which its own tests check against Hugging Face's models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from course_lib.exercises import LearnerRaised, changed_in_place, dtype_mismatch, exercise, missed, nonfinite, question
from course_lib.gpt import GPT, GPTConfig
from course_lib.transformer import Block, BlockConfig


def _tensor_verdict(got: Any, expected: torch.Tensor, what: str) -> tuple[bool, str] | None:
    """A verdict if ``got`` is missing or misshapen; None if it is a tensor of the right shape."""
    if got is None:
        return False, "your function returned None: replace the `...` in its body with your code"
    if not isinstance(got, torch.Tensor):
        return False, f"{what} should return a torch.Tensor, got {type(got).__name__}"
    if got.shape != expected.shape:
        return False, f"{what} returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    return None


def _layer_norm_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(x, weight, bias, eps) in float64: three shapes with a wide spread, then a large eps on a narrow spread."""
    g = torch.Generator().manual_seed(4)
    cases = []
    for shape, scale, eps in [((4,), 3.0, 1e-5), ((3, 8), 3.0, 1e-5), ((2, 5, 16), 3.0, 1e-5), ((3, 6), 0.5, 0.1)]:
        C = shape[-1]
        x = torch.randn(shape, generator=g, dtype=torch.float64) * scale + 2
        weight = torch.randn(C, generator=g, dtype=torch.float64)
        bias = torch.randn(C, generator=g, dtype=torch.float64)
        cases.append((x, weight, bias, eps))
    cases[-1][0][-1] = 2.0  # a constant row: variance 0, so only eps keeps the division finite
    return cases


@exercise("ch04.layer_norm")
def _layer_norm(fn: Callable[..., torch.Tensor]) -> tuple[bool, str]:
    """``fn(x, weight, bias, eps)`` normalises the last dimension like ``F.layer_norm``."""
    for x, weight, bias, eps in _layer_norm_cases():
        shape, C = tuple(x.shape), x.shape[-1]
        expected = F.layer_norm(x, (C,), weight, bias, eps=eps)
        given = x.clone(), weight.clone(), bias.clone()  # copies: an in-place answer cannot spoil the references
        got = fn(*given, eps)
        verdict = _tensor_verdict(got, expected, f"my_layer_norm on shape {shape}")
        if verdict:
            return verdict
        hint = dtype_mismatch(got, expected)
        if hint:
            return False, hint
        if torch.allclose(got, expected, atol=1e-6):
            continue
        where = f"on shape {shape} with eps={eps}"
        centred = x - x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        mistakes = [
            (
                centred / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias,
                "you divided by C - 1 (torch.var's default); LayerNorm divides by C: unbiased=False",
            ),
            (F.layer_norm(x, (C,), eps=eps), "the normalisation is right; now multiply by weight and add bias"),
            (
                centred / torch.sqrt(var) * weight + bias,
                f"{where}: eps is missing; divide by sqrt(var + eps), which also keeps a constant row finite",
            ),
            (
                centred / (torch.sqrt(var) + eps) * weight + bias,
                f"{where}: eps goes inside the square root, sqrt(var + eps), not after it",
            ),
            (F.layer_norm(x, (C,), weight, bias, eps=1e-5), f"{where}: use the eps argument, not a fixed 1e-5"),
        ]
        for candidate, why in mistakes:
            if torch.allclose(got, candidate, atol=1e-6, equal_nan=True):
                return False, why
        return missed(
            where, got, expected, changed_in_place(x=(given[0], x), weight=(given[1], weight), bias=(given[2], bias))
        )
    return True, "matches F.layer_norm on every shape, in float64"


@exercise("ch04.mlp_params")
def _mlp_params(n: Any) -> tuple[bool, str]:
    """Parameters of one GPT MLP with n_embd = 512: c_fc (512 -> 2048) and c_proj (2048 -> 512), with biases."""
    C = 512
    n = int(n)
    right = 4 * C * C + 4 * C + 4 * C * C + C
    hints = {
        8 * C * C: "those are the weights; each layer has a bias too (2048 for c_fc, 512 for c_proj)",
        2 * C * C + 2 * C: "the hidden layer is 4 times wider than the model: c_fc maps 512 to 2048",
        8 * C * C + 8 * C: "c_proj's bias has one entry per output, and its output has 512 entries, not 2048",
    }
    if n == right:
        return True, f"{right:,} = 2 x 4 x 512^2 weights + 2048 + 512 biases"
    return False, hints.get(n, "count the weight matrix and bias of c_fc (512 -> 2048) and of c_proj (2048 -> 512)")


class _CalledTheBlock(Exception):
    pass


class _PartsOnlyBlock(Block):
    """The learner's copy of the block: the same modules, but calling the block itself is refused."""

    def forward(self, *args, **kwargs):
        raise _CalledTheBlock("build the block from block.ln_1, block.attn, block.mlp and block.ln_2")


@exercise("ch04.post_ln_block")
def _post_ln_block(fn: Callable[[torch.Tensor, Block], torch.Tensor]) -> tuple[bool, str]:
    """``fn(x, block)`` computes the post-LN block ``ln_2(h + mlp(h))`` with ``h = ln_1(x + attn(x))``."""
    with torch.random.fork_rng(), torch.no_grad():  # the checker's own weights; the learner's random state is kept
        torch.manual_seed(4)
        block = Block(BlockConfig(n_embd=16, n_head=4, prenorm=False))
        for ln in (block.ln_1, block.ln_2):  # random scales and shifts, so a swapped norm is caught
            ln.weight.normal_(1.0, 0.3)
            ln.bias.normal_(0.0, 0.3)
        x = torch.randn(2, 6, 16)
        pre = Block(BlockConfig(n_embd=16, n_head=4, prenorm=True))
        parts_only = _PartsOnlyBlock(BlockConfig(n_embd=16, n_head=4, prenorm=False))
    pre.load_state_dict(block.state_dict())
    parts_only.load_state_dict(block.state_dict())
    with torch.no_grad():
        expected = block(x, is_causal=True)
        try:
            got = fn(x.clone(), parts_only)
        except LearnerRaised as raised:
            if isinstance(raised.exc, _CalledTheBlock):
                return False, (
                    "calling block(x) runs the library's block; build yours from its parts: "
                    "block.ln_1, block.attn (with is_causal=True), block.mlp and block.ln_2"
                )
            raise
    verdict = _tensor_verdict(got, expected, "my_post_ln_block")
    if verdict:
        return verdict
    got = got.double()  # compare in float64, whatever dtype the learner returned
    if torch.allclose(got, expected.double(), atol=1e-5):
        return True, "each LayerNorm sits on the residual stream, after the addition"
    with torch.no_grad():
        if torch.allclose(got, pre(x, is_causal=True).double(), atol=1e-5):
            return False, "that is the pre-LN block; in post-LN the norm comes after the addition: ln_1(x + attn(x))"
        bidirectional = block(x, is_causal=False).double()
    if torch.allclose(got, bidirectional, atol=1e-5):
        return False, "the attention must be causal: call block.attn(x, is_causal=True)"
    bad = nonfinite(got)
    if bad:
        return False, f"your output contains {bad}; compute h = ln_1(x + attn(x)) first, then return ln_2(h + mlp(h))"
    return False, "compute h = ln_1(x + attn(x)) first, then return ln_2(h + mlp(h))"


_COUNT_CONFIGS = [
    GPTConfig(),  # GPT-2 small
    GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384),
    GPTConfig(vocab_size=1000, block_size=64, n_layer=3, n_head=2, n_embd=48),
    GPTConfig(n_layer=48, n_head=25, n_embd=1600),  # GPT-2 XL
]


@exercise("ch04.count_params")
def _count_params(fn: Callable[[GPTConfig], int]) -> tuple[bool, str]:
    """``fn(config)`` returns every parameter of ``GPT(config)`` (positions included, head tied)."""
    for cfg in _COUNT_CONFIGS:
        with torch.device("meta"):  # shapes only: no memory, no time
            right = GPT(cfg).num_params(non_embedding=False)
        got = fn(cfg)
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        got = int(got)
        if got == right:
            continue
        C, diff = cfg.n_embd, right - got
        hints = {
            cfg.block_size * C: "you left out the position embeddings (block_size x n_embd)",
            -cfg.vocab_size * C: "the output layer is tied to the token embedding: count that matrix once",
            2 * C: "you left out the final LayerNorm ln_f (2 x n_embd)",
            cfg.n_layer * 4 * C: "each block has two LayerNorms, each with a weight and a bias of n_embd numbers",
            cfg.n_layer * 13 * C + 2 * C: "you counted the weight matrices only; add the biases and LayerNorms",
        }
        where = (
            f"GPTConfig(vocab_size={cfg.vocab_size}, block_size={cfg.block_size}, n_layer={cfg.n_layer}, n_embd={C})"
        )
        return False, hints.get(diff, f"for {where} the model has {right:,} parameters, you counted {got:,}")
    return True, "right for GPT-2 small, GPT-2 XL and two small configs: V*C + T*C + L*(12C^2 + 13C) + 2C"


question(
    "ch04.q1",
    "LayerNorm computes a mean and a variance. Over which numbers?",
    [
        (
            "Over the batch, separately for each channel",
            False,
            "that is BatchNorm; LayerNorm never looks at other examples, so it works the same for a batch of one",
        ),
        (
            "Over the channels of each token, separately for every token",
            True,
            "each token's C numbers are normalised on their own, so no information crosses between tokens or examples",
        ),
        (
            "Over all the positions of a sequence",
            False,
            "that would mix tokens, and in a causal model it would let future tokens leak into the present",
        ),
        (
            "Over the whole (B, T, C) tensor at once",
            False,
            "then one outlier token would rescale every other token; LayerNorm is per token",
        ),
    ],
)

question(
    "ch04.q2",
    "Why do deep GPTs use pre-LN, x + f(LN(x)), instead of the original post-LN, LN(x + f(x))?",
    [
        (
            "Pre-LN has fewer parameters",
            False,
            "it has the same blocks, plus one extra final LayerNorm: 2C more parameters, not fewer",
        ),
        (
            "The residual path stays a pure identity, so gradients reach every layer directly and stay moderate at initialisation, and training needs little or no warm-up",
            True,
            "post-LN puts a LayerNorm on the residual path itself; its top-layer gradients at initialisation do not shrink with depth, which makes early large steps unstable without warm-up",
        ),
        (
            "LayerNorm is cheaper to compute before attention than after it",
            False,
            "the cost is the same: one LayerNorm per sub-block either way",
        ),
        (
            "Post-LN cannot be combined with a causal mask",
            False,
            "masking is inside attention and works with either placement; BERT uses post-LN without a causal mask, the original Transformer's decoder used it with one",
        ),
    ],
)

question(
    "ch04.q3",
    "Where do most of GPT-2 small's 124,439,808 parameters sit?",
    [
        (
            "In the token embedding table",
            False,
            "it is big, 38.6M (31%), because the vocabulary has 50,257 tokens, but it is not the largest part",
        ),
        ("In the attention layers", False, "attention has 4C^2 + 4C per block: 28.3M (23%) over 12 blocks"),
        ("In the MLPs", True, "8C^2 + 5C per block: 56.7M (46%); in bigger models the MLPs' share grows further"),
        ("In the LayerNorms", False, "LayerNorms have 2C numbers each: 38,400 in total, 0.03%"),
    ],
)
