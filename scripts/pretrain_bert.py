"""Pre-train the small BERT that chapters 07 and 08 use, with masked-language modelling on the Brown corpus.

Run from the repository root (a wall-clock budget, 25 minutes by default; any GPU is much faster)::

    python scripts/pretrain_bert.py                       # writes data/checkpoints/bert_mlm/
    python scripts/pretrain_bert.py --minutes 2 --out /tmp/bert_try

It trains a WordPiece vocabulary on Brown's training sentences, packs them into 64-token windows, and trains
``BertForMaskedLM`` with the 80/10/10 rule (``course_lib.mlm``), AdamW and warmup + cosine decay
(``course_lib.train``) for a fixed wall-clock budget. The output folder is a Hugging Face-style checkpoint that
``BertForMaskedLM.from_pretrained`` reads: ``config.json`` (with the run's measurements under
``"course_pretraining"``), ``model.safetensors`` in float16 (half the bytes; the weights are cast back to
float32 on loading) and ``vocab.txt``. Held-out accuracy is measured on Brown's validation split with a fixed
masking seed, against the baseline that always predicts the most frequent training token.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import save_file

from course_lib.bert import BertConfig, BertForMaskedLM
from course_lib.data import load_brown
from course_lib.device import describe_device, get_device
from course_lib.mlm import mask_tokens, masked_accuracy, pack_windows
from course_lib.tokenizers import WordPieceTokenizer
from course_lib.train import TrainConfig, configure_optimizer, lr_at

MODEL = dict(
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=512,
    max_position_embeddings=128,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def sentences(split) -> list[str]:
    return [" ".join(s.words) for s in split]


@torch.no_grad()
def evaluate(model: BertForMaskedLM, windows: torch.Tensor, tok: WordPieceTokenizer, baseline_id: int) -> dict:
    """MLM loss and accuracy on ``windows`` masked with a fixed seed, and the most-frequent-token baseline."""
    model.eval()
    g = torch.Generator().manual_seed(1234)
    special = (tok.pad_id, tok.cls_id, tok.sep_id)
    loss_sum, correct, total, base, at_mask, n_mask = 0.0, 0, 0, 0, 0, 0
    for batch in windows.split(64):
        x, y = (
            t.to(next(model.parameters()).device)
            for t in mask_tokens(batch, tok.mask_id, tok.vocab_size, special, generator=g)
        )
        logits, loss = model(x, labels=y)
        c, n = masked_accuracy(logits, y)
        loss_sum, correct, total = loss_sum + loss.item() * n, correct + c, total + n
        base += (y == baseline_id).sum().item()
        masked = (x == tok.mask_id) & (y != -100)  # the 80% of targets the model cannot copy from its input
        at_mask += (logits.argmax(-1)[masked] == y[masked]).sum().item()
        n_mask += masked.sum().item()
    model.train()
    return {
        "val_loss": loss_sum / total,
        "val_accuracy": correct / total,
        "val_accuracy_at_mask": at_mask / n_mask,
        "baseline_accuracy": base / total,
        "val_targets": total,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/checkpoints/bert_mlm")
    parser.add_argument("--minutes", type=float, default=25.0, help="wall-clock training budget")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--log-every", type=int, default=25, help="steps between printed training losses")
    parser.add_argument("--eval-every", type=int, default=0, help="steps between held-out evaluations (0: at the end)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    brown = load_brown()
    t0 = time.time()
    tok = WordPieceTokenizer.train(sentences(brown.train), args.vocab_size)
    print(f"WordPiece vocabulary of {tok.vocab_size} trained in {time.time() - t0:.0f} s", flush=True)
    encode = lambda split: [tok.encode(s, add_special_tokens=False) for s in sentences(split)]  # noqa: E731
    train_ids = encode(brown.train)
    train = pack_windows(train_ids, args.block_size, tok.cls_id, tok.sep_id)  # (N, T)
    val = pack_windows(encode(brown.val), args.block_size, tok.cls_id, tok.sep_id)[:512]
    counts = Counter(t for s in train_ids for t in s)
    baseline_id = counts.most_common(1)[0][0]
    print(f"{len(train)} training windows; most frequent token {tok.vocab[baseline_id]!r}", flush=True)

    config = BertConfig(vocab_size=tok.vocab_size, **MODEL)
    device = get_device()  # CUDA, then MPS, then the CPU; COURSE_DEVICE=cpu forces the CPU
    model = BertForMaskedLM(config).to(device)
    tc = TrainConfig(
        max_steps=10**6,
        batch_size=args.batch_size,
        block_size=args.block_size,
        learning_rate=args.learning_rate,
        min_lr=args.learning_rate / 10,
        warmup_steps=20,
        weight_decay=0.01,
        beta2=0.98,
    )
    optimizer = configure_optimizer(model, tc, device)
    g = torch.Generator().manual_seed(0)
    special = (tok.pad_id, tok.cls_id, tok.sep_id)
    start, step, losses = time.time(), 0, []
    while step < tc.max_steps and time.time() - start < args.minutes * 60:
        rows = torch.randint(len(train), (tc.batch_size,), generator=g)
        x, y = (t.to(device) for t in mask_tokens(train[rows], tok.mask_id, tok.vocab_size, special, generator=g))
        _, loss = model(x, labels=y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, tc)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step += 1
        if step in (20, 2000):  # size the cosine to end with the budget; again once warm (a GPU's first steps are slow)
            tc = dataclasses.replace(tc, max_steps=max(21, int(step / (time.time() - start) * args.minutes * 60)))
            print(f"{tc.max_steps} steps fit in {args.minutes} minutes", flush=True)
        if step % args.log_every == 0:
            mean = sum(losses[-args.log_every :]) / args.log_every
            print(f"step {step}: loss {mean:.3f}, {time.time() - start:.0f} s", flush=True)
        if args.eval_every and step % args.eval_every == 0:
            print(f"step {step}: held-out {json.dumps(evaluate(model, val, tok, baseline_id))}", flush=True)
    seconds = time.time() - start
    result = evaluate(model, val, tok, baseline_id)
    print(json.dumps(result), flush=True)

    state = {k: v.half().cpu().contiguous() for k, v in model.state_dict().items() if k != "decoder.weight"}  # tied
    save_file(state, str(out / "model.safetensors"))
    (out / "vocab.txt").write_text("\n".join(tok.vocab) + "\n", encoding="utf-8")
    info = {
        **config.__dict__,
        "model_type": "bert",
        "course_pretraining": {
            "corpus": "Brown train split (course_lib.data.load_brown)",
            "block_size": args.block_size,
            "batch_size": tc.batch_size,
            "steps": step,
            "seconds": round(seconds),
            "device": describe_device(device),
            "final_train_loss": round(sum(losses[-100:]) / min(100, len(losses)), 4),
            "most_frequent_token": tok.vocab[baseline_id],
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()},
        },
    }
    (out / "config.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"saved {out} after {step} steps in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
