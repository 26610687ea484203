"""A real-text corpus for benchmarks, written by others and packed by our own code.

The text is the HTML documentation that Debian ships (Python 3.11's library reference and
tutorials, Node.js's API docs, MPICH, Slurm, hwloc, Valgrind): plain English technical prose that
this project did not write. Pages go through our HTML extraction (lib.clean.html), a content-hash
split (lib.corpus.split_key), a SentencePiece tokenizer trained by lib.tokenizer, and lib.data.pack's
shards, exactly as the pipeline would handle them. The prepared corpus is cached under
``.cache/bench/real_text/`` (git-ignored) and rebuilt only when the sources or the settings change.

    apt-get install -y --no-install-recommends python3.11-doc nodejs-doc   # if absent
    uv run python -m bench.real_text                                       # prepares, prints the meta
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.clean.html import extract_html  # noqa: E402
from lib.core.errors import UserError  # noqa: E402
from lib.core.io import atomic_path, write_jsonl  # noqa: E402
from lib.corpus import split_key  # noqa: E402
from lib.data.pack import PackParams, pack_meta, pack_split  # noqa: E402
from lib.data.shards import open_split  # noqa: E402
from lib.tokenizer import MODEL_FILE, Tokenizer  # noqa: E402
from lib.tokenizer.build import TokenizerParams, train_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench" / "real_text"
SOURCES = ["/usr/share/doc/python3.11/html", "/usr/share/doc/nodejs", "/usr/share/doc/mpich-doc",
           "/usr/share/doc/slurm-wlm", "/usr/share/doc/libhwloc-dev", "/usr/share/doc/valgrind"]
SKIP_PARTS = {"_static", "_sources", "_images", "_downloads"}  # Sphinx assets and reST copies
SKIP_NAMES = {"genindex.html", "search.html", "py-modindex.html", "genindex-all.html"}
VAL_FRACTION = 0.03
MIN_BYTES = 20_000_000  # the floor for "real text"
SEED = 1337


def html_files(sources=SOURCES) -> list[Path]:
    files = []
    for root in map(Path, sources):
        files += [p for p in root.rglob("*.html") if not SKIP_PARTS & set(p.parts) and p.name not in SKIP_NAMES
                  and not p.name.startswith("genindex-")]
    return sorted(files)


def fingerprint(files: list[Path], vocab_size: int) -> str:
    h = hashlib.sha256(f"v1 {vocab_size} {VAL_FRACTION} {SEED}".encode())
    for p in files:
        h.update(f"{p}\0{p.stat().st_size}\0".encode())
    return h.hexdigest()


def extract_docs(files: list[Path]) -> list[dict]:
    stats: Counter = Counter()
    docs = []
    for p in files:
        got = extract_html(p.read_bytes(), "text/html", stats)
        text = f"# {got.title}\n\n{got.text}".strip() if got.title else got.text.strip()
        if len(text) >= 500:  # index and redirect pages carry no prose
            docs.append({"id": hashlib.sha256(text.encode()).hexdigest()[:16], "source": str(p), "text": text})
    return docs


def prepare(vocab_size: int = 8192, cache: Path = CACHE, workers: int = 2) -> Path:
    """The packed corpus directory (``shards/{train,val}``, ``tokenizer/``, ``meta.json``)."""
    files = html_files()
    if not files:
        raise UserError("no Debian HTML documentation found; apt-get install python3.11-doc nodejs-doc")
    key = fingerprint(files, vocab_size)
    out = cache / f"v{vocab_size}-{key[:12]}"
    if (out / "meta.json").exists():
        return out
    docs = extract_docs(files)
    text_bytes = sum(len(d["text"].encode()) for d in docs)
    if text_bytes < MIN_BYTES:
        raise UserError(f"only {text_bytes / 1e6:.1f} MB of text from {len(files)} pages; install more "
                        f"documentation packages (the benchmark wants >= {MIN_BYTES / 1e6:.0f} MB)")
    with atomic_path(out) as tmp:
        (tmp / "corpus").mkdir(parents=True)
        val = [d for d in docs if split_key(d["text"], SEED) < VAL_FRACTION]
        train = [d for d in docs if split_key(d["text"], SEED) >= VAL_FRACTION]
        write_jsonl(tmp / "corpus" / "train.jsonl", train)
        write_jsonl(tmp / "corpus" / "val.jsonl", val)
        params = TokenizerParams(vocab_size=vocab_size, num_threads=workers)
        model = train_tokenizer((d["text"] for d in train), params, terms=[], seed=SEED)
        (tmp / "tokenizer").mkdir()
        (tmp / "tokenizer" / MODEL_FILE).write_bytes(model)
        tok = Tokenizer(model)
        pack = PackParams(workers=workers)
        meta = pack_meta(tok, pack)
        for split in ("train", "val"):
            meta["splits"][split] = pack_split(tmp / "corpus" / f"{split}.jsonl", tmp / "shards" / split, tok, pack)
        (tmp / "shards" / "meta.json").write_text(json.dumps(meta, indent=1))
        summary = {"pages": len(files), "docs": len(docs), "train_docs": len(train), "val_docs": len(val),
                   "text_bytes": text_bytes, "sources": SOURCES, "vocab_size": vocab_size,
                   "train_tokens": meta["splits"]["train"]["tokens"], "val_tokens": meta["splits"]["val"]["tokens"],
                   "val_text_bytes": meta["splits"]["val"]["text_bytes"]}
        (tmp / "meta.json").write_text(json.dumps(summary, indent=1))
    return out


def load_shards(out: Path) -> tuple[list, list, dict]:
    """(train shards, val shards, meta) of a prepared corpus, for the library's training windows
    and validation."""
    tok = Tokenizer((out / "tokenizer" / MODEL_FILE).read_bytes())
    train, val = (open_split(out / "shards" / split, tok.sha256) for split in ("train", "val"))
    return train, val, json.loads((out / "meta.json").read_text())


if __name__ == "__main__":
    print(json.dumps(json.loads((prepare() / "meta.json").read_text()), indent=1))
