"""Sequence classification with a GPT: the last real token's vector and a new linear head (chapter 06).

A GPT's attention is causal, so only the last token of a sentence has seen every word of it; its final
hidden state (after the last LayerNorm, where the language-model head would read it) is the sentence's
summary. A new ``nn.Linear`` maps it to one score per class. Batches are padded on the right, and with
causal attention a real token never sees the padding after it, so no attention mask is needed: we only
have to pick, in each row, the position of the last real token. This is what Hugging Face's
``GPT2ForSequenceClassification`` does too (without a bias in its head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.gpt import GPT
from course_lib.transformer import check_token_ids


def last_token_index(attention_mask: Tensor) -> Tensor:
    """(B, T) mask of 1s then 0s -> (B,) position of each row's last real token."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, time), got shape {tuple(attention_mask.shape)}")
    lengths = attention_mask.long().sum(dim=1)  # (B,)
    if (lengths == 0).any():
        raise ValueError("a row of attention_mask is all padding; every sequence needs at least one real token")
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)  # (T,)
    if not torch.equal(attention_mask.long(), (positions < lengths[:, None]).long()):
        raise ValueError(
            "attention_mask must be 1s followed by 0s in every row (padding on the right); a causal GPT reads "
            "left to right, so left padding would put pad tokens before the words"
        )
    return lengths - 1


class GPTForSequenceClassification(nn.Module):
    """``gpt`` (pretrained or not) plus ``head``: a linear map from the last real token's vector to classes."""

    def __init__(self, gpt: GPT, num_labels: int = 2) -> None:
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an int >= 2, got {num_labels!r}")
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.n_embd, num_labels)
        nn.init.normal_(self.head.weight, std=0.02)  # small scores at first: the loss starts near ln(num_labels)
        nn.init.zeros_(self.head.bias)

    def features(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(B, T) ids -> (B, C): the final hidden state of each row's last real token."""
        gpt = self.gpt
        check_token_ids(input_ids, gpt.config.vocab_size, gpt.config.block_size, name="input_ids")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids {tuple(input_ids.shape)}; "
                "they must match"
            )
        last = last_token_index(attention_mask)  # (B,)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = gpt.drop(gpt.wte(input_ids) + gpt.wpe(pos))  # (B, T, C)
        x = gpt.transformer(x, is_causal=True)  # (B, T, C), after the final LayerNorm
        return x[torch.arange(len(x), device=x.device), last]  # (B, C)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Class scores (B, num_labels) and, with ``labels`` (B,), the mean cross-entropy."""
        logits = self.head(self.features(input_ids, attention_mask))  # (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return logits, loss
