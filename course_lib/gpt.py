"""GPT: a decoder-only transformer in GPT-2's layout (chapters 04 to 06).

Token and learned position embeddings go in, the shared pre-LN core (``course_lib.transformer``) runs
with a causal mask, and a linear head that reuses the token embedding matrix turns each position's
vector into logits over the next token. ``GPT.from_hf`` loads any Hugging Face GPT-2 checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from course_lib.checks import check_positive_ints, check_probability
from course_lib.linear import Linear
from course_lib.transformer import BlockConfig, DecoderLM, Transformer

HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


@dataclass
class GPTConfig:
    """GPT's hyper-parameters; the defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257
    block_size: int = 1024  # context length: the number of learned positions
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # False: no biases in linear layers and LayerNorms (a bit faster, as good)
    n_inner: int | None = None  # MLP width; None: 4 * n_embd
    activation: str = "gelu_tanh"  # GPT-2 was trained with the tanh approximation; "gelu" is the exact one
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        check_positive_ints(self, ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        check_positive_ints(self, ("n_inner",), optional=True)
        check_probability(self, "dropout")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"GPTConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ValueError(f"GPTConfig.activation must be 'gelu' or 'gelu_tanh', got {self.activation!r}")
        self.block_config()  # checks that n_embd divides into n_head heads

    def block_config(self) -> BlockConfig:
        return BlockConfig(
            n_embd=self.n_embd,
            n_head=self.n_head,
            d_ff=self.n_inner,
            norm="layernorm",
            norm_eps=self.layer_norm_eps,
            prenorm=True,
            mlp=self.activation,
            bias=self.bias,
            dropout=self.dropout,
        )


class GPT(DecoderLM):
    """GPT-2: embeddings, ``n_layer`` pre-LN blocks with causal attention, a final LayerNorm and a tied head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embeddings
        self.drop = nn.Dropout(config.dropout)
        self.transformer = Transformer(config.block_config(), config.n_layer)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the matrix that maps a token to a vector also scores vectors against tokens,
        # which saves vocab_size * n_embd parameters and trains better on small data.
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: each block adds two outputs to the residual stream,
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))  # so keep its variance flat

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed(self, idx: Tensor, offset: int) -> Tensor:
        pos = torch.arange(offset, offset + idx.shape[1], device=idx.device)  # (T,)
        return self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embeddings, which cost no FLOPs.

        The token embedding stays in: tied to the output head, its matrix is multiplied at every position.
        """
        n = sum(p.numel() for p in self.parameters())  # parameters() yields the tied matrix once
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None, training: bool = False) -> int:
        """Matrix-multiply FLOPs to process one token in a sequence of ``seq_len`` (default block_size).

        Each weight matrix costs 2 FLOPs (multiply, add) per entry per token, and attention's two
        products (q k^T and weights @ v) cost 2 * 2 * seq_len * n_embd per layer. Norms, softmax and
        GELU are a few percent and left out. Training (forward + backward) costs about 3 times as much.
        """
        c = self.config
        T = c.block_size if seq_len is None else seq_len
        d_ff = c.n_inner or 4 * c.n_embd
        per_layer = 4 * c.n_embd * c.n_embd + 2 * c.n_embd * d_ff  # c_attn (3 C^2) + c_proj (C^2) + MLP
        forward = 2 * (c.n_layer * per_layer + c.n_embd * c.vocab_size) + 4 * c.n_layer * T * c.n_embd
        return 3 * forward if training else forward

    @classmethod
    def from_hf(cls, model: nn.Module) -> GPT:
        """Build a ``GPT`` with the weights and shape of a Hugging Face ``GPT2LMHeadModel``.

        GPT-2's checkpoints store linear layers as ``Conv1D`` with the weight transposed (in, out);
        everything else copies key by key (``transformer.wte`` becomes ``wte``).
        """
        if type(model).__name__ != "GPT2LMHeadModel":
            raise TypeError(
                f"GPT.from_hf needs a transformers GPT2LMHeadModel, got {type(model).__name__}; "
                f"load one with GPT2LMHeadModel.from_pretrained(...)"
            )
        hf = model.config
        unsupported = {
            "activation_function": hf.activation_function not in HF_ACTIVATIONS,
            "scale_attn_weights": not hf.scale_attn_weights,
            "scale_attn_by_inverse_layer_idx": hf.scale_attn_by_inverse_layer_idx,
            "add_cross_attention": hf.add_cross_attention,
            "tie_word_embeddings": not getattr(hf, "tie_word_embeddings", True),
        }
        bad = [f"{k}={getattr(hf, k, None)!r}" for k, is_bad in unsupported.items() if is_bad]
        if bad:
            raise ValueError(f"this GPT2 config has settings GPT does not implement: {', '.join(bad)}")
        config = GPTConfig(
            vocab_size=hf.vocab_size,
            block_size=hf.n_positions,
            n_layer=hf.n_layer,
            n_head=hf.n_head,
            n_embd=hf.n_embd,
            dropout=hf.resid_pdrop,
            n_inner=hf.n_inner,
            activation=HF_ACTIVATIONS[hf.activation_function],
            layer_norm_eps=hf.layer_norm_epsilon,
        )
        gpt = cls(config)
        conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        state = {}
        for key, value in model.state_dict().items():
            if key.endswith((".attn.bias", ".attn.masked_bias")):  # causal-mask buffers of older versions
                continue
            key = key.removeprefix("transformer.") if key.startswith(("transformer.wte", "transformer.wpe")) else key
            state[key] = value.t() if key.endswith(conv1d) else value
        gpt.load_state_dict(state, strict=True)
        return gpt.to(next(model.parameters()))  # same device and dtype as the source
