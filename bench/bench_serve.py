"""The server under load: 16 concurrent streaming chat clients against the same 16 requests sent
one after another, through `hpc-lm serve` in its own process, measured in one run.

Every request is greedy with a fixed max_tokens, so the concurrent answers must equal the
sequential ones token for token (the batch changes speed, never text). Reported: aggregate
completion tokens/s of each way and their ratio (what continuous batching buys), and p50/p95 time
to first token. Rounds alternate sequential and concurrent after a warm-up, so a load change on a
shared machine hits both alike; the ratios are medians over rounds. Besides wall-clock tokens/s,
each round reports tokens per CPU-second of the server process, which other load moves less.

Without --model it serves the default params' model shape (params.yaml pretrain.model, vocab from
a tokenizer trained on bench/real_text.py's Debian documentation) with random weights. Two
settings differ, because random weights would otherwise only ever repeat the prompt's last token
(the <|assistant|> marker, which decodes to no text): zero-initialised projections (every block the
identity) are off, and the output head is untied from the embedding.

    uv run python -m bench.bench_serve                         # prints one JSON object
    uv run python -m bench.bench_serve --model models/sft --tokenizer models/tokenizer
"""
from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = [
    "What is false sharing?", "How does MPI_Allreduce work?", "What is a NUMA node?",
    "Explain OpenMP's parallel for.", "What does Slurm's sbatch do?", "Why do cache lines matter?",
    "What is a CUDA warp?", "How do I profile an MPI program?", "What is strong scaling?",
    "What is weak scaling?", "How does hwloc describe a machine?", "What is a reduction?",
    "When should I use MPI_Isend?", "What is memory bandwidth?", "What is a GPU kernel?",
    "How do threads share a loop?",
]


def default_model(root: Path) -> tuple[Path, Path]:
    """A model directory of the default shape with random weights, and its tokenizer."""
    import torch
    import yaml

    from bench.real_text import prepare
    from lib.model.checkpoint import save_model
    from lib.model.config import ModelConfig
    from lib.model.gpt import GPT
    from lib.tokenizer import Tokenizer

    params = yaml.safe_load((Path(__file__).resolve().parent.parent / "params.yaml").read_text())
    tok_dir = prepare(params["tokenizer"]["vocab_size"]) / "tokenizer"
    tokenizer = Tokenizer.load(tok_dir)
    torch.manual_seed(0)
    cfg = ModelConfig(**{**params["pretrain"]["model"], "zero_init_proj": False, "tie_embeddings": False,
                         "vocab_size": tokenizer.vocab_size})
    save_model(root / "model", GPT(cfg).eval(), tokenizer.sha256, {"stage": "bench"})
    return root / "model", tok_dir


def ask(port: int, question: str, max_tokens: int) -> dict:
    """One streaming chat request; its text, token count, time to first token and total time."""
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": question}], "stream": True,
                       "temperature": 0, "max_tokens": max_tokens, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    text, first, tokens = [], None, 0
    for line in r:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for choice in chunk.get("choices", []):
            if choice["delta"].get("content"):
                first = first if first is not None else time.perf_counter() - start
                text.append(choice["delta"]["content"])
    conn.close()
    return {"text": "".join(text), "tokens": tokens, "ttft": first or 0.0, "seconds": time.perf_counter() - start}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_round(port: int, pid: int, questions: list[str], max_tokens: int, concurrent_: bool) -> dict:
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    if concurrent_:
        with concurrent.futures.ThreadPoolExecutor(len(questions)) as pool:
            answers = list(pool.map(lambda q: ask(port, q, max_tokens), questions))
    else:  # each request's TTFT is measured from its own start, as a client waiting in line would not
        answers = [ask(port, q, max_tokens) for q in questions]
    wall = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    tokens = sum(a["tokens"] for a in answers)
    ttft = sorted(a["ttft"] for a in answers)
    return {"answers": answers, "tokens": tokens, "seconds": round(wall, 3), "tokens_per_s": round(tokens / wall, 1),
            "tokens_per_server_cpu_s": round(tokens / max(cpu, 1e-3), 1),
            "ttft_p50_s": round(statistics.median(ttft), 4),
            "ttft_p95_s": round(ttft[min(len(ttft) - 1, round(0.95 * (len(ttft) - 1)))], 4)}


def start_server(model: Path, tokenizer: Path, port: int, threads: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lib.cli.serve", "--model", str(model), "--tokenizer", str(tokenizer),
           "--name", "bench", "--port", str(port), "--threads", str(threads)]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read()}")
    proc.kill()
    raise RuntimeError("the server did not start in 120 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a model directory (default: the default shape, random weights)")
    ap.add_argument("--tokenizer", default="models/tokenizer")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="the server's torch threads (0: torch's default)")
    args = ap.parse_args()
    from tests.serve_fixtures import free_port

    questions = (QUESTIONS * (args.clients // len(QUESTIONS) + 1))[:args.clients]
    with tempfile.TemporaryDirectory() as tmp:
        model, tok = (Path(args.model), Path(args.tokenizer)) if args.model else default_model(Path(tmp))
        port = free_port()
        proc = start_server(model, tok, port, args.threads)
        try:
            run_round(port, proc.pid, questions[:2], args.max_tokens, False)   # warm-up: both paths once
            run_round(port, proc.pid, questions[:4], args.max_tokens, True)
            rounds = [(run_round(port, proc.pid, questions, args.max_tokens, False),
                       run_round(port, proc.pid, questions, args.max_tokens, True)) for _ in range(args.rounds)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    reference = [a["text"] for a in rounds[0][0]["answers"]]
    same = all([a["text"] for a in r["answers"]] == reference for pair in rounds for r in pair)
    if not all(reference):
        raise SystemExit("some answers have no text: the comparison would prove nothing")
    strip = lambda r: {k: v for k, v in r.items() if k != "answers"}  # noqa: E731
    print(json.dumps({
        "clients": args.clients, "max_tokens": args.max_tokens, "model": str(args.model or "default shape, random"),
        "threads": args.threads or os.cpu_count(), "same_text_as_sequential": same,
        "example_answer": reference[0][:80],
        "sequential": [strip(s) for s, _ in rounds], "concurrent": [strip(c) for _, c in rounds],
        "throughput_ratio": round(statistics.median(c["tokens_per_s"] / s["tokens_per_s"] for s, c in rounds), 2),
        # the server's CPU time per token is what batching saves, and on a shared machine it
        # moves less with other processes' load than wall time does
        "cpu_efficiency_ratio": round(statistics.median(
            c["tokens_per_server_cpu_s"] / s["tokens_per_server_cpu_s"] for s, c in rounds), 2),
    }, indent=1))


if __name__ == "__main__":
    main()
