"""``Linear``'s split one-vector product against float64 math, and the models built from it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import course_lib.linear as linear_module
from course_lib.attention import KVCache
from course_lib.gpt import GPT, GPTConfig
from course_lib.linear import SPLIT_MIN_WEIGHTS, Linear, split_rows_linear


@pytest.fixture
def threads():
    """Run a test with a given number of torch threads, and put the old number back."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _float64_reference(layer: Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x.double(), layer.weight.double(), None if layer.bias is None else layer.bias.double())


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1), (1,), ()])  # (B, T), (B,), a bare vector: all one row
@pytest.mark.parametrize("n_threads", [2, 4])
def test_one_vector_product_is_split_and_matches_float64(threads, monkeypatch, bias, shape, n_threads):
    threads(n_threads)
    layer = Linear(512, 768, bias=bias)  # 393k weights: above the threshold
    assert layer.weight.numel() >= SPLIT_MIN_WEIGHTS
    with torch.no_grad():
        if bias:
            layer.bias.normal_()
    calls = []
    monkeypatch.setattr(linear_module, "split_rows_linear", lambda *a: calls.append(a[-1]) or split_rows_linear(*a))
    x = torch.randn(*shape, 512)
    y = layer(x)
    assert calls == [n_threads], "a one-row product on the CPU must take the split path, one block per thread"
    assert y.shape == (*shape, 768)
    torch.testing.assert_close(y.double(), _float64_reference(layer, x), rtol=0, atol=1e-5)


def test_split_blocks_are_whole_rows_when_threads_do_not_divide_the_outputs(threads):
    threads(4)
    layer = Linear(384, 1158)  # 1158 = 2 * 579: two blocks, not four
    x = torch.randn(1, 1, 384)
    assert split_rows_linear(x, layer.weight, layer.bias, 2).shape == (1, 1, 1158)
    torch.testing.assert_close(layer(x).double(), _float64_reference(layer, x), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "in_features, out_features, shape, n_threads",
    [
        (512, 768, (1, 2), 2),  # two rows: a real matrix product, already multi-threaded
        (64, 96, (1, 1), 2),  # small weights: the plain call is cheaper
        (512, 767, (1, 1), 2),  # an odd number of outputs cannot be cut into equal blocks
        (512, 768, (1, 1), 1),  # one thread: nothing to spread over
    ],
)
def test_plain_product_otherwise(threads, monkeypatch, in_features, out_features, shape, n_threads):
    threads(n_threads)
    layer = Linear(in_features, out_features)
    monkeypatch.setattr(linear_module, "split_rows_linear", lambda *a: pytest.fail("split path taken"))
    x = torch.randn(*shape, in_features)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_misshapen_or_mistyped_input_gets_the_plain_products_error(threads):
    threads(2)
    layer = Linear(512, 768)  # would split a (1, 512) input
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x256 and 512x768\)"):
        layer(torch.randn(2, 256))  # as many numbers as one row, in the wrong shape
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got Double and Float"):
        layer(torch.randn(1, 512, dtype=torch.float64))


def test_compiled_layer_traces_in_one_graph(threads):
    threads(2)
    layer = Linear(512, 768)
    x = torch.randn(1, 1, 512)
    compiled = torch.compile(layer, fullgraph=True)  # a graph break (the thread count) would raise here
    torch.testing.assert_close(compiled(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_split_product_gradients_match_float64(threads):
    threads(2)
    layer = Linear(512, 768)
    x = torch.randn(1, 1, 512, requires_grad=True)
    layer(x).square().sum().backward()
    x64 = x.detach().double().requires_grad_()
    w64, b64 = layer.weight.detach().double().requires_grad_(), layer.bias.detach().double().requires_grad_()
    F.linear(x64, w64, b64).square().sum().backward()
    for got, want in ((x.grad, x64.grad), (layer.weight.grad, w64.grad), (layer.bias.grad, b64.grad)):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


def test_split_product_follows_cpu_autocast(threads):
    threads(2)
    layer = Linear(512, 768)
    x = torch.randn(1, 1, 512)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16  # as F.linear gives under autocast
    torch.testing.assert_close(y.double(), _float64_reference(layer, x), rtol=2e-2, atol=2e-2)


def test_cached_decoding_through_split_layers_matches_the_uncached_forward(threads, monkeypatch):
    """A GPT wide enough for the split path: its cached one-token steps give the full forward's logits."""
    threads(2)
    calls = []
    monkeypatch.setattr(linear_module, "split_rows_linear", lambda *a: calls.append(a[-1]) or split_rows_linear(*a))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=256)).eval()
    assert model.transformer.h[0].mlp.c_fc.weight.numel() >= SPLIT_MIN_WEIGHTS  # 256 x 1024
    idx = torch.randint(0, 50, (1, 12))
    with torch.no_grad():
        full = model(idx)[0]
        cache = KVCache()
        steps = [model(idx[:, :1], cache=cache)[0]] + [model(idx[:, t : t + 1], cache=cache)[0] for t in range(1, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-4)
    assert len(calls) == 12 * 2 * 3  # per step and layer: c_attn, c_fc and the MLP's c_proj (256 x 256 stays plain)
