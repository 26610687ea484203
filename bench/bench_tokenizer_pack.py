"""Benchmark: tokenizer training, packing throughput against bare SentencePiece, and pack memory.

    uv run python -m bench.bench_tokenizer_pack [--mb 50] [--out-dir DIR]

Builds a corpus of ``--mb`` MB (and one four times larger) by shuffling paragraphs of the
project's corpus (data/corpus, else data/sample/docs/text) with a fixed seed, then prints JSON:

- tokenizer training: seconds and peak RSS (fresh process, params.yaml's tokenizer section);
- packing tokens/s with 1 and 2 processes next to a bare ``SentencePieceProcessor.encode`` of the
  same texts in this same run (goal: packing >= 85% of bare encode);
- peak RSS of packing the corpus and the one four times larger (goal: the same).

Memory and the tokenizer are measured in child processes so each peak is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.core.io import iter_jsonl  # noqa: E402
from lib.data.pack import PackParams, pack_split  # noqa: E402
from lib.core.params import load_section  # noqa: E402
from lib.tokenizer import Tokenizer  # noqa: E402
from lib.tokenizer.build import TokenizerParams, train_tokenizer  # noqa: E402


def source_paragraphs() -> list[str]:
    texts = []
    for split in ("train", "val"):
        path = ROOT / "data" / "corpus" / f"{split}.jsonl"
        if path.exists():
            texts += [doc["text"] for _, doc in iter_jsonl(path)]
    if not texts:
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "data/sample/docs/text").glob("*"))]
    return [p for t in texts for p in t.split("\n\n") if p.strip()]


def make_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    """Documents of 5-40 paragraphs drawn with a fixed seed until the file holds ``megabytes``."""
    paragraphs, rng = source_paragraphs(), random.Random(seed)
    target, size = int(megabytes * 1e6), 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target:
            text = "\n\n".join(rng.choice(paragraphs) for _ in range(rng.randint(5, 40)))
            line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
    return size


def usage(cpu_before: float) -> dict:
    """Peak RSS of this process and of its largest worker; CPU seconds of both since ``cpu_before``
    (CPU time as well as wall time, since a shared machine's load skews the wall clock)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its
    # parent's peak at the time it was started
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return {"peak_rss_mb": round(hwm / 1024, 1), "peak_rss_workers_mb": round(kids.ru_maxrss / 1024, 1),
            "cpu_seconds": round(own.ru_utime + own.ru_stime - cpu_before, 2),
            "worker_cpu_seconds": round(kids.ru_utime + kids.ru_stime, 2)}


def child(args) -> None:
    """Run one measured job in this fresh process; print its figures as JSON."""
    corpus, out = Path(args.corpus), Path(args.out_dir)
    cpu_before = time.process_time()
    started = time.perf_counter()
    if args.child == "tokenizer":
        params = load_section("tokenizer", TokenizerParams, ROOT / "params.yaml")
        texts = (doc["text"] for _, doc in iter_jsonl(corpus))
        model = train_tokenizer(texts, params, [], seed=0)
        (out / "tokenizer.model").write_bytes(model)
        result = {}
    else:
        tok = Tokenizer.load(out / "tokenizer.model")
        info = pack_split(corpus, out / f"shards_{corpus.stem}_{args.workers}", tok,
                          PackParams(workers=args.workers))
        result = {"tokens": info["tokens"], "docs": info["docs"]}
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), **result, **usage(cpu_before)}))


def run_child(kind: str, corpus: Path, out: Path, workers: int = 1) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_tokenizer_pack", "--child", kind, "--corpus", str(corpus),
           "--out-dir", str(out), "--workers", str(workers)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bare_encode(tok: Tokenizer, texts: list[str]) -> dict:
    """SentencePiece alone, one thread, texts already in memory, in batches of 256 documents
    whose ids are dropped at once: the ceiling for one process."""
    sp = tok._sp
    sp.encode(texts[:256])  # warm up
    wall, cpu = time.perf_counter(), time.process_time()
    n = sum(sum(len(x) for x in sp.encode(texts[i:i + 256])) for i in range(0, len(texts), 256))
    return {"tokens": n, "seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--out-dir")
    ap.add_argument("--child", choices=["tokenizer", "pack"])
    ap.add_argument("--corpus")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory(dir=args.out_dir) as tmp:
        out = Path(tmp)
        small, big = out / "small.jsonl", out / "big.jsonl"
        sizes = {"corpus_mb": round(make_corpus(small, args.mb) / 1e6, 1),
                 "big_corpus_mb": round(make_corpus(big, 4 * args.mb, seed=1) / 1e6, 1)}
        tokenizer = run_child("tokenizer", small, out)
        run_child("pack", small, out, workers=1)  # warm-up: page cache, imports
        pack = {w: run_child("pack", small, out, workers=w) for w in (1, 2)}
        pack_big = run_child("pack", big, out, workers=2)
        tok = Tokenizer.load(out / "tokenizer.model")
        baseline = bare_encode(tok, [doc["text"] for _, doc in iter_jsonl(small)])
        assert baseline["tokens"] + 2 * pack[1]["docs"] == pack[1]["tokens"], "not the same text"
    n = baseline["tokens"]  # the text's tokens, without the BOS/EOS pack adds
    wall = {w: n / r["seconds"] for w, r in pack.items()}
    cpu = {w: n / (r["cpu_seconds"] + r["worker_cpu_seconds"]) for w, r in pack.items()}
    bare_wall, bare_cpu = n / baseline["seconds"], n / baseline["cpu_seconds"]
    print(json.dumps({
        **sizes,
        "tokenizer_train_seconds": tokenizer["seconds"],
        "tokenizer_train_cpu_seconds": tokenizer["cpu_seconds"],
        "tokenizer_train_peak_rss_mb": tokenizer["peak_rss_mb"],
        "tokens": n,
        "bare_encode_tokens_per_s": round(bare_wall),
        "pack_1_process_tokens_per_s": round(wall[1]),
        "pack_2_processes_tokens_per_s": round(wall[2]),
        "pack_1_process_vs_bare_encode": round(wall[1] / bare_wall, 3),
        "pack_2_processes_vs_bare_encode": round(wall[2] / bare_wall, 3),
        "bare_encode_tokens_per_cpu_s": round(bare_cpu),
        "pack_1_process_tokens_per_cpu_s": round(cpu[1]),
        "pack_2_processes_tokens_per_cpu_s": round(cpu[2]),
        "pack_1_process_vs_bare_encode_cpu": round(cpu[1] / bare_cpu, 3),
        "pack_2_processes_vs_bare_encode_cpu": round(cpu[2] / bare_cpu, 3),
        "pack_peak_rss_mb": pack[2]["peak_rss_mb"],
        "pack_peak_rss_worker_mb": pack[2]["peak_rss_workers_mb"],
        "pack_4x_peak_rss_mb": pack_big["peak_rss_mb"],
        "pack_4x_peak_rss_worker_mb": pack_big["peak_rss_workers_mb"],
        "pack_4x_tokens": pack_big["tokens"],
        "pack_4x_seconds": pack_big["seconds"],
        "load_average_1min": round(os.getloadavg()[0], 1),
        "note": "pack: pack_split in a fresh process (read JSONL, parse, encode, write shards, sha256); "
                "bare: SentencePiece encode of the same texts from memory in one thread, same run; "
                "*_cpu figures divide by CPU seconds of all processes, robust to a loaded machine",
    }, indent=2))


if __name__ == "__main__":
    main()
