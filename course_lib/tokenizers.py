"""Three tokenizers with one interface: characters, byte-level BPE (GPT-2 style) and WordPiece (BERT).

Each has ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``, and ``save(path)`` /
``load(path)`` to a small JSON file. They are built in chapter 00 (characters) and chapter 01
(BPE, WordPiece), and each is tested against an independent reference: ``tiktoken`` for BPE and
Hugging Face's ``BertTokenizer`` for WordPiece.
"""

from __future__ import annotations

import functools
import heapq
import json
import numbers
import operator
import reprlib
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from itertools import pairwise
from pathlib import Path

import regex


def _write_json(path: str | Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(payload, f, ensure_ascii=False, indent=1)
        f.write("\n")


def _read_json(path: str | Path, kind: str, keys: tuple[str, ...]) -> dict:
    """The payload of a file ``.save()`` wrote for a ``kind`` tokenizer, with every one of ``keys``."""
    with open(path, encoding="utf-8") as f:
        try:
            payload = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a saved tokenizer: it is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path} holds a JSON {type(payload).__name__}, not a tokenizer; use a file .save() wrote")
    if payload.get("type") != kind:
        raise ValueError(f"{path} holds a {payload.get('type')!r} tokenizer, not a {kind!r} one")
    missing = [key for key in keys if key not in payload]
    if missing:
        raise ValueError(f"{path} is not a complete saved {kind!r} tokenizer: it lacks {missing}; save it again")
    return payload


def _check_text(text: object, caller: str) -> None:
    """Text must be a str: iterating None or a list of strings would fail, or encode something else, later."""
    if not isinstance(text, str):
        raise TypeError(f"{caller} takes a str, not {type(text).__name__}")


def _as_ids(ids: Iterable[int], vocab_size: int, caller: str = "decode") -> list[int]:
    """``ids`` as a list of ints in range: a list, or a 1-D tensor or array of integers.

    A single id is refused rather than read as a one-token text: ``decode(ids[0, 0])`` where
    ``ids[0]`` was meant would otherwise quietly return one token instead of the row.
    """
    if isinstance(ids, numbers.Number) or getattr(ids, "ndim", 1) == 0:
        raise TypeError(f"{caller} takes a sequence of ids, got the single id {ids!r}; for one id pass [i]")
    if getattr(ids, "ndim", 1) > 1:  # e.g. generate's (1, T) output
        raise ValueError(f"{caller} takes one sequence (1-D), got shape {tuple(ids.shape)}; {caller} one row: ids[0]")
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{caller} takes token ids, not a {type(ids).__name__}; encode turns text into ids")
    if hasattr(ids, "tolist"):
        ids = ids.tolist()  # torch tensors and NumPy arrays
    try:
        ids = list(ids)
    except TypeError:
        raise TypeError(f"{caller} takes a list of token ids, not {type(ids).__name__}") from None
    for i, token in enumerate(ids):
        if type(token) is not int:
            ids[i] = token = _as_id(token, i, caller)
        if not 0 <= token < vocab_size:
            raise ValueError(f"id {token!r} at position {i} is not a token id: ids run from 0 to {vocab_size - 1}")
    return ids


def _as_id(token: object, position: int, caller: str) -> int:
    """One entry of ``ids`` as an int: NumPy integers and 0-d integer tensors count, bools and floats do not."""
    if isinstance(token, (list, tuple)) or getattr(token, "ndim", 0) > 0:
        raise ValueError(
            f"{caller} takes one sequence of ids, but position {position} holds the sequence {reprlib.repr(token)}; "
            f"{caller} one row at a time: ids[0]"
        )
    if hasattr(token, "item"):
        token = token.item()  # a 0-d tensor or a NumPy scalar
    if isinstance(token, bool):
        raise ValueError(f"id {token!r} at position {position} is a bool, not a token id")
    try:
        return operator.index(token)
    except TypeError:
        raise TypeError(
            f"ids must be integers, got {reprlib.repr(token)} at position {position}; "
            "convert a float tensor with ids.long()"
        ) from None


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
        _check_text(text, "encode")
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
        ids = _as_ids(ids, self.vocab_size)
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> None:
        _write_json(path, {"type": "char", "chars": "".join(self.chars)})

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        return cls(_read_json(path, "char", ("chars",))["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# ---------------------------------------------------------------------------------------------
# byte-level BPE

# GPT-2's pre-split: contractions, then letters, numbers and other symbols (each with at most one leading
# space), then whitespace. Merges never cross these boundaries, so " the" is learned once, not per neighbour.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, the alphabet of ``tokens``/``merges`` in saved files.

    Printable Latin-1 bytes stand for themselves; the other 68 (space, control bytes, ...) map to
    the characters from U+0100 up, so a space shows as ``Ġ`` and every token is a readable string
    without spaces, which is why merges can be written as ``"a b"``.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = (b for b in range(256) if b not in keep)
    mapping = {b: chr(b) for b in keep}
    mapping.update({b: chr(256 + n) for n, b in enumerate(extra)})
    return dict(sorted(mapping.items()))


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, left to right, by ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def learn_merges(
    words: list[list[int]], freqs: list[int], num_merges: int, make_token: Callable[[tuple[int, int]], int | None]
) -> list[tuple[tuple[int, int], int]]:
    """The merge loop BPE and WordPiece training share: ``[(pair, new id), ...]`` in the order learned.

    ``words`` are the distinct pre-split pieces as token ids, ``freqs`` how often each occurs; they
    are merged in place. Each step takes the most frequent adjacent pair (ties: the smallest pair of
    ids) and asks ``make_token(pair)`` for the new token's id, or ``None`` to skip that pair.
    Counting every pair again after each merge would cost a pass over the corpus per merge;
    instead only the pieces that contain the merged pair are re-counted, and a heap with stale
    entries skipped on the way out finds the next best pair.
    """
    pair_counts: Counter[tuple[int, int]] = Counter()
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> pieces that contain it
    for w, (word, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(word):
            pair_counts[pair] += freq
            where[pair].add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    learned = []
    while len(learned) < num_merges and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative:
            continue  # stale entry: the count changed since it was pushed
        new_id = make_token(pair)
        if new_id is None:
            continue
        learned.append((pair, new_id))
        changed = set()
        for w in where.pop(pair):
            word, freq = words[w], freqs[w]
            new_word = _merge(word, pair, new_id)
            if len(new_word) == len(word):
                continue  # an earlier merge in this piece used up the pair
            for old in pairwise(word):
                pair_counts[old] -= freq
                changed.add(old)
            for new in pairwise(new_word):
                pair_counts[new] += freq
                where[new].add(w)
                changed.add(new)
            words[w] = new_word
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                del pair_counts[p]
    return learned


class BPETokenizer:
    """Byte-level byte-pair encoding, as in GPT-2: any string encodes, nothing is ever unknown.

    Text is pre-split by a regex, each piece becomes its UTF-8 bytes (256 base tokens) and learned
    merges, applied lowest rank first, join adjacent tokens into longer ones. Special tokens (like
    ``<|endoftext|>``) are matched before the split and map straight to their ids.

    ``vocab`` maps id -> bytes; ``merges`` maps a pair of ids -> (rank, merged id). A trained
    tokenizer numbers bytes 0..255, then merges in order, then special tokens; one built with
    :meth:`from_merges` keeps whatever ids its vocabulary has (e.g. SmolLM2's).
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: dict[tuple[int, int], tuple[int, int]],
        pattern: str = GPT2_SPLIT_PATTERN,
        special_tokens: dict[str, int] | None = None,
    ):
        self.vocab = vocab
        self.merges = merges
        self.pattern = pattern
        self.special_tokens = dict(special_tokens or {})
        self._split = regex.compile(pattern)
        ids_of = {b: i for i, b in vocab.items() if i not in self.special_tokens.values()}
        # A real vocabulary may lack bytes that never occur in its training text (SmolLM2 has no 0xC0,
        # 0xF5..0xFF and a few control characters); text containing one is rejected when encoded.
        self._byte_ids = [ids_of.get(bytes([b])) for b in range(256)]
        self._special_split = (
            regex.compile("(" + "|".join(map(regex.escape, sorted(self.special_tokens, key=len, reverse=True))) + ")")
            if self.special_tokens
            else None
        )
        self._cache: dict[str, list[int]] = {}

    # -- training -------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: list[str] | tuple[str, ...] = (),
        pattern: str = GPT2_SPLIT_PATTERN,
    ) -> BPETokenizer:
        """Learn merges on ``text`` until the vocabulary (bytes, merges, specials) has ``vocab_size`` tokens.

        The text is reduced to its distinct pre-split pieces with their counts, and each step merges
        the most frequent adjacent pair (ties: the smallest pair of ids); see :func:`learn_merges`.
        Training stops early, with a smaller vocabulary, once every piece of a short text is a single
        token: nothing is left to merge. Check ``vocab_size`` afterwards when the text is small.
        """
        if isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
            raise TypeError(
                "train takes one string, not a list of texts; join them: '\\n'.join(texts) (a separator keeps the "
                "last word of one text and the first of the next from merging)"
            )
        if not isinstance(text, str) or not text:
            raise ValueError("train needs a non-empty string")
        if isinstance(special_tokens, str):  # list("<eot>") would make five one-character special tokens
            raise TypeError(f"special_tokens must be a list of strings, e.g. [{special_tokens!r}], not a bare string")
        special_tokens = list(special_tokens)
        smallest = 256 + len(special_tokens)
        if not isinstance(vocab_size, int) or vocab_size < smallest:
            raise ValueError(
                f"vocab_size must be an int of at least 256 bytes + {len(special_tokens)} special tokens "
                f"= {smallest}, not {vocab_size!r}"
            )
        if len(set(special_tokens)) != len(special_tokens) or not all(special_tokens):
            raise ValueError("special_tokens must be distinct non-empty strings")
        pieces = Counter(regex.findall(pattern, text))
        vocab = {i: bytes([i]) for i in range(256)}
        known = set(vocab.values())

        def make_token(pair: tuple[int, int]) -> int | None:
            merged = vocab[pair[0]] + vocab[pair[1]]
            if merged in known:
                return None  # another pair already made these bytes; one token per byte string
            vocab[len(vocab)] = merged
            known.add(merged)
            return len(vocab) - 1

        words = [list(piece.encode("utf-8")) for piece in pieces]
        learned = learn_merges(words, list(pieces.values()), vocab_size - len(vocab) - len(special_tokens), make_token)
        merges = {pair: (rank, new_id) for rank, (pair, new_id) in enumerate(learned)}
        specials = {s: len(vocab) + i for i, s in enumerate(special_tokens)}
        vocab.update({i: s.encode("utf-8") for s, i in specials.items()})
        return cls(vocab, merges, pattern, specials)

    # -- building from an existing vocabulary ------------------------------------------------------

    @classmethod
    def from_merges(
        cls,
        tokens: list[str],
        merges: list[str],
        pattern: str = GPT2_SPLIT_PATTERN,
        special_tokens: dict[str, int] | None = None,
    ) -> BPETokenizer:
        """Build a tokenizer from a vocabulary written the GPT-2 way (GGUF, Hugging Face, our JSON).

        ``tokens[i]`` is token ``i`` in GPT-2's byte-to-unicode alphabet (``"Ġthe"`` is b" the"),
        ``merges`` lists ``"a b"`` strings from first to last learned, and ``special_tokens`` maps
        each special token's literal text to its id (those entries of ``tokens`` are literal text).
        """
        special_tokens = dict(special_tokens or {})
        for text, i in special_tokens.items():
            if not 0 <= i < len(tokens) or tokens[i] != text:
                raise ValueError(f"special token {text!r} -> {i} does not match tokens[{i}]")
        byte_of = {c: b for b, c in bytes_to_unicode().items()}
        vocab, ids_of = {}, {}
        special_ids = set(special_tokens.values())
        for i, token in enumerate(tokens):
            if i in special_ids:
                vocab[i] = token.encode("utf-8")
                continue
            try:
                vocab[i] = bytes(byte_of[c] for c in token)
            except KeyError as exc:
                raise ValueError(
                    f"token {i} {token!r} has {exc.args[0]!r}, which is not in GPT-2's byte alphabet; "
                    "if it is a special token, pass it in special_tokens"
                ) from None
            ids_of.setdefault(vocab[i], i)
        table = {}
        for rank, line in enumerate(merges):
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"merge {rank} {line!r} is not two tokens separated by one space")
            try:
                a, b = (ids_of[bytes(byte_of[c] for c in p)] for p in parts)
                table[(a, b)] = (rank, ids_of[vocab[a] + vocab[b]])
            except KeyError:
                raise ValueError(f"merge {rank} {line!r} uses or makes a token that is not in tokens") from None
        return cls(vocab, table, pattern, special_tokens)

    # -- encoding and decoding ------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return max(self.vocab) + 1

    def _encode_piece(self, piece: str) -> list[int]:
        """BPE on one pre-split piece: merge the lowest-ranked adjacent pair until none is left."""
        ids = [self._byte_ids[b] for b in piece.encode("utf-8")]
        if None in ids:
            byte = piece.encode("utf-8")[ids.index(None)]
            raise ValueError(
                f"{piece!r} contains the byte 0x{byte:02X}, which has no token in this vocabulary; remove that "
                "character from the text"
            )
        while len(ids) >= 2:
            pair = min(pairwise(ids), key=lambda p: self.merges.get(p, _NO_MERGE)[0])
            if pair not in self.merges:
                break
            ids = _merge(ids, pair, self.merges[pair][1])
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token strings as ordinary text."""
        ids = []
        for piece in self._split.findall(text):
            cached = self._cache.get(piece)
            if cached is None:
                cached = self._cache[piece] = self._encode_piece(piece)
            ids.extend(cached)
        return ids

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Token ids of ``text``; with ``allow_special`` a special token's text becomes its one id."""
        _check_text(text, "encode")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"text has a lone surrogate {text[exc.start]!r} at position {exc.start}, which is not valid "
                "Unicode and has no UTF-8 bytes; remove it or decode your input with errors='replace'"
            ) from None
        if not (allow_special and self._special_split):
            return self.encode_ordinary(text)
        ids = []
        for i, part in enumerate(self._special_split.split(text)):
            ids.extend([self.special_tokens[part]] if i % 2 else self.encode_ordinary(part))
        return ids

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids``; a cut through a multi-byte character shows as U+FFFD."""
        return b"".join(self._token_bytes(ids, "decode")).decode("utf-8", errors="replace")

    def token_bytes(self, ids: list[int]) -> list[bytes]:
        """The bytes of each token, e.g. to show how a text was cut."""
        return self._token_bytes(ids, "token_bytes")

    def _token_bytes(self, ids: list[int], caller: str) -> list[bytes]:
        ids = _as_ids(ids, self.vocab_size, caller)
        missing = [i for i in ids if i not in self.vocab]
        if missing:
            raise ValueError(f"ids {missing[:5]} have no token in this vocabulary")
        return [self.vocab[i] for i in ids]

    # -- saving ---------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON: tokens and ``"a b"`` merges in GPT-2's readable byte alphabet."""
        alphabet = bytes_to_unicode()
        special_ids = set(self.special_tokens.values())
        tokens = [
            self.vocab[i].decode("utf-8") if i in special_ids else "".join(alphabet[b] for b in self.vocab[i])
            for i in range(self.vocab_size)
        ]
        merges = [f"{tokens[a]} {tokens[b]}" for (a, b), _ in sorted(self.merges.items(), key=lambda kv: kv[1][0])]
        _write_json(
            path,
            {
                "type": "bpe",
                "pattern": self.pattern,
                "special_tokens": self.special_tokens,
                "tokens": tokens,
                "merges": merges,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        payload = _read_json(path, "bpe", ("tokens", "merges", "pattern", "special_tokens"))
        return cls.from_merges(payload["tokens"], payload["merges"], payload["pattern"], payload["special_tokens"])

    def __repr__(self) -> str:
        specials = len(self.special_tokens)
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, special_tokens={specials})"


_NO_MERGE = (float("inf"), -1)


# ---------------------------------------------------------------------------------------------
# WordPiece (BERT)

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Unicode's White_Space property (what BERT's Rust normalizer tests), not Python's str.isspace,
# which also counts the separators U+001C..U+001F.
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)
# The CJK Unified Ideographs blocks that BERT splits into one token per character.
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip


def _is_cjk(c: str) -> bool:
    return any(lo <= ord(c) <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(c: str) -> bool:
    """ASCII symbols like ``$`` and ``+`` count too: BERT splits on every non-alphanumeric ASCII mark."""
    return (c.isascii() and not c.isalnum() and c.isprintable() and c != " ") or unicodedata.category(c).startswith("P")


class WordPieceTokenizer:
    """BERT's WordPiece: normalise, split into words and punctuation, then greedy longest-match pieces.

    Normalisation (as BERT's uncased models): drop control characters, turn white space into spaces,
    put spaces around CJK ideographs (one token each), strip accents (NFD, drop combining marks)
    and lower-case. Each word then becomes the longest vocabulary entry that starts it, then the
    longest ``##``-prefixed entry that continues it, and so on; a word that cannot be covered, or
    is over ``max_chars`` characters, becomes ``[UNK]``. Special tokens written in the text
    (``[MASK]``) are kept whole, as Hugging Face's tokenizer does.

    The ids equal Hugging Face's ``BertTokenizer`` for the same ``vocab.txt`` (tested). Character
    classes come from Python's ``unicodedata``, whose Unicode is newer than the tables in Hugging
    Face's Rust code, so the two can differ on characters added to Unicode since about 2017.
    """

    def __init__(self, vocab: list[str], lowercase: bool = True, max_chars: int = 100):
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocab entries must be distinct")
        missing = [t for t in BERT_SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"vocab lacks the special tokens {missing}; BERT needs all of {BERT_SPECIAL_TOKENS}")
        self.vocab = list(vocab)
        self.ids = {token: i for i, token in enumerate(self.vocab)}
        self.lowercase = lowercase
        self.max_chars = max_chars
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (self.ids[t] for t in BERT_SPECIAL_TOKENS)
        self._special_split = regex.compile("(" + "|".join(map(regex.escape, BERT_SPECIAL_TOKENS)) + ")")

    @classmethod
    def from_vocab_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """Load a BERT ``vocab.txt``: one token per line, the line number is its id."""
        with open(path, encoding="utf-8") as f:
            return cls(f.read().splitlines(), lowercase=lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # -- the steps -------------------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """Clean, space out CJK, strip accents and lower-case, in the order BERT's normaliser does."""
        out = []
        for c in text:
            if c in "\x00\ufffd" or (unicodedata.category(c) in ("Cc", "Cf", "Co") and c not in "\t\n\r"):
                continue  # control, format and private-use characters carry no meaning for BERT
            out.append(f" {c} " if _is_cjk(c) else " " if c in _WHITE_SPACE else c)
        text = "".join(out)
        if self.lowercase:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
            text = "".join(c.lower() for c in text)  # per character, as BERT's normaliser: no final-sigma rule
        return text

    @staticmethod
    def pre_tokenize(text: str) -> list[str]:
        """Split normalised text at white space and around every punctuation mark."""
        words = []
        for chunk in text.split():
            start = 0
            for i, c in enumerate(chunk):
                if _is_punctuation(c):
                    words += [chunk[start:i], c] if i > start else [c]
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def word_pieces(self, word: str) -> list[str]:
        """Greedy longest-match-first: ``"unaffable"`` -> ``["una", "##ffa", "##ble"]`` with BERT's vocabulary."""
        if len(word) > self.max_chars:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    break
            else:
                return ["[UNK]"]  # no entry covers this position: the whole word is unknown
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece strings of ``text``, without ``[CLS]``/``[SEP]``."""
        _check_text(text, "tokenize")
        tokens = []
        for i, part in enumerate(self._special_split.split(text)):
            if i % 2:
                tokens.append(part)
            else:
                for word in self.pre_tokenize(self.normalize(part)):
                    tokens += self.word_pieces(word)
        return tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids, as ``[CLS] text [SEP]`` by default: the input shape BERT was trained on."""
        ids = [self.ids[t] for t in self.tokenize(text)]
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Join pieces back into words. Lower-casing and accent stripping cannot be undone."""
        ids = _as_ids(ids, self.vocab_size)
        special = {self.pad_id, self.cls_id, self.sep_id, self.mask_id} if skip_special_tokens else set()
        tokens = [self.vocab[i] for i in ids if i not in special]
        return " ".join(tokens).replace(" ##", "")

    # -- training and saving -----------------------------------------------------------------------

    @classmethod
    def train(cls, texts: str | list[str], vocab_size: int, lowercase: bool = True) -> WordPieceTokenizer:
        """Learn a WordPiece vocabulary of ``vocab_size`` entries from ``texts``.

        As Hugging Face's trainer does, the vocabulary grows by frequency-based merges (BPE) over
        the pre-tokenized words, where a piece inside a word carries the ``##`` prefix: it starts
        with the special tokens and every character (both as a word start and as ``##c``).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a string or a list of strings")
        normalizer = cls(list(BERT_SPECIAL_TOKENS), lowercase=lowercase)
        counts = Counter(w for t in texts for w in normalizer.pre_tokenize(normalizer.normalize(t)))
        alphabet = sorted({c for w in counts for c in w})
        vocab = [*BERT_SPECIAL_TOKENS, *alphabet, *(f"##{c}" for c in alphabet)]
        if not isinstance(vocab_size, int) or vocab_size < len(vocab):
            raise ValueError(
                f"vocab_size must be an int of at least {len(vocab)} (5 special tokens and "
                f"{len(alphabet)} characters, each as a start and as ##c), not {vocab_size!r}"
            )
        index = {t: i for i, t in enumerate(vocab)}

        def make_token(pair: tuple[int, int]) -> int | None:
            merged = vocab[pair[0]] + vocab[pair[1]].removeprefix("##")
            if merged in index:
                return None  # another pair already spells it
            index[merged] = len(vocab)
            vocab.append(merged)
            return len(vocab) - 1

        words = [[index[w[0]], *(index["##" + c] for c in w[1:])] for w in counts]
        learn_merges(words, list(counts.values()), vocab_size - len(vocab), make_token)
        return cls(vocab, lowercase=lowercase)

    def save(self, path: str | Path) -> None:
        _write_json(path, {"type": "wordpiece", "lowercase": self.lowercase, "vocab": self.vocab})

    @classmethod
    def load(cls, path: str | Path) -> WordPieceTokenizer:
        payload = _read_json(path, "wordpiece", ("vocab", "lowercase"))
        return cls(payload["vocab"], lowercase=payload["lowercase"])

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
