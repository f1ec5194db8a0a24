"""Chapter 04's checkers accept right answers and answer the typical wrong ones with the matching hint."""

import torch
import torch.nn.functional as F
from test_exercises import assert_rejected

from course_lib.exercises import answer, check


def _layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps) * weight + bias


def test_layer_norm_right_and_typical_mistakes():
    assert check("ch04.layer_norm", _layer_norm).passed
    unbiased = check(
        "ch04.layer_norm",
        lambda x, w, b, eps: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * w + b,
    )
    assert not unbiased.passed and "C - 1" in unbiased.message
    no_affine = check("ch04.layer_norm", lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], eps=eps))
    assert not no_affine.passed and "multiply by weight" in no_affine.message
    empty = check("ch04.layer_norm", lambda x, w, b, eps: None)
    assert not empty.passed and "returned None" in empty.message


def test_mlp_params():
    assert check("ch04.mlp_params", 2_099_712).passed
    weights_only = check("ch04.mlp_params", 8 * 512 * 512)
    assert not weights_only.passed and "bias" in weights_only.message
    assert "not yet" in str(check("ch04.mlp_params", ...))


def test_post_ln_block_right_and_pre_ln_mistake():
    def post(x, block):
        h = block.ln_1(x + block.attn(x, is_causal=True)[0])
        return block.ln_2(h + block.mlp(h))

    def pre(x, block):
        x = x + block.attn(block.ln_1(x), is_causal=True)[0]
        return x + block.mlp(block.ln_2(x))

    def not_causal(x, block):
        h = block.ln_1(x + block.attn(x)[0])
        return block.ln_2(h + block.mlp(h))

    state = torch.get_rng_state()
    assert check("ch04.post_ln_block", post).passed
    assert torch.equal(state, torch.get_rng_state())  # the checker leaves the learner's random state alone
    wrong = check("ch04.post_ln_block", pre)
    assert not wrong.passed and "pre-LN" in wrong.message
    wrong = check("ch04.post_ln_block", not_causal)
    assert not wrong.passed and "causal" in wrong.message


def test_count_params_right_and_hints():
    def right(c):
        C = c.n_embd
        return c.vocab_size * C + c.block_size * C + c.n_layer * (12 * C * C + 13 * C) + 2 * C

    assert check("ch04.count_params", right).passed
    no_pos = check("ch04.count_params", lambda c: right(c) - c.block_size * c.n_embd)
    assert not no_pos.passed and "position embeddings" in no_pos.message
    untied = check("ch04.count_params", lambda c: right(c) + c.vocab_size * c.n_embd)
    assert not untied.passed and "tied" in untied.message
    off_by_one = check("ch04.count_params", lambda c: right(c) + 1)
    assert not off_by_one.passed and "you counted" in off_by_one.message


def test_questions_have_one_right_answer_each():
    for name, right in [("ch04.q1", "b"), ("ch04.q2", "b"), ("ch04.q3", "c")]:
        assert answer(name, right).startswith("right")
        for wrong in "abcd".replace(right, ""):
            assert answer(name, wrong).startswith("not quite")


def test_layer_norm_float32_result_gets_a_dtype_hint_not_a_crash():
    result = check("ch04.layer_norm", lambda x, w, b, eps: _layer_norm(x.float(), w.float(), b.float(), eps))
    assert not result.passed and "your result is float32; the inputs are float64" in result.message


def test_layer_norm_eps_mistakes():
    def centred(x):
        return x - x.mean(-1, keepdim=True)

    def std(x):
        return x.var(-1, keepdim=True, unbiased=False).sqrt()

    no_eps = check("ch04.layer_norm", lambda x, w, b, eps: centred(x) / std(x) * w + b)
    assert not no_eps.passed and "eps is missing" in no_eps.message
    outside = check("ch04.layer_norm", lambda x, w, b, eps: centred(x) / (std(x) + eps) * w + b)
    assert not outside.passed and "inside the square root" in outside.message
    fixed = check("ch04.layer_norm", lambda x, w, b, eps: _layer_norm(x, w, b))
    assert not fixed.passed and "use the eps argument" in fixed.message


def test_layer_norm_in_place_but_right_passes():
    def in_place(x, weight, bias, eps):
        x -= x.mean(-1, keepdim=True)
        x /= torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return x * weight + bias

    assert check("ch04.layer_norm", in_place).passed


def test_post_ln_block_must_be_built_from_the_parts():
    called = check("ch04.post_ln_block", lambda x, block: block(x, is_causal=True))
    assert not called.passed and "block.ln_1, block.attn" in called.message


def test_post_ln_block_leaves_the_random_state_alone_on_every_path():
    state = torch.get_rng_state()
    build = "compute h = ln_1(x + attn(x)) first"
    for answer_, hint in [
        (lambda x, block: x, build),
        (lambda x, block: x.double(), build),
        (lambda x, block: block(x), "build yours from its parts"),
    ]:
        assert_rejected(check("ch04.post_ln_block", answer_), hint)
    assert torch.equal(state, torch.get_rng_state())


def test_post_ln_block_compares_in_float64():
    def post64(x, block):
        h = block.ln_1(x + block.attn(x, is_causal=True)[0])
        return block.ln_2(h + block.mlp(h)).double()

    assert check("ch04.post_ln_block", post64).passed
