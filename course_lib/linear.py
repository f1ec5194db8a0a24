"""``Linear``: the ``nn.Linear`` every model of the course uses, with one change for decoding on a CPU.

Decoding with a KV cache feeds one token at a time, so each projection multiplies its weight by a single vector
and reads every weight once to do a few flops with it. PyTorch's CPU kernel for that product (MKL's) runs on
one thread, so a model whose weights do not fit in the cache waits on one core's memory bandwidth while the
other cores idle. Cutting the weight's rows into one block per thread makes the same product a batched one,
``torch.bmm``, which PyTorch spreads over its threads: on the course's 2-core machine the 10m benchmark model's
42 MB of weights took 3.8-4.7 ms per token with ``F.linear`` and 1.9-2.6 ms split in two. Each output is still one dot
product of a weight row with the input, so only the rounding of the sum can differ. Small weights keep the plain
call, whose fixed cost is lower; so do GPUs, whose kernels already use the whole device.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# below about a megabyte of fp32 weights the batched call's fixed cost (5-10 us) is more than the time it saves
SPLIT_MIN_WEIGHTS = 1 << 17


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) that splits a one-vector product over the CPU threads."""

    def forward(self, x: Tensor) -> Tensor:
        if self.weight.numel() >= SPLIT_MIN_WEIGHTS and self._one_row_on_cpu(x):  # size first: it rules out most layers
            blocks = math.gcd(self.out_features, torch.get_num_threads())  # equal blocks, at most one per thread
            if blocks > 1:
                return split_rows_linear(x, self.weight, self.bias, blocks)
        return F.linear(x, self.weight, self.bias)  # also says what is wrong with a misshapen x

    def _one_row_on_cpu(self, x: Tensor) -> bool:
        # torch.compile fuses the product its own way (and the thread count is not a tensor it can trace)
        one_row = x.numel() == self.in_features and x.shape[-1] == self.in_features and x.dtype == self.weight.dtype
        return one_row and x.device.type == "cpu" and not torch.compiler.is_compiling()


def split_rows_linear(x: Tensor, weight: Tensor, bias: Tensor | None, blocks: int) -> Tensor:
    """``F.linear(x, weight, bias)`` for a single input vector ``x`` (..., in), as ``blocks`` products of
    ``out / blocks`` weight rows each, run as one batched product. No weight is copied: the blocks are views."""
    out, inp = weight.shape
    x3 = x.reshape(1, 1, inp).expand(blocks, 1, inp)  # every block multiplies the same vector
    w3 = weight.view(blocks, out // blocks, inp).transpose(1, 2)  # (blocks, in, out/blocks)
    y = torch.bmm(x3, w3) if bias is None else torch.baddbmm(bias.view(blocks, 1, out // blocks), x3, w3)
    return y.view(*x.shape[:-1], out)
