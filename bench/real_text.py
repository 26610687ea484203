"""Real-text corpora for benchmarks, written by others and packed by our own code.

Two corpora (``--corpus``): ``debian``, the benches' tuning corpus, and ``books``, the reporting
corpus (public-domain books as plain-text files in a folder, by default /work/data/books: Project
Gutenberg eBooks and Shakespeare; ``--books-dir`` for another). A book is cut into documents of
about ``BOOK_CHUNK`` bytes at paragraph breaks (a handful of whole books cannot be split by a hash
of content into train and val), Project Gutenberg's licence header and footer are dropped, and the
chunks then take the same path as the Debian pages below.

The text is the HTML documentation that Debian ships (Python 3.11's library reference and
tutorials, Node.js's API docs, MPICH, Slurm, hwloc, Valgrind): plain English technical prose that
this project did not write. Pages go through our HTML extraction (lib.clean.html), a content-hash
split (lib.corpus.split_key), a SentencePiece tokenizer trained by lib.tokenizer, and lib.data.pack's
shards, exactly as the pipeline would handle them. The prepared corpus is cached under
``.cache/bench/real_text/`` (git-ignored) and rebuilt only when the sources or the settings change.

    apt-get install -y --no-install-recommends python3.11-doc nodejs-doc   # if absent
    uv run python -m bench.real_text                                       # prepares, prints the meta
    uv run python -m bench.real_text --corpus books                        # the books instead
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
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
BOOKS = Path("/work/data/books")
BOOK_CHUNK = 20_000  # bytes per book document: ~230 documents from 4.5 MB, so the val split holds several
BOOK_VAL_FRACTION = 0.05
GUTENBERG = re.compile(r"\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG.*?\*\*\*(.*?)\*\*\* ?END OF (?:THE|THIS) "
                       r"PROJECT GUTENBERG", re.S)
CORPORA = ("debian", "books")


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


def book_files(books: Path = BOOKS) -> list[Path]:
    files = sorted(books.glob("*.txt")) if books.is_dir() else []
    return [p for p in files if p.name != "SOURCES.txt"]


def book_docs(files: list[Path], chunk: int = BOOK_CHUNK) -> list[dict]:
    """Each book without Project Gutenberg's header and footer, cut at paragraph breaks into
    documents of about ``chunk`` bytes."""
    docs = []
    for p in files:
        text = p.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        body = GUTENBERG.search(text)
        paragraphs = re.split(r"\n\s*\n", body.group(1) if body else text)
        part: list[str] = []
        for para in paragraphs + [None]:
            if para is None or (part and sum(len(q) for q in part) >= chunk):
                doc = "\n\n".join(q.strip() for q in part if q.strip())
                if len(doc) >= 500:
                    docs.append({"id": hashlib.sha256(doc.encode()).hexdigest()[:16], "source": p.name, "text": doc})
                part = []
            if para is not None:
                part.append(para)
    return docs


def prepare(vocab_size: int = 8192, cache: Path = CACHE, workers: int = 2, corpus: str = "debian",
            books: Path = BOOKS) -> Path:
    """The packed corpus directory (``shards/{train,val}``, ``tokenizer/``, ``meta.json``)."""
    if corpus not in CORPORA:
        raise UserError(f"--corpus {corpus!r}: expected one of {', '.join(CORPORA)}")
    files = html_files() if corpus == "debian" else book_files(books)
    if not files:
        raise UserError("no Debian HTML documentation found; apt-get install python3.11-doc nodejs-doc"
                        if corpus == "debian" else f"{books}: no .txt books found; put plain-text books there "
                        f"or pass --books-dir")
    key = fingerprint(files, vocab_size)
    out = cache / (f"v{vocab_size}-{key[:12]}" if corpus == "debian" else f"books-v{vocab_size}-{key[:12]}")
    if (out / "meta.json").exists():
        return out
    docs = extract_docs(files) if corpus == "debian" else book_docs(files)
    text_bytes = sum(len(d["text"].encode()) for d in docs)
    if corpus == "debian" and text_bytes < MIN_BYTES:
        raise UserError(f"only {text_bytes / 1e6:.1f} MB of text from {len(files)} pages; install more "
                        f"documentation packages (the benchmark wants >= {MIN_BYTES / 1e6:.0f} MB)")
    fraction = VAL_FRACTION if corpus == "debian" else BOOK_VAL_FRACTION
    with atomic_path(out) as tmp:
        (tmp / "corpus").mkdir(parents=True)
        val = [d for d in docs if split_key(d["text"], SEED) < fraction]
        train = [d for d in docs if split_key(d["text"], SEED) >= fraction]
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
        summary = {"corpus": corpus, "pages": len(files), "docs": len(docs), "train_docs": len(train),
                   "val_docs": len(val), "text_bytes": text_bytes,
                   "sources": SOURCES if corpus == "debian" else [p.name for p in files], "vocab_size": vocab_size,
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=CORPORA, default="debian")
    ap.add_argument("--books-dir", type=Path, default=BOOKS)
    args = ap.parse_args()
    print(json.dumps(json.loads((prepare(corpus=args.corpus, books=args.books_dir) / "meta.json").read_text()),
                     indent=1))
