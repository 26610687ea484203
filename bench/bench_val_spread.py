"""In-training validation vs the whole split: the first ``eval_batches`` windows in order (before
issue 26.5) against the same number spread over the split (``lib.data.val_windows`` now).

Real third-party text: a slice of the Debian HTML documentation (bench.real_text's sources, every
``--every``-th page), through our HTML extraction, content-hash split, tokenizer and packer. The
model, optimizer and batch shape are the shipped ``params.yaml`` pretrain recipe; every
``--eval-every`` steps it prints both estimates and the full-split loss.

    nice uv run python -m bench.bench_val_spread --steps 400
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import tempfile
from pathlib import Path

import torch

from bench.real_text import SEED, VAL_FRACTION, extract_docs, html_files
from lib.core.io import write_json, write_jsonl
from lib.core.params import load_section
from lib.corpus import split_key
from lib.data.pack import PackParams, pack_meta, pack_split
from lib.data.shards import META_FILE, open_split
from lib.data.val_windows import val_windows
from lib.data.windows import TrainWindows
from lib.eval.validation import mean_loss
from lib.model.gpt import GPT
from lib.tokenizer import Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer
from lib.train.optim import build_optimizer, set_lr
from lib.train.pretrain import PretrainParams
from lib.train.schedule import lr_at


def corpus(root: Path, every: int, vocab: int):
    """(train shards, val shards, val document count) of every ``every``-th Debian HTML page."""
    docs = extract_docs(html_files()[::every])
    split = {"train": [d for d in docs if split_key(d["text"], SEED) >= VAL_FRACTION * 4],
             "val": [d for d in docs if split_key(d["text"], SEED) < VAL_FRACTION * 4]}
    tok = Tokenizer(train_tokenizer((d["text"] for d in split["train"]), TokenizerParams(vocab_size=vocab),
                                    terms=[], seed=SEED))
    pack = PackParams(workers=1)
    meta = pack_meta(tok, pack)
    for name, part in split.items():
        write_jsonl(root / f"{name}.jsonl", part)
        meta["splits"][name] = pack_split(root / f"{name}.jsonl", root / "shards" / name, tok, pack)
    write_json(root / "shards" / META_FILE, meta)
    return (tok, open_split(root / "shards" / "train", tok.sha256), open_split(root / "shards" / "val", tok.sha256),
            len(split["val"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--every", type=int, default=4, help="take every n-th Debian HTML page")
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    p = load_section("pretrain", PretrainParams)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tok, train_shards, val_shards, val_docs = corpus(Path(tmp), args.every, args.vocab)
        model = GPT(dataclasses.replace(p.model, vocab_size=tok.vocab_size))
        opt = build_optimizer(model, p, torch.device("cpu"))
        windows = TrainWindows(train_shards, p.seq_len, p.batch_size, seed=0)
        n_val = sum((len(s.tokens) - 1) // p.seq_len for s in val_shards)
        print(f"val split: {val_docs} documents, {n_val} windows of {p.seq_len}; in-training estimate: "
              f"{p.eval_batches} batches x {p.batch_size} = {p.eval_batches * p.batch_size} windows")
        rows = []
        for step in range(args.steps + 1):
            if step % args.eval_every == 0:
                first = mean_loss(model, itertools.islice(val_windows(val_shards, p.seq_len, p.batch_size),
                                                          p.eval_batches), "cpu")
                spread = mean_loss(model, val_windows(val_shards, p.seq_len, p.batch_size, p.eval_batches), "cpu")
                full = mean_loss(model, val_windows(val_shards, p.seq_len, p.batch_size), "cpu")
                rows.append({"step": step, "first_windows": round(first, 4), "spread": round(spread, 4),
                             "full_split": round(full, 4)})
                print(json.dumps(rows[-1]), flush=True)
            if step == args.steps:
                break
            model.train()
            set_lr(opt, lr_at(step, p, args.steps), p.lr)
            b = windows.batch(step)
            _, loss = model(b.inputs, b.targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        late = [r for r in rows if r["step"] > 0]
        gap = lambda k: sum(abs(r[k] - r["full_split"]) for r in late) / len(late)  # noqa: E731
        print(f"mean |estimate - full split| after step 0: first windows {gap('first_windows'):.4f}, "
              f"spread {gap('spread'):.4f}")


if __name__ == "__main__":
    main()
