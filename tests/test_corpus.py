"""Corpus: content-hash split (stable under additions), at least one val doc, term mining."""
from __future__ import annotations

import json

import pytest

from lib.corpus import CorpusParams, assign_splits, build, doc_terms, is_term, split_key
from lib.core.errors import UserError
from lib.core.io import write_jsonl


def doc(i: int, extra: str = "") -> dict:
    text = f"Document {i} explains OpenMP and MPI_Allreduce on NUMA nodes. {extra}"
    return {"id": f"{i:016x}", "source": f"d{i}", "title": f"t{i}", "text": text, "type": "text",
            "chars": len(text), "words": len(text.split())}


def ids(path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("token,expected", [
    ("OpenMP", True), ("cudaMemcpy", True), ("MPI_Allreduce", True), ("NUMA", True),
    ("AVX512", True), ("InfiniBand", True), ("omp_get_wtime", True),
    ("The", False), ("memory", False), ("Memory", False), ("A", False), ("x86", False),
])
def test_term_shapes(token, expected):
    assert is_term(token) is expected


def test_doc_terms_counts_identifiers_not_headings_or_paths():
    p = CorpusParams()
    counts = doc_terms("# OVERVIEW\nCall MPI_Allreduce, then cudaMemcpy. MPI MPI x.GPU file_name.txt", p)
    assert counts == {"MPI_Allreduce": 1, "cudaMemcpy": 1, "MPI": 2}


def test_split_is_by_content_and_stable_when_documents_are_added(tmp_path):
    p = CorpusParams(val_fraction=0.3, heldout_fraction=0.2, min_term_count=2, min_term_docs=2, max_terms=3,
                     clean_docs=str(tmp_path / "docs.jsonl"), out_dir=str(tmp_path / "out"))
    write_jsonl(p.clean_docs, [doc(i) for i in range(40)])
    metrics = build(p, seed=1)
    out = tmp_path / "out"
    train, val, held = ids(out / "train.jsonl"), ids(out / "val.jsonl"), ids(out / "heldout.jsonl")
    assert sorted(train + val + held) == sorted(d["id"] for d in (doc(i) for i in range(40)))
    assert len(set(train + val + held)) == 40  # three disjoint sets
    assert 4 <= len(val) <= 20 and 2 <= len(held) <= 16
    assert metrics["train"]["docs"] == len(train) and metrics["val"]["docs"] == len(val)
    assert metrics["heldout"]["docs"] == len(held)
    assert metrics["val"]["chars"] == sum(doc(int(i, 16))["chars"] for i in val)
    write_jsonl(p.clean_docs, [doc(i) for i in range(60)])
    build(p, seed=1)
    train2, val2, held2 = ids(out / "train.jsonl"), ids(out / "val.jsonl"), ids(out / "heldout.jsonl")
    assert set(train) <= set(train2) and set(val) <= set(val2) and set(held) <= set(held2)
    assert (out / "terms.txt").read_text() == "MPI_Allreduce\nNUMA\nOpenMP\n"
    build(p, seed=2)
    assert ids(out / "val.jsonl") != val2 and ids(out / "heldout.jsonl") != held2  # the seed is part of the key
    # the held-out key is not the val key: with no held-out share, val is exactly what it was
    build(CorpusParams(**{**p.__dict__, "heldout_fraction": 0.0}), seed=1)
    assert set(val2) <= set(ids(out / "val.jsonl")) and ids(out / "heldout.jsonl") == []


def test_terms_sorted_by_count_then_name_with_thresholds(tmp_path):
    docs = [doc(0, "CUDA CUDA CUDA SYCL"), doc(1, "CUDA SYCL HIP"), doc(2, "CUDA HIP Kokkos")]
    p = CorpusParams(min_term_count=2, min_term_docs=2, max_terms=10,
                     clean_docs=str(tmp_path / "d.jsonl"), out_dir=str(tmp_path / "o"))
    write_jsonl(p.clean_docs, docs)
    build(p, seed=0)
    terms = (tmp_path / "o" / "terms.txt").read_text().split()
    assert terms == ["CUDA", "MPI_Allreduce", "NUMA", "OpenMP", "HIP", "SYCL"]


def test_at_least_one_val_and_one_train():
    assert assign_splits([0.9, 0.8, 0.7], 0.1) == ["train", "train", "val"]
    assert assign_splits([0.01, 0.02], 0.5) == ["val", "train"]
    assert assign_splits([0.5], 0.1) == ["train"]
    assert assign_splits([0.5, 0.6], 0.0) == ["train", "train"]
    assert 0 <= split_key("text", 0) < 1 and split_key("text", 0) == split_key("text", 0)


def test_missing_or_empty_input_is_a_user_error(tmp_path):
    p = CorpusParams(clean_docs=str(tmp_path / "none.jsonl"), out_dir=str(tmp_path / "o"))
    with pytest.raises(UserError, match="run the clean stage first"):
        build(p, seed=0)
    (tmp_path / "none.jsonl").write_text("")
    with pytest.raises(UserError, match="no documents"):
        build(p, seed=0)


def test_held_out_leaves_training_documents_and_params_are_checked(tmp_path):
    from lib.core.params import ParamsError, from_mapping
    p = CorpusParams(clean_docs=str(tmp_path / "d.jsonl"), out_dir=str(tmp_path / "o"), heldout_sources=["d*"])
    write_jsonl(p.clean_docs, [doc(i) for i in range(3)])
    with pytest.raises(UserError, match="no document is left for training"):
        build(p, seed=0)
    # a tiny share still holds out one of three documents, chosen by content
    p = CorpusParams(clean_docs=p.clean_docs, out_dir=p.out_dir, heldout_fraction=0.01, val_fraction=0.0)
    assert build(p, seed=0)["heldout"]["docs"] == 1
    with pytest.raises(ParamsError, match="corpus.heldout_fraction: must be in"):
        from_mapping(CorpusParams, {"val_fraction": 0.5, "heldout_fraction": 0.5}, "params.yaml: corpus")
    with pytest.raises(ParamsError, match="corpus.decontam: expected one of"):
        from_mapping(CorpusParams, {"decontam": "drop"}, "params.yaml: corpus")
