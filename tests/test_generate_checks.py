"""generate's guards: it samples without dropout whatever mode the model is in, and refuses a diverged model."""

import pytest
import torch

from course_lib.generate import generate, sample_next
from course_lib.gpt import GPT, GPTConfig


def tiny_gpt(dropout: float = 0.0) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=dropout))


def test_generate_samples_without_dropout_and_restores_the_mode():
    model = tiny_gpt(dropout=0.5).train()  # as train() returns it
    model.transformer.h[0].mlp.eval()  # a part in eval mode must stay so
    modes = []  # dropout's mode at each forward pass during generation
    model.drop.register_forward_hook(lambda module, _inp, _out: modes.append(module.training))
    for use_cache in (True, False):
        model.generate(torch.tensor([[1, 2, 3]]), 12, use_cache=use_cache)
    assert len(modes) == 24 and not any(modes), "dropout was on while sampling"
    assert model.training and model.drop.training and not model.transformer.h[0].mlp.training


def test_generate_refuses_a_model_with_non_finite_weights():
    model = tiny_gpt().train()
    with torch.no_grad():
        model.lm_head.weight[3, 0] = float("nan")  # tied: wte too, as after a diverged training run
    idx = torch.tensor([[1, 2]])
    for temperature in (0, 1.0):  # greedy would otherwise return argmax-of-NaN tokens silently
        with pytest.raises(FloatingPointError, match=r"logits are not finite \(nan/inf\): its weights diverged"):
            generate(model, idx, 5, temperature=temperature)
    assert model.training, "the mode is restored when generation fails too"


def test_generate_with_no_new_tokens_returns_the_prompt():
    idx = torch.tensor([[1, 2]])
    assert torch.equal(tiny_gpt().generate(idx, 0), idx)


def peaked_gpt() -> GPT:
    """A tiny GPT whose next-token distributions are far from uniform (top token ~0.4), so that a changed
    temperature, top_k or top_p changes which tokens a seeded draw picks."""
    model = tiny_gpt().eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(8)  # tied with wte: the embeddings grow too, which is fine here
    return model


def test_top_k_1_is_greedy_whatever_the_temperature():
    model, idx = peaked_gpt(), torch.tensor([[1, 2, 3], [4, 5, 6]])
    greedy = model.generate(idx, 10, temperature=0)
    for use_cache in (True, False):
        g = torch.Generator().manual_seed(0)
        out = model.generate(idx, 10, temperature=1.0, top_k=1, use_cache=use_cache, generator=g)
        assert torch.equal(out, greedy), "top_k=1 keeps only the most likely token"


@pytest.mark.parametrize(
    "settings",
    [dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.6), dict(temperature=0.9, top_k=8, top_p=0.8)],
)
def test_generate_samples_as_a_hand_loop_of_sample_next(settings):
    """A seeded loop over the model's own logits draws the same tokens: generate uses every setting it is given."""
    model, idx = peaked_gpt(), torch.tensor([[1, 2, 3], [4, 5, 6]])
    g = torch.Generator().manual_seed(11)
    expected = idx
    with torch.no_grad():
        for _ in range(12):
            logits = model(expected[:, -model.block_size :])[0][:, -1, :]
            expected = torch.cat((expected, sample_next(logits, **settings, generator=g)), dim=1)
    for use_cache in (True, False):
        out = model.generate(idx, 12, use_cache=use_cache, generator=torch.Generator().manual_seed(11), **settings)
        assert torch.equal(out, expected), f"use_cache={use_cache}"
