"""Chapter 04's checkers accept right answers and answer the typical wrong ones with the matching hint."""

import torch
import torch.nn.functional as F

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
