"""Shard format: header round trip, and refusal of files that do not match meta.json or the tokenizer."""
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from lib.core.errors import UserError
from lib.core.io import write_json
from lib.data.shards import (HEADER, META_FILE, ShardWriter, concat_tokens, iter_documents, open_shard, open_split,
                        write_split)

SHA_A, SHA_B = "aa" * 32, "bb" * 32
DOCS = [[2, 10, 11, 3], [2, 12, 3], [2] + list(range(20, 1020)) + [3], [2, 500, 3]]


def make_pack(root: Path, docs=DOCS, sha=SHA_A, dtype="uint16", vocab=2048, shard_tokens=1000) -> dict:
    meta = {"vocab_size": vocab, "tokenizer_sha256": sha, "dtype": dtype, "bos_id": 2, "eos_id": 3,
            "splits": {"train": write_split(root / "train", docs, dtype, shard_tokens, vocab, sha)}}
    write_json(root / META_FILE, meta)
    return meta


def test_round_trip_and_header(tmp_path):
    meta = make_pack(tmp_path)
    shards = open_split(tmp_path / "train", SHA_A, verify=True)
    assert [len(s.tokens) for s in shards] == [s["tokens"] for s in meta["splits"]["train"]["shards"]]
    assert [list(d) for d in iter_documents(shards)] == DOCS
    assert concat_tokens(shards).tolist() == sum(DOCS, [])
    assert isinstance(shards[0].tokens, np.memmap) and shards[0].tokens.dtype == np.uint16
    raw = shards[0].path.read_bytes()[:HEADER.size]
    magic, version, code, n_tokens, n_docs, vocab, digest = HEADER.unpack(raw)
    assert (magic, version, code, n_tokens, n_docs, vocab) == (b"HPCLMTOK", 2, 1, 1009, 3, 2048)
    assert digest == bytes.fromhex(SHA_A)[:16]


def test_shard_splits_after_the_document_that_fills_it(tmp_path):
    meta = make_pack(tmp_path, shard_tokens=5)
    assert [s["docs"] for s in meta["splits"]["train"]["shards"]] == [2, 1, 1]


def test_deterministic_bytes(tmp_path):
    make_pack(tmp_path / "a")
    make_pack(tmp_path / "b")
    for a in (tmp_path / "a" / "train").iterdir():
        assert a.read_bytes() == (tmp_path / "b" / "train" / a.name).read_bytes()


def test_refuses_other_tokenizer(tmp_path):
    make_pack(tmp_path)
    with pytest.raises(UserError, match=rf"meta.json: shards were packed with tokenizer aaaaaaaaaaaa but the "
                                        rf"tokenizer given is bbbbbbbbbbbb"):
        open_split(tmp_path / "train", SHA_B)


def test_refuses_shard_from_another_pack(tmp_path):
    make_pack(tmp_path / "a", sha=SHA_A)
    make_pack(tmp_path / "b", sha=SHA_B)  # same documents, other tokenizer
    shutil.copy(tmp_path / "b" / "train" / "shard_00000.bin", tmp_path / "a" / "train" / "shard_00000.bin")
    with pytest.raises(UserError, match=r"shard_00000.bin: packed with tokenizer bbbbbbbbbbbb, not aaaaaaaaaaaa"):
        open_split(tmp_path / "a" / "train", SHA_A)


@pytest.mark.parametrize("key,value", [("vocab_size", 4096), ("dtype", "uint32")])
def test_refuses_header_meta_mismatch(tmp_path, key, value):
    make_pack(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    meta[key] = value
    write_json(tmp_path / META_FILE, meta)
    with pytest.raises(UserError, match=rf"shard_00000.bin: header says {key}=.* but .*meta.json says {value}"):
        open_split(tmp_path / "train", SHA_A)


def test_refuses_changed_and_truncated_files(tmp_path):
    make_pack(tmp_path)
    path = tmp_path / "train" / "shard_00000.bin"
    data = bytearray(path.read_bytes())
    data[HEADER.size] ^= 1  # one token changed: only the checksum can tell
    path.write_bytes(bytes(data))
    open_split(tmp_path / "train", SHA_A)
    with pytest.raises(UserError, match="shard_00000.bin: sha256 differs"):
        open_split(tmp_path / "train", SHA_A, verify=True)
    path.write_bytes(bytes(data[:-8]))
    with pytest.raises(UserError, match="shard_00000.bin: size .* does not match its header"):
        open_split(tmp_path / "train", SHA_A)
    path.write_bytes(bytes(data[:10]))
    with pytest.raises(UserError, match="shard_00000.bin: truncated shard"):
        open_shard(path)
    path.write_bytes(b"NOTASHRD" + bytes(data[8:]))
    with pytest.raises(UserError, match="not a version-2 token shard"):
        open_shard(path)


def test_refuses_missing_meta_and_split(tmp_path):
    with pytest.raises(UserError, match="meta.json: file not found"):
        open_split(tmp_path / "train")
    make_pack(tmp_path)
    with pytest.raises(UserError, match="has no split 'val'"):
        open_split(tmp_path / "val")


def test_interrupted_writer_leaves_nothing(tmp_path):
    w = ShardWriter(tmp_path / "shard_00000.bin", "uint16")
    w.add_docs(np.array([2, 5, 3]), np.array([3]))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_shard_pickles_by_path(tmp_path):
    make_pack(tmp_path)
    shard = open_split(tmp_path / "train")[1]
    assert len(pickle.dumps(shard)) < 500  # the path, not the tokens
    again = pickle.loads(pickle.dumps(shard))
    assert np.array_equal(again.tokens, shard.tokens) and isinstance(again.tokens, np.memmap)
