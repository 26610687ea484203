"""Decontamination: training documents that share a word 13-gram with an eval suite are removed
(or flagged), counted and named; a 12-gram is not enough; the suite files are inputs that no
stage writes, so a clean change cannot move the yardstick."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lib.core.errors import UserError
from lib.core.io import write_jsonl
from lib.core.params import from_mapping
from lib.corpus import CorpusParams, build
from lib.eval.decontam import NgramIndex, build_index, eval_sources, words
from lib.eval.params import EvalParams, SuiteSpec, load_suite_params
from lib.eval.suite_text import file_sha256, suite_texts
from tests.hpc_text import SENTENCES

ROOT = Path(__file__).resolve().parent.parent

QUESTION = ("Which environment variable tells the OpenMP runtime whether threads may migrate "
            "between places during a parallel region?")
MC = {"id": "omp-proc-bind", "question": QUESTION,
      "choices": ["OMP_PROC_BIND", "OMP_PLACES", "OMP_DYNAMIC", "OMP_SCHEDULE"], "answer": 0,
      "rationale": "OMP_PROC_BIND controls thread affinity and whether threads may move between places."}
HELDOUT = {"id": "numa-1", "text": "On a two-socket node, memory allocated by the master thread and touched "
                                   "first by it lands on one socket, so the other socket's threads read remotely."}


def body(i: int) -> str:
    """A realistic training document: the shared HPC prose, rotated so no two are alike."""
    k = i % len(SENTENCES)
    return f"Notes {i} on tuning. " + " ".join(SENTENCES[k:] + SENTENCES[:k])


def docs_with(planted: dict[int, str], n: int = 12) -> list[dict]:
    out = []
    for i in range(n):
        text = body(i) + (" " + planted[i] if i in planted else "")
        out.append({"id": f"{i:016x}", "source": f"web/page{i}.html", "title": f"t{i}", "text": text})
    return out


@pytest.fixture
def suites(tmp_path) -> list[tuple[str, str, str]]:
    write_jsonl(tmp_path / "hpc_mc.jsonl", [MC])
    write_jsonl(tmp_path / "hpc_heldout.jsonl", [HELDOUT])
    ev = EvalParams(suites=[SuiteSpec("hpc_mc", "multiple_choice", str(tmp_path / "hpc_mc.jsonl")),
                            SuiteSpec("hpc_heldout", "text", str(tmp_path / "hpc_heldout.jsonl"))],
                    lambada_files=[str(ROOT / "data/sample/eval/lambada_hpc.jsonl")])
    return eval_sources(ev)


def corpus(tmp_path, docs, **kw) -> CorpusParams:
    p = CorpusParams(clean_docs=str(tmp_path / "docs.jsonl"), out_dir=str(tmp_path / "out"),
                     val_fraction=0.2, heldout_fraction=0.0, **kw)
    write_jsonl(p.clean_docs, docs)
    return p


def read(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def all_ids(out: Path) -> set[str]:
    return {r["id"] for name in ("train", "val", "heldout") for r in read(out / f"{name}.jsonl")}


def test_planted_question_removed_a_12_gram_stays(tmp_path, suites):
    q = QUESTION.split()
    # The question as a forum post quotes it: other case, punctuation and a line break.
    pasted = "Q: " + " ".join(q[:7]).upper() + ",\n" + " ".join(q[7:]).replace("?", "!?")
    twelve = " ".join(q[3:15])  # 12 consecutive words of the question, then something else
    assert len(words(twelve)) == 12
    docs = docs_with({3: pasted, 5: f"Someone asked {twelve} and nobody answered."})
    p = corpus(tmp_path, docs)
    metrics = build(p, seed=7, suites=suites)
    out = Path(p.out_dir)
    kept = all_ids(out)
    assert docs[3]["id"] not in kept and docs[5]["id"] in kept and len(kept) == 11
    named = read(out / "contaminated.jsonl")
    assert named == [{"id": docs[3]["id"], "source": "web/page3.html", "suite": "hpc_mc",
                      "example": "omp-proc-bind", "ngram": " ".join(words(QUESTION)[:13]),
                      "action": "removed"}]
    assert metrics["decontam"] == {"ngram": 13, "suite_ngrams": metrics["decontam"]["suite_ngrams"],
                                   "contaminated": 1, "removed": 1}
    assert metrics["decontam"]["suite_ngrams"] > 0
    assert metrics["train"]["docs"] + metrics["val"]["docs"] == 11


def test_flag_keeps_the_document_and_names_it_and_off_checks_nothing(tmp_path, suites):
    docs = docs_with({2: HELDOUT["text"]})
    p = corpus(tmp_path, docs, decontam="flag")
    metrics = build(p, seed=7, suites=suites)
    assert docs[2]["id"] in all_ids(Path(p.out_dir))
    (row,) = read(Path(p.out_dir) / "contaminated.jsonl")
    assert (row["suite"], row["example"], row["action"]) == ("hpc_heldout", "numa-1", "flagged")
    assert metrics["decontam"]["contaminated"] == 1 and metrics["decontam"]["removed"] == 0
    p = corpus(tmp_path, docs, decontam="off")
    assert build(p, seed=7, suites=suites)["decontam"]["contaminated"] == 0


def test_lambada_passage_in_a_document_is_found(tmp_path, suites):
    """eval.lambada_files count too (records without an id are named by line)."""
    lines = (ROOT / "data/sample/eval/lambada_hpc.jsonl").read_text().splitlines()
    passage = json.loads(lines[9])["text"]
    p = corpus(tmp_path, docs_with({4: passage}))
    build(p, seed=7, suites=suites)
    (row,) = read(Path(p.out_dir) / "contaminated.jsonl")
    assert (row["suite"], row["example"]) == ("lambada_hpc", "line 10")
    assert row["ngram"] in " ".join(words(passage))


def test_index_reports_each_distinct_ngram_and_skips_short_fields():
    index = NgramIndex(3)
    index.add("s", "a", "MPI ranks exchange halo cells")
    index.add("s", "b", "too short")  # fewer than n words: nothing indexed
    assert len(index) == 3 and "too" not in index.vocab
    hits = list(index.matches("Our MPI ranks exchange halo cells; MPI ranks exchange again."))
    assert [h.ngram for h in hits] == ["mpi ranks exchange", "ranks exchange halo", "exchange halo cells"]
    assert index.first("ranks and halo cells") is None


def test_real_documents_flagged_exactly_where_the_phrase_occurs(tmp_path):
    """On real third-party HTML (Debian's mpich-doc man pages): a 13-word sentence taken from one
    page as a suite item flags exactly the pages whose normalised text contains it."""
    from tests.test_clean_real_docs import cleaned, need
    pages = [cleaned(path) for path in need("mpich")]
    docs = [{"id": f"{i:016x}", "source": d["source"], "text": d["text"]}
            for i, d in enumerate(pages) if d["reason"] is None]
    assert len(docs) >= 10
    ws = words(docs[0]["text"])
    phrase = " ".join(ws[len(ws) // 2: len(ws) // 2 + 13])  # from the middle of the first page
    write_jsonl(tmp_path / "mc.jsonl", [{"id": "q1", "question": phrase, "choices": ["a", "b", "c", "d"],
                                         "answer": 0, "rationale": "x"}])
    expected = {d["id"] for d in docs if f" {phrase} " in " " + " ".join(words(d["text"])) + " "}
    p = corpus(tmp_path, docs)
    metrics = build(p, seed=0, suites=[("mc", str(tmp_path / "mc.jsonl"), "eval.suites[0].path")])
    named = {r["id"] for r in read(Path(p.out_dir) / "contaminated.jsonl")}
    assert docs[0]["id"] in named and named == expected
    assert metrics["decontam"]["removed"] == len(expected)
    assert not (named & all_ids(Path(p.out_dir)))


def test_suite_file_mistakes_are_one_line_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"eval.suites\[1\].path: .*nope.jsonl not found"):
        list(suite_texts(tmp_path / "nope.jsonl", "eval.suites[1].path"))
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    with pytest.raises(UserError, match=r"bad.jsonl:2"):
        build_index([("bad", str(tmp_path / "bad.jsonl"), "eval.suites[0].path")], 13)


def test_suite_texts_reads_any_kind_generically(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [MC, {"id": "g1", "prompt": "Name the flag.", "answer": "-fopenmp"},
                                       {"id": "c1", "context": "MPI ranks call", "target": " MPI_Init"}])
    got = list(suite_texts(tmp_path / "s.jsonl", "k"))
    assert sorted(got) == sorted([("omp-proc-bind", QUESTION)] + [("omp-proc-bind", c) for c in MC["choices"]]
                   + [("omp-proc-bind", MC["rationale"]), ("g1", "Name the flag."), ("g1", "-fopenmp"),
                      ("c1", "MPI ranks call"), ("c1", " MPI_Init")])  # every string, no id, no index
    assert re.fullmatch(r"[0-9a-f]{64}", file_sha256(tmp_path / "s.jsonl"))


def test_eval_params_suites_and_the_keys_corpus_reads(tmp_path):
    ev = from_mapping(EvalParams, {"suites": [{"name": "a", "kind": "cloze", "path": "x.jsonl"}]}, "eval")
    assert ev.suites == [SuiteSpec("a", "cloze", "x.jsonl")]
    # an unknown kind is the eval stage's to refuse (lib/eval/suites/reader.py), against the registry
    with pytest.raises(UserError, match="two suites named a"):
        from_mapping(EvalParams, {"suites": [{"name": "a", "kind": "text", "path": "x"}] * 2}, "eval")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"eval": {"suites": [{"name": "mine", "kind": "text", "path": "m.jsonl"}],
                                               "batch_size": "not a number"}}))
    ev = load_suite_params(str(params))  # other eval keys are the eval stage's to check
    assert [s.name for s in ev.suites] == ["mine"]
    # the auto suite is the corpus stage's own output: never decontaminated against
    ev = EvalParams(suites=[SuiteSpec("d", "cloze", "data/corpus/domain_cloze.jsonl"),
                            SuiteSpec("m", "text", "m.jsonl")], lambada_files=["l/lam.jsonl"])
    assert eval_sources(ev, skip=[CorpusParams().cloze_path]) == [
        ("m", "m.jsonl", "eval.suites[1].path"), ("lam", "l/lam.jsonl", "eval.lambada_files[0]")]


def test_suite_inputs_do_not_depend_on_scrape_clean_or_corpus():
    """Every suite params.yaml lists is a file no stage writes, so no scrape, clean or corpus
    change can touch it (DVC writes only declared outs); the one exception is the corpus stage's
    auto suite, whose hash eval records beside its scores. The corpus stage declares the eval keys
    and fixed suite files it reads, so editing a suite reruns decontamination."""
    from dvc.repo import Repo
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    corpus_stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["corpus"]
    with Repo(str(ROOT)) as repo:
        outs = {o.def_path: stage.addressing for stage in repo.index.stages for o in stage.outs}
    auto = CorpusParams(**params["corpus"]).cloze_path.as_posix()
    paths = [s["path"] for s in params["eval"]["suites"]] + params["eval"]["lambada_files"]
    assert auto in paths
    for path in paths:
        writers = sorted(stage for out, stage in outs.items() if path == out or path.startswith(out + "/"))
        assert writers == (["corpus"] if path == auto else []), (path, writers)
        if path != auto:
            assert any(path == d or path.startswith(d.rstrip("/") + "/") for d in corpus_stage["deps"]), path
    assert {"eval.suites", "eval.lambada_files"} <= set(corpus_stage["params"])
