"""Pack: document boundaries, byte-identical shards for any worker count, the uint16 guard,
atomic output, and errors that name the file and line."""
import json
import random
from pathlib import Path

import numpy as np
import pytest

from lib.core.errors import UserError
from lib.data.pack import PackParams, pack_meta, pack_split
from lib.core.params import ParamsError, from_mapping
from lib.data.shards import META_FILE, dtype_for_vocab, file_sha256, iter_documents, open_split
from lib.core.io import write_json
from lib.tokenizer import Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

WORDS = "the node runs ranks on sockets and threads share caches while OpenMP loops scale".split()


def make_docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40)))
                      for _ in range(rng.randint(1, 6))) + rng.choice(["", "\n", " ▁ é😀"]) for _ in range(n)]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer(train_tokenizer(make_docs(200), TokenizerParams(vocab_size=300), ["OpenMP"], seed=0))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    docs = make_docs(400, seed=1)
    path = tmp_path_factory.mktemp("corpus") / "train.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(docs)), encoding="utf-8")
    return path, docs


def pack(tok, corpus_file, out: Path, **kw) -> dict:
    chunk_bytes = kw.pop("chunk_bytes", 1 << 20)
    params = PackParams(**{"shard_tokens": 2048, "workers": 1, **kw})
    meta = pack_meta(tok, params)
    meta["splits"]["train"] = pack_split(corpus_file, out / "train", tok, params, chunk_bytes=chunk_bytes)
    write_json(out / META_FILE, meta)
    return meta


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "train").iterdir())}


def test_documents_round_trip_with_bos_eos(tok, corpus, tmp_path):
    path, docs = corpus
    meta = pack(tok, path, tmp_path)
    shards = open_split(tmp_path / "train", tok.sha256, verify=True)
    packed = list(iter_documents(shards))
    assert len(packed) == len(docs) == meta["splits"]["train"]["docs"]
    for ids, text in zip(packed, docs):
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.bos_id not in ids[1:] and tok.eos_id not in ids[:-1]
        assert tok.decode(ids[1:-1]) == text
    split = meta["splits"]["train"]
    assert split["tokens"] == sum(len(d) for d in packed) == sum(len(s.tokens) for s in shards)
    assert split["text_bytes"] == sum(len(t.encode("utf-8")) for t in docs)
    assert len(split["shards"]) > 3  # several shards, each closed on a document boundary
    for entry, shard in zip(split["shards"], shards):
        assert entry["sha256"] == file_sha256(shard.path)
        assert shard.offsets[0] == 0 and shard.offsets[-1] == len(shard.tokens)
        assert entry["tokens"] - (shard.offsets[-1] - shard.offsets[-2]) < 2048 <= entry["tokens"] or entry is split["shards"][-1]
    assert meta["vocab_size"] == tok.vocab_size and meta["tokenizer_sha256"] == tok.sha256


def test_shards_identical_for_any_workers_and_chunking(tok, corpus, tmp_path):
    path, _ = corpus
    pack(tok, path, tmp_path / "a", workers=1)
    pack(tok, path, tmp_path / "b", workers=2, chunk_bytes=4096)  # many chunks through the pool
    pack(tok, path, tmp_path / "c", workers=1, chunk_bytes=777)
    a = shard_bytes(tmp_path / "a")
    assert a == shard_bytes(tmp_path / "b") == shard_bytes(tmp_path / "c")
    assert (tmp_path / "a" / META_FILE).read_bytes() == (tmp_path / "b" / META_FILE).read_bytes()


def test_uint16_guard():
    assert dtype_for_vocab(65536, "uint16") == np.uint16
    with pytest.raises(UserError, match="vocab_size 70000 does not fit in uint16.*pack.dtype: uint32"):
        dtype_for_vocab(70000, "uint16")
    assert dtype_for_vocab(70000, "uint32") == np.uint32


def test_pack_refuses_a_vocab_too_large_before_writing(tok, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(tok, "vocab_size", 70000)
    with pytest.raises(UserError, match="does not fit in uint16"):
        pack_split(corpus[0], tmp_path / "train", tok, PackParams(dtype="uint16", workers=1))
    assert not (tmp_path / "train").exists()


def test_pack_dtype_auto_follows_the_vocab_size():
    from lib.data.pack import token_dtype
    assert token_dtype(2048, "auto") == "uint16" and token_dtype(65536, "auto") == "uint16"
    assert token_dtype(65537, "auto") == "uint32" and token_dtype(128256, "auto") == "uint32"
    assert PackParams().dtype == "auto"


def test_uint32_shards(tok, corpus, tmp_path):
    pack(tok, corpus[0], tmp_path, dtype="uint32")
    shards = open_split(tmp_path / "train", tok.sha256)
    assert shards[0].tokens.dtype == np.uint32
    assert tok.decode(list(iter_documents(shards))[0][1:-1]) == corpus[1][0]


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_line_names_file_and_line_and_leaves_no_shard(tok, tmp_path, workers):
    path = tmp_path / "train.jsonl"
    good = "".join(json.dumps({"text": t}) + "\n" for t in make_docs(300))
    path.write_text(good + "{not json\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"train.jsonl:301: invalid JSON"):
        pack(tok, path, tmp_path / "out", workers=workers, chunk_bytes=4096)
    # shards finished before the error were whole files, but the one being written is gone, and the
    # stage wraps the whole directory in atomic_path so none of them appears as a pack
    leftovers = [p.name for p in (tmp_path / "out" / "train").iterdir()]
    assert all(name.startswith("shard_") and name.endswith(".bin") for name in leftovers)
    path.write_text(good + json.dumps({"title": "no text"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"train.jsonl:301: expected an object with a string 'text'"):
        pack(tok, path, tmp_path / "out2", workers=workers)


def test_empty_split(tok, tmp_path):
    (tmp_path / "val.jsonl").write_text("", encoding="utf-8")
    info = pack_split(tmp_path / "val.jsonl", tmp_path / "val", tok, PackParams(workers=2))
    assert info == {"shards": [], "tokens": 0, "docs": 0, "text_bytes": 0}


def test_pack_params_validation():
    with pytest.raises(ParamsError, match="pack.dtype"):
        from_mapping(PackParams, {"dtype": "int8"}, "params.yaml: pack")
    with pytest.raises(ParamsError, match="pack.workers"):
        from_mapping(PackParams, {"workers": 0}, "params.yaml: pack")
