"""Pre-train the small BPE GPT that chapter 06 fine-tunes, on the English text that ships in data/.

Run from the repository root (about 20 minutes on a 2-core CPU; any GPU is much faster)::

    python scripts/pretrain_gpt_bpe.py                      # writes data/checkpoints/gpt_bpe/
    python scripts/pretrain_gpt_bpe.py --minutes 1 --out /tmp/gpt_try

The corpus is modern English first: the Brown corpus's training documents (1961 American prose of 15
genres, detokenized back to running text), the movie-review sentences of the sentiment *training* split
(their text only, never a label, and never a validation or test sentence: reading unlabelled in-domain text
is ordinary "domain-adaptive" pretraining), and the 8-play Shakespeare text. A byte-level BPE vocabulary
(``course_lib.tokenizers.BPETokenizer``) is learned on it, and a GPT (``course_lib.gpt``) is trained on random
64-token windows with ``course_lib.train.Trainer`` for a wall-clock budget: the first steps are timed and the
cosine schedule's length is set so that it ends when the budget does. Validation loss is measured on Brown's
validation documents and Shakespeare's validation text.

The output is a course checkpoint (``course_lib.checkpoint``) with the weights in float16, half the bytes
(loading casts them back to the model's float32), plus ``tokenizer.json`` and ``provenance.json`` (corpus,
config, steps, time, final losses). After a run, copy the sha256 of each file into data/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import time
from pathlib import Path

import torch

from course_lib.checkpoint import save_checkpoint
from course_lib.data import load_brown, load_sentiment, load_shakespeare, sha256_of
from course_lib.device import describe_device
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizers import BPETokenizer
from course_lib.train import TrainConfig, Trainer

EOT = "<|endoftext|>"  # separates documents; chapter 06 also pads classification batches with it


def detokenize(words: list[str]) -> str:
    """Brown keeps ``.``, ``,`` and quotes as words of their own (`` opens, '' closes); join them as prose."""
    text = " ".join(words).replace("``", '"').replace("''", '"')
    text = re.sub(r" ([.,;:!?)'])", r"\1", text)  # no space before closing punctuation
    text = re.sub(r"([($]) ", r"\1", text)
    return re.sub(r'" (.*?) "', r'"\1"', text)  # a quoted span hugs its quotes


def brown_documents(split) -> list[str]:
    """Brown's sentences grouped back into their documents, one string each."""
    docs: dict[str, list[str]] = {}
    for sentence in split:
        docs.setdefault(sentence.file, []).append(detokenize(sentence.words))
    return [" ".join(sentences) for sentences in docs.values()]


def corpus() -> tuple[str, str]:
    """(training text, validation text), documents separated by the end-of-text token."""
    brown, reviews, shakespeare = load_brown(), load_sentiment(), load_shakespeare("tiny")
    # The sentiment file is grouped by label; shuffled, no window holds a run of reviews of one polarity.
    texts = list(reviews.train.texts)
    random.Random(0).shuffle(texts)
    train = [*brown_documents(brown.train), "\n".join(texts), shakespeare.train]
    val = [*brown_documents(brown.val), shakespeare.val]
    return EOT.join(train), EOT.join(val)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/checkpoints/gpt_bpe")
    parser.add_argument("--minutes", type=float, default=18.0, help="wall-clock training budget")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--device", default=None, help="cpu, cuda, ...; default: course_lib.get_device()")
    parser.add_argument("--log-every", type=int, default=100, help="steps between printed losses")
    parser.add_argument("--eval-every", type=int, default=0, help="steps between validation losses (0: at the end)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    train_text, val_text = corpus()
    tokenizer = BPETokenizer.train(train_text, args.vocab_size, special_tokens=[EOT])
    tokenizer.save(out / "tokenizer.json")
    data = {
        "train": torch.tensor(tokenizer.encode(train_text), dtype=torch.int16),
        "val": torch.tensor(tokenizer.encode(val_text), dtype=torch.int16),
    }
    print(
        f"tokenizer {tokenizer} and {len(data['train']):,} / {len(data['val']):,} train / val tokens "
        f"in {time.time() - t0:.0f} s",
        flush=True,
    )

    config = GPTConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=args.block_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        dropout=0.0,
    )
    model = GPT(config)
    tc = TrainConfig(
        max_steps=100_000,
        batch_size=args.batch_size,
        block_size=args.block_size,
        learning_rate=args.learning_rate,
        min_lr=args.learning_rate / 10,
        warmup_steps=100,
        eval_batches=20,
        device=args.device,
        precision="fp32",
        compile=False,
        progress=False,
        seed=0,
    )
    trainer = Trainer(model, data, tc)
    budget, start, timed = args.minutes * 60, time.time(), 30
    while trainer.step < tc.max_steps:
        loss = trainer.backward()
        trainer.update()
        if trainer.step in (timed, 100 * timed):  # size the cosine to end with the budget; again once warm (GPU)
            per_step = (time.time() - start) / trainer.step
            tc.max_steps = max(timed + 1, int(budget / per_step))
            print(f"{per_step:.2f} s/step: the run will take {tc.max_steps} steps", flush=True)
        if trainer.step % args.log_every == 0:
            print(f"step {trainer.step}: loss {loss:.3f}, {time.time() - start:.0f} s", flush=True)
        if args.eval_every and trainer.step % args.eval_every == 0:
            print(f"step {trainer.step}: val loss {trainer.evaluate()['val']:.3f}", flush=True)
    seconds = time.time() - start
    losses = trainer.evaluate()
    print(f"final train loss {losses['train']:.3f}, val loss {losses['val']:.3f} after {seconds:.0f} s", flush=True)

    model.half()  # float16 weights: half the bytes; load_checkpoint casts them into a float32 model
    save_checkpoint(out, model, step=trainer.step, train_config=dataclasses.asdict(tc))
    provenance = {
        "corpus": "Brown train documents (detokenized) + sentiment train sentences (text only) + "
        "Shakespeare tiny train, joined by <|endoftext|>; validation: Brown val documents + Shakespeare tiny val",
        "train_tokens": len(data["train"]),
        "val_tokens": len(data["val"]),
        "model_config": dataclasses.asdict(config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": trainer.step,
        "tokens_seen": trainer.step * tc.batch_size * tc.block_size,
        "seconds": round(seconds),
        "device": describe_device(trainer.device),
        "final_train_loss": round(losses["train"], 4),
        "final_val_loss": round(losses["val"], 4),
        "torch": torch.__version__,
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    for path in sorted(out.iterdir()):
        print(f"{path}  {path.stat().st_size:,} B  sha256 {sha256_of(path)}", flush=True)


if __name__ == "__main__":
    main()
