"""Three tokenizers with one interface: characters, byte-level BPE (GPT-2 style) and WordPiece (BERT).

Each has ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``, and ``save(path)`` /
``load(path)`` to a small JSON file. They are built in chapter 00 (characters) and chapter 03
(BPE, WordPiece), and each is tested against an independent reference: ``tiktoken`` for BPE and
Hugging Face's ``BertTokenizer`` for WordPiece.
"""

from __future__ import annotations

import json
from pathlib import Path


def _write_json(path: str | Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(payload, f, ensure_ascii=False, indent=1)
        f.write("\n")


def _read_json(path: str | Path, kind: str) -> dict:
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    if payload.get("type") != kind:
        raise ValueError(f"{path} holds a {payload.get('type')!r} tokenizer, not a {kind!r} one")
    return payload


def _check_ids(ids: list[int], vocab_size: int) -> None:
    for i, token in enumerate(ids):
        if not isinstance(token, int) or not 0 <= token < vocab_size:
            raise ValueError(f"id {token!r} at position {i} is not a token id: ids run from 0 to {vocab_size - 1}")


# ---------------------------------------------------------------------------------------------
# characters


class CharTokenizer:
    """One token per character: the vocabulary is the sorted set of characters of a text.

    The simplest tokenizer there is, and the one the first chapters use: with 63 symbols for the
    tiny Shakespeare text a model's output layer is tiny, at the price of long sequences.
    """

    def __init__(self, chars: list[str] | str):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is every distinct character of ``text``, sorted."""
        if not isinstance(text, str) or not text:
            raise ValueError("from_text needs a non-empty string to take the characters from")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - set(self.stoi))
            raise ValueError(
                f"characters {unknown!r} are not in this tokenizer's {self.vocab_size}-character vocabulary "
                f"(first at position {min(text.index(c) for c in unknown)}); build it from a text that contains them "
                "or remove them first"
            ) from None

    def decode(self, ids: list[int]) -> str:
        ids = list(ids)
        _check_ids(ids, self.vocab_size)
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> None:
        _write_json(path, {"type": "char", "chars": "".join(self.chars)})

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        return cls(_read_json(path, "char")["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
