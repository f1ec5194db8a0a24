"""The three tokenizers, each against an independent reference or an exhaustive property."""

import pytest

from course_lib.data import load_shakespeare
from course_lib.tokenizers import CharTokenizer


@pytest.fixture(scope="module")
def shakespeare():
    return load_shakespeare("tiny")


def test_char_tokenizer_round_trips_shakespeare(shakespeare):
    tok = CharTokenizer.from_text(shakespeare.train)
    assert tok.vocab_size == 63 and tok.chars == sorted(set(shakespeare.train))
    ids = tok.encode(shakespeare.val)
    assert len(ids) == len(shakespeare.val) and tok.decode(ids) == shakespeare.val
    assert tok.encode("ab") == [tok.chars.index("a"), tok.chars.index("b")]


def test_char_tokenizer_errors():
    tok = CharTokenizer.from_text("hello")
    with pytest.raises(ValueError, match=r"\['z'\] are not in .* 4-character vocabulary \(first at position 2\)"):
        tok.encode("hez")
    with pytest.raises(ValueError, match="id 4 at position 1"):
        tok.decode([0, 4])
    with pytest.raises(ValueError, match="non-empty string"):
        CharTokenizer.from_text("")


def test_char_tokenizer_save_load(tmp_path):
    tok = CharTokenizer.from_text("to be or not to be\n")
    tok.save(tmp_path / "char.json")
    again = CharTokenizer.load(tmp_path / "char.json")
    assert again.chars == tok.chars and again.encode("be not") == tok.encode("be not")
