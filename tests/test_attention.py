"""course_lib.attention against PyTorch's own kernels and float64 math written independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import (
    KVCache,
    MultiHeadAttention,
    apply_rotary,
    rotary_cos_sin,
    scaled_dot_product_attention,
)


def _qkv(B=2, H=3, Tq=5, Tk=5, d=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, d, generator=g, dtype=dtype) for T in (Tq, Tk, Tk)]


def _padding(B=2, T=5):
    """HF-style mask: row 0 has no padding, row 1 has its last two tokens padded."""
    m = torch.ones(B, T, dtype=torch.long)
    m[1, -2:] = 0
    return m


@pytest.mark.parametrize("case", ["plain", "causal", "causal_rect", "bool_padding", "float_mask", "causal_and_padding"])
def test_plain_attention_equals_torch_kernel_in_float64(case):
    q, k, v = _qkv(Tq=3 if case == "causal_rect" else 5)
    kwargs: dict = {}
    if case in ("causal", "causal_rect"):
        kwargs["is_causal"] = True
    elif case == "bool_padding":
        kwargs["mask"] = _padding().bool()[:, None, None, :]
    elif case == "float_mask":
        kwargs["mask"] = torch.randn(5, 5, dtype=torch.float64)
    elif case == "causal_and_padding":
        kwargs["mask"] = torch.ones(5, 5, dtype=torch.bool).tril() & _padding().bool()[:, None, None, :]
    out, w = scaled_dot_product_attention(q, k, v, **kwargs)
    ref = F.scaled_dot_product_attention(
        q, k, v, attn_mask=kwargs.get("mask"), is_causal=kwargs.get("is_causal", False)
    )
    diff = (out - ref).abs().max().item()
    print(f"plain attention vs F.scaled_dot_product_attention ({case}): max abs diff {diff:.1e}")
    assert diff < 1e-10
    assert w.shape == (2, 3, q.shape[-2], 5)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), rtol=0, atol=1e-12)
    if "causal" in case:
        assert (w.triu(diagonal=1) == 0).all(), "a causal weight leaked to a future key"
    if "padding" in case:
        assert (w[1, ..., -2:] == 0).all(), "a padded key got attention"


def test_fully_masked_query_gives_zeros_like_torch():
    q, k, v = _qkv()
    mask = torch.ones(5, 5, dtype=torch.bool)
    mask[2] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not out.isnan().any()
    assert (out[..., 2, :] == 0).all() and (w[..., 2, :] == 0).all()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


def test_plain_attention_gradcheck():
    q, k, v = (t.requires_grad_() for t in _qkv(B=1, H=2, Tq=4, Tk=4, d=3))
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    assert torch.autograd.gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=mask)[0], (q, k, v))


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_gradcheck(need_weights):
    torch.manual_seed(0)
    mha = MultiHeadAttention(n_embd=6, n_head=2).double()
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    mask = _padding(2, 4)
    assert torch.autograd.gradcheck(
        lambda t: mha(t, attention_mask=mask, is_causal=True, need_weights=need_weights)[0], (x,)
    )


def _copy_to_torch_mha(mha: MultiHeadAttention, n_embd: int, n_head: int) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(n_embd, n_head, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mha.c_attn.weight)  # both stack q, k, v along the output dimension
        ref.in_proj_bias.copy_(mha.c_attn.bias)
        ref.out_proj.weight.copy_(mha.c_proj.weight)
        ref.out_proj.bias.copy_(mha.c_proj.bias)
    return ref.eval()


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("masking", ["none", "causal", "padding", "causal+padding"])
def test_multihead_attention_equals_torch_multiheadattention(masking, need_weights):
    torch.manual_seed(1)
    n_embd, n_head, T = 12, 3, 5
    mha = MultiHeadAttention(n_embd, n_head).eval()
    ref = _copy_to_torch_mha(mha, n_embd, n_head)
    x = torch.randn(2, T, n_embd)
    causal, padding = "causal" in masking, "padding" in masking
    mask = _padding(2, T) if padding else None
    out, w = mha(x, attention_mask=mask, is_causal=causal, need_weights=need_weights)
    ref_out, ref_w = ref(
        x,
        x,
        x,
        key_padding_mask=(mask == 0) if padding else None,  # torch: True = ignore; HF: 0 = ignore
        attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None,
        need_weights=True,
        average_attn_weights=False,
    )
    diff = (out - ref_out).abs().max().item()
    print(f"MultiHeadAttention vs nn.MultiheadAttention ({masking}, need_weights={need_weights}): {diff:.1e}")
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    if need_weights:
        torch.testing.assert_close(w, ref_w, rtol=0, atol=1e-6)
    else:
        assert w is None


def _reference_attention_f64(x, mha: MultiHeadAttention, causal: bool, positions=None):
    """Head by head with explicit loops in float64: GQA by index arithmetic, RoPE by complex rotation."""
    W, b = mha.c_attn.weight.double(), mha.c_attn.bias.double()
    qkv = x.double() @ W.T + b
    hs, nh, nkv = mha.head_dim, mha.n_head, mha.n_kv_head
    q, k, v = qkv.split([nh * hs, nkv * hs, nkv * hs], dim=-1)
    T = x.shape[1]
    positions = torch.arange(T) if positions is None else positions
    if mha.rope_base is not None:
        half = hs // 2
        theta = torch.tensor([mha.rope_base ** (-2 * i / hs) for i in range(half)], dtype=torch.float64)
        rot = torch.polar(torch.ones(T, half, dtype=torch.float64), positions[:, None].double() * theta)  # (T, half)

        def rope(t, n):  # pair (i, i + half) is the complex number t_i + j t_{i+half}
            t = t.view(*t.shape[:2], n, hs)
            z = torch.complex(t[..., :half], t[..., half:]) * rot[None, :, None, :]
            return torch.cat((z.real, z.imag), dim=-1).view(*t.shape[:2], n * hs)

        q, k = rope(q, nh), rope(k, nkv)
    heads = []
    for h in range(nh):
        g = h // (nh // nkv)  # the key/value head this query head shares
        qh, kh, vh = (t[..., i * hs : (i + 1) * hs] for t, i in ((q, h), (k, g), (v, g)))
        s = qh @ kh.transpose(-2, -1) / math.sqrt(hs)
        if causal:
            s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(torch.softmax(s, -1) @ vh)
    return torch.cat(heads, -1) @ mha.c_proj.weight.double().T + mha.c_proj.bias.double()


@pytest.mark.parametrize("n_kv_head,rope", [(4, None), (2, None), (1, None), (4, 10000.0), (2, 500.0)])
def test_gqa_and_rope_against_float64_reference(n_kv_head, rope):
    torch.manual_seed(2)
    mha = MultiHeadAttention(16, 4, n_kv_head=n_kv_head, rope_base=rope).eval()
    assert mha.c_attn.weight.shape == ((4 + 2 * n_kv_head) * 4, 16)
    x = torch.randn(2, 7, 16)
    out, _ = mha(x, is_causal=True)
    ref = _reference_attention_f64(x, mha, causal=True)
    diff = (out.double() - ref).abs().max().item()
    print(f"attention (n_kv_head={n_kv_head}, rope={rope}) vs float64 loops: {diff:.1e}")
    assert diff < 1e-5


def test_rope_makes_scores_depend_on_relative_position_only():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)

    def score(i, j):
        cq, sq = rotary_cos_sin(torch.tensor([i]), 8, 100.0, torch.float64)
        ck, sk = rotary_cos_sin(torch.tensor([j]), 8, 100.0, torch.float64)
        return (apply_rotary(q, cq[0], sq[0]) @ apply_rotary(k, ck[0], sk[0])).item()

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-12)
    assert score(5, 2) != pytest.approx(score(5, 3), abs=1e-6)


@pytest.mark.parametrize("n_kv_head,rope", [(4, None), (2, 10000.0)])
def test_kv_cache_matches_full_causal_pass(n_kv_head, rope):
    torch.manual_seed(4)
    mha = MultiHeadAttention(16, 4, n_kv_head=n_kv_head, rope_base=rope).eval()
    x = torch.randn(2, 9, 16)
    full, _ = mha(x, is_causal=True)
    cache = KVCache()
    parts = [mha(x[:, :4], is_causal=True, cache=cache)[0]]  # prefill 4 tokens
    parts += [mha(x[:, 4:6], is_causal=True, cache=cache)[0]]  # a chunk of 2 after a prefix: shifted mask
    parts += [mha(x[:, t : t + 1], is_causal=True, cache=cache)[0] for t in range(6, 9)]  # one at a time
    assert len(cache) == 9 and cache.keys[0].shape == (2, n_kv_head, 9, 4)
    diff = (torch.cat(parts, 1) - full).abs().max().item()
    print(f"cached vs full attention (n_kv_head={n_kv_head}, rope={rope}): {diff:.1e}")
    assert diff < 1e-5


def test_kv_cache_with_padding_mask_matches_full_pass():
    torch.manual_seed(5)
    mha = MultiHeadAttention(8, 2).eval()
    x, mask = torch.randn(2, 5, 8), _padding(2, 5)
    mask[1] = torch.tensor([0, 1, 1, 1, 1])  # left padding, as batched prompts use
    full, _ = mha(x, attention_mask=mask, is_causal=True)
    cache = KVCache()
    a, _ = mha(x[:, :3], attention_mask=mask[:, :3], is_causal=True, cache=cache)
    b, _ = mha(x[:, 3:4], attention_mask=mask[:, :4], is_causal=True, cache=cache)
    c, _ = mha(x[:, 4:], attention_mask=mask, is_causal=True, cache=cache)
    torch.testing.assert_close(torch.cat((a, b, c), 1)[:, 1:], full[:, 1:], rtol=0, atol=1e-5)


@pytest.mark.parametrize("rope", [None, 10000.0])
def test_kv_cache_with_left_padding_and_a_chunk_after_the_prefix(rope):
    """Chunks of 1, 3 and 2 tokens: the padding of the cached prefix must stay masked for later multi-token chunks."""
    torch.manual_seed(6)
    mha = MultiHeadAttention(8, 2, rope_base=rope).eval()
    x = torch.randn(3, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]])  # left padding
    full, _ = mha(x, attention_mask=mask, is_causal=True)
    cache, parts = KVCache(), []
    for start, end in ((0, 1), (1, 4), (4, 6)):
        parts.append(mha(x[:, start:end], attention_mask=mask[:, :end], is_causal=True, cache=cache)[0])
    real = mask.bool()  # a padded query attends to nothing: its output is not compared
    torch.testing.assert_close(torch.cat(parts, 1)[real], full[real], rtol=0, atol=1e-5)


def test_clear_errors():
    with pytest.raises(ValueError, match="n_embd=10 is not divisible by n_head=3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="n_head=4 is not divisible by n_kv_head=3"):
        MultiHeadAttention(12, 4, n_kv_head=3)
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\) but the input needs \(2, 5\)"):
        mha(torch.randn(2, 5, 8), attention_mask=torch.ones(2, 4))
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="not both"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 5, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="same last size"):
        scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(TypeError, match="mask has dtype torch.int64; pass mask.bool"):  # would be added: no masking
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 5, dtype=torch.long).tril())
    for n_head, n_kv_head in ((0, None), (-2, None), (2, 0)):
        with pytest.raises(ValueError, match="must be a positive int"):
            MultiHeadAttention(8, n_head, n_kv_head)
    with pytest.raises(ValueError, match=r"x must be \(batch, time, 8\), got \(5, 8\)"):
        mha(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"x must be \(batch, time, 8\), got \(1, 5, 6\)"):
        mha(torch.randn(1, 5, 6))


def test_a_cache_refuses_keys_of_another_batch():
    mha, cache = MultiHeadAttention(8, 2).eval(), KVCache()
    mha(torch.randn(2, 3, 8), is_causal=True, cache=cache)
    with pytest.raises(ValueError, match=r"holds \(batch, heads\) = \(2, 2\) .* start a fresh KVCache\(\)"):
        mha(torch.randn(1, 1, 8), is_causal=True, cache=cache)


def test_attention_dropout_applies_when_the_weights_are_returned():
    torch.manual_seed(0)
    mha, x = MultiHeadAttention(8, 2, attn_dropout=0.5), torch.randn(2, 6, 8)
    eval_out = mha.eval()(x, is_causal=True, need_weights=True)[0]
    train_out = mha.train()(x, is_causal=True, need_weights=True)[0]
    assert not torch.allclose(train_out, eval_out)  # the explicit path must drop weights too


def test_rotary_angles_are_computed_in_float32_even_for_bf16():
    positions = torch.tensor([1000, 1002])  # bf16 steps by 4 between 512 and 1024: 1002 rounds to 1000
    assert torch.equal(positions.to(torch.bfloat16), torch.tensor([1000.0, 1000.0], dtype=torch.bfloat16))
    cos, sin = rotary_cos_sin(positions, 8, 10_000.0, torch.bfloat16)
    cos32, sin32 = rotary_cos_sin(positions, 8, 10_000.0, torch.float32)
    assert torch.equal(cos, cos32.to(torch.bfloat16)) and torch.equal(sin, sin32.to(torch.bfloat16))
    assert not torch.equal(cos[0], cos[1])  # angles from bf16 positions would make both rows position 1000


def test_rotary_needs_an_even_head_dim():
    with pytest.raises(ValueError, match="head_dim must be even, got 5"):
        MultiHeadAttention(10, 2, rope_base=10_000.0)


def test_plain_attention_refuses_a_float_keep_mask():
    q, k, v = _qkv()
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    with pytest.raises(TypeError, match=r"mask holds 0/1 floats, which would be added to the scores; pass mask.bool"):
        scaled_dot_product_attention(q, k, v, mask=keep.double())  # added to the scores, it would mask nothing
    with pytest.raises(TypeError, match="0/1 floats"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 5, dtype=torch.float64))
    out, w = scaled_dot_product_attention(q, k, v, mask=keep)
    additive = torch.zeros(5, 5, dtype=torch.float64).masked_fill(~keep, float("-inf"))
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask=additive), (out, w), rtol=0, atol=0)
    nothing = scaled_dot_product_attention(q, k, v, mask=torch.zeros(5, 5, dtype=torch.float64))  # all 0: no masking
    torch.testing.assert_close(nothing, scaled_dot_product_attention(q, k, v), rtol=0, atol=0)


@pytest.mark.parametrize("heads", [False, True])
def test_plain_attention_refuses_a_mask_that_does_not_broadcast_to_the_scores(heads):
    q, k, v = _qkv(B=2, Tq=3, Tk=5)
    if not heads:
        q, k, v = q[:, 0], k[:, 0], v[:, 0]  # (B, T, d)
    pad = _padding().bool()  # (B, Tk): Hugging Face's layout, without the query axis
    axis = r"mask\[:, None, None, :\]" if heads else r"mask\[:, None, :\]"
    shape = r"\(2, 3, 3, 5\)" if heads else r"\(2, 3, 5\)"
    with pytest.raises(
        ValueError, match=rf"mask has shape \(2, 5\), .* scores' shape {shape} .* needs a query axis: {axis}"
    ):
        scaled_dot_product_attention(q, k, v, mask=pad)
    with pytest.raises(ValueError, match="does not broadcast"):  # it would grow the output to (3, 2, ...)
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, *q.shape[:-1], 5, dtype=torch.bool))
    keep = pad[:, None, None, :] if heads else pad[:, None, :]
    out, w = scaled_dot_product_attention(q, k, v, mask=keep)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    assert (w[1, ..., -2:] == 0).all()


def test_plain_attention_refuses_inputs_that_are_not_float_tensors():
    q, k, v = _qkv()
    with pytest.raises(
        TypeError, match=r"q has dtype torch.int64; attention needs floating-point q, k, v: use q.float\(\)"
    ):
        scaled_dot_product_attention(q.long(), k, v)
    with pytest.raises(TypeError, match=r"v has dtype torch.int64"):
        scaled_dot_product_attention(q, k, v.long())
    with pytest.raises(
        TypeError, match=r"q, k, v have dtypes torch.float32, torch.float64, torch.float64; give all three"
    ):
        scaled_dot_product_attention(q.float(), k, v)
    with pytest.raises(TypeError, match=r"q must be a torch.Tensor, got list; use torch.tensor\(q\)"):
        scaled_dot_product_attention(q.tolist(), k, v)
    with pytest.raises(TypeError, match=r"mask must be a torch.Tensor, got list"):
        scaled_dot_product_attention(q, k, v, mask=[[True] * 5] * 5)
    with pytest.raises(ValueError, match="leading \\(batch, head\\) sizes must match"):
        scaled_dot_product_attention(q, k[:1, :2], v[:1, :2])
    torch.testing.assert_close(  # float32 in, as float64 rounded to float32
        scaled_dot_product_attention(q.float(), k.float(), v.float())[0],
        scaled_dot_product_attention(q, k, v)[0].float(),
    )


def test_multihead_attention_refuses_an_additive_or_list_padding_mask():
    torch.manual_seed(0)
    mha, x = MultiHeadAttention(16, 4).eval(), torch.randn(1, 4, 16)
    additive = torch.tensor([[0.0, 0.0, float("-inf"), float("-inf")]])
    for need_weights in (False, True):
        with pytest.raises(
            ValueError, match=r"attention_mask is 1 for tokens and 0 for padding .*\(mask == 0\).long\(\)"
        ):
            mha(x, attention_mask=additive, need_weights=need_weights)
    with pytest.raises(ValueError, match="1 for tokens and 0 for padding"):
        mha(x, attention_mask=torch.tensor([[1, 1, 2, 0]]))
    with pytest.raises(
        TypeError, match=r"attention_mask must be a torch.Tensor, got list; use torch.tensor\(attention_mask\)"
    ):
        mha(x, attention_mask=[[1, 1, 0, 0]])
    mask = (additive == 0).long()  # the fix the message suggests
    want, want_w = mha(x, attention_mask=mask, need_weights=True)
    assert (want_w[..., 2:] == 0).all()
    for same in (mask.bool(), mask.float()):  # bool and 1./0. floats mean the same as 1/0 integers
        torch.testing.assert_close(mha(x, attention_mask=same, need_weights=True), (want, want_w), rtol=0, atol=0)
    cache = KVCache()
    mha(x[:, :3], attention_mask=mask[:, :3], is_causal=True, cache=cache)
    with pytest.raises(
        ValueError, match=r"attention_mask has shape \(1, 1\) but the input needs \(1, 4\) \(3 cached \+ 1 new"
    ):
        mha(x[:, 3:], attention_mask=mask[:, 3:], is_causal=True, cache=cache)


@pytest.mark.parametrize("base", [0, -10_000.0, float("nan"), float("inf")])
def test_rope_base_must_be_positive_and_finite(base):
    with pytest.raises(ValueError, match="rope_base must be a finite number > 0"):
        MultiHeadAttention(8, 2, rope_base=base)
    with pytest.raises(ValueError, match="rope_base must be a finite number > 0, got '10000'"):
        MultiHeadAttention(8, 2, rope_base="10000")
    assert MultiHeadAttention(8, 2, rope_base=np.float32(10_000)).rope_base == 10_000.0  # a NumPy scalar is fine
