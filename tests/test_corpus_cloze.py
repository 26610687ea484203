"""The automatic domain cloze suite: passages from held-out documents (a hashed slice, or the
sources the user names) that end on a mined domain term; deterministic, capped, never sharing
an n-gram with a training document; on the sample and on real third-party pages."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lib.core.errors import UserError
from lib.core.io import write_jsonl
from lib.corpus import CorpusParams, build
from lib.corpus_cloze import MIN_CONTEXT_WORDS, Candidates, Passage, passages, prose_blocks, term_pattern
from tests.hpc_text import SENTENCES

TERMS = ["MPI_Allreduce", "OpenMP", "NUMA", "MPI", "CUDA"]
DOC = """# Reductions in MPI

A global sum over all ranks is the most common collective in a solver. Each rank holds a partial
value and every rank needs the total before the next iteration can start, so the call sits on the
critical path of every step. The standard offers one routine that combines the values and returns
the result everywhere, and solvers call MPI_Allreduce. It is also the call that limits scaling
first.

```c
MPI_Allreduce(&local, &global, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
```

Threads inside one rank share memory, so the reduction over threads is written with a clause of
the loop directive rather than with messages. Placing those threads close to their data matters
on machines with several memory controllers per node, where remote accesses are slower, which is
what the term NUMA describes. See also AVX-512 and x.NUMA for details.
"""


def words(text: str) -> int:
    return len(text.split())


def flat(text: str) -> str:
    return " ".join(text.split())


def test_passages_end_on_a_term_inside_prose_and_never_overlap():
    got = list(passages(DOC, term_pattern(TERMS), 200))
    assert [p.target for p in got] == [" MPI_Allreduce", " NUMA"]
    for p in got:
        assert MIN_CONTEXT_WORDS <= words(p.context) < 200
        assert (p.context + p.target) in flat(DOC)  # a real prefix of the text, cut before the term
        assert "#" not in p.context and "MPI_SUM" not in p.context  # no heading, no code
    # the second passage starts after the first one's sentence: no shared text
    assert not set(got[0].context.split(". ")) & set(got[1].context.split(". "))
    # AVX-512 and x.NUMA are not targets: a target ends a word and is not part of a name
    assert all(not p.context.endswith(("AVX-512 and", "x.")) for p in got)


def test_short_contexts_and_long_windows():
    assert list(passages("Use MPI here. Then MPI again.", term_pattern(TERMS), 200)) == []
    long = " ".join(SENTENCES * 3) + " The library is called MPI."
    (p,) = passages(long, term_pattern(TERMS), 60)
    assert words(p.context) < 60 and p.context.endswith("The library is called")
    assert prose_blocks("a\n    code\nb\n| t |\nc\n\nd") and list(prose_blocks("x\n```\ny\n```\nz")) == ["x", "z"]


def test_candidates_keep_the_smallest_keys_once():
    ps = [Passage(f"{k:064x}", f"c{k}", " T") for k in (9, 3, 7, 3, 1, 8)]
    c = Candidates(3)
    c.add(ps)
    assert [p.key for p in c.sorted()] == [f"{k:064x}" for k in (1, 3, 7)] and c.seen == 6
    assert Candidates(0).sorted() == []


def hpc_docs(n: int) -> list[dict]:
    """Documents of realistic prose, each with a few domain terms, no two sharing a 13-gram
    (every sentence carries the document's number)."""
    out = []
    for i in range(n):
        k = i % len(SENTENCES)
        prose = " ".join(f"Case {i}: {' '.join(s.split()[:6])} ({i}) {' '.join(s.split()[6:])}"
                         for s in SENTENCES[k:] + SENTENCES[:k])
        text = (f"Part {i}. {prose} Ranks of job {i} combine partial sums with MPI_Allreduce. Threads "
                f"of process {i} are started by OpenMP. Remote memory of node {i} is slower on NUMA.")
        out.append({"id": f"{i:016x}", "source": f"docs/{'guide' if i % 5 == 0 else 'notes'}/{i}.md",
                    "title": "", "text": text})
    return out


def run(tmp_path, docs, **kw) -> tuple[dict, list[dict]]:
    p = CorpusParams(clean_docs=str(tmp_path / "docs.jsonl"), out_dir=str(tmp_path / "out"),
                     min_term_docs=1, min_term_count=1, **kw)
    write_jsonl(p.clean_docs, docs)
    metrics = build(p, seed=3)
    return metrics, [json.loads(x) for x in p.cloze_path.read_text().splitlines()]


def test_suite_from_hashed_slice_is_deterministic_capped_and_contract_shaped(tmp_path):
    docs = hpc_docs(40)
    metrics, suite = run(tmp_path, docs, heldout_fraction=0.2)
    held = {json.loads(x)["text"] for x in (tmp_path / "out/heldout.jsonl").read_text().splitlines()}
    train = (tmp_path / "out/train.jsonl").read_text()
    assert suite and metrics["domain_cloze"]["passages"] == len(suite)
    for r in suite:
        assert set(r) == {"id", "context", "target"} and r["target"] in (" MPI_Allreduce", " OpenMP", " NUMA", " MPI")
        assert any(r["context"] + r["target"] in flat(t) for t in held)
    assert len({r["id"] for r in suite}) == len(suite)
    first = (tmp_path / "out/domain_cloze.jsonl").read_bytes()
    assert run(tmp_path, docs, heldout_fraction=0.2)[1] == suite
    assert (tmp_path / "out/domain_cloze.jsonl").read_bytes() == first
    _, capped = run(tmp_path, docs, heldout_fraction=0.2, cloze_max_passages=2)
    assert capped == suite[:2]  # the cap keeps the smallest hashes, in file order
    assert json.loads(train.splitlines()[0])["text"] not in held


def test_named_heldout_sources_and_a_glob_matching_nothing(tmp_path):
    docs = hpc_docs(20)
    metrics, suite = run(tmp_path, docs, heldout_sources=["docs/guide/*"])
    held = [json.loads(x)["source"] for x in (tmp_path / "out/heldout.jsonl").read_text().splitlines()]
    assert held == [f"docs/guide/{i}.md" for i in range(0, 20, 5)] and metrics["heldout"]["docs"] == 4
    assert "docs/guide" not in (tmp_path / "out/train.jsonl").read_text() + (tmp_path / "out/val.jsonl").read_text()
    assert suite
    with pytest.raises(UserError, match=r"corpus.heldout_sources: 'guides/\*' matches no document source"):
        run(tmp_path, docs, heldout_sources=["guides/*"])


def test_passage_that_a_training_document_also_holds_is_dropped(tmp_path):
    docs = hpc_docs(12)
    _, suite = run(tmp_path, docs, heldout_sources=["docs/guide/0.md"])
    assert suite
    # a training page that quotes one passage of the held-out guide
    quoted = suite[0]["context"] + suite[0]["target"] + "."
    docs.append({"id": "f" * 16, "source": "docs/notes/quote.md", "title": "", "text": "Quoted: " + quoted})
    metrics, suite2 = run(tmp_path, docs, heldout_sources=["docs/guide/0.md"], val_fraction=0.0)  # quote in train
    assert suite[0] not in suite2 and metrics["domain_cloze"]["train_overlap"] >= 1
    assert all(r["context"] not in quoted for r in suite2)


def test_sample_documents_yield_passages(tmp_path):
    """The shipped sample, cleaned as the pipeline does: the figure the README quotes."""
    from lib.clean.config import CleanParams
    from lib.clean.pipeline import process_bytes
    files = sorted(Path("data/sample/docs/text").glob("*"))
    docs = []
    for i, f in enumerate(files):
        r = process_bytes(f.read_bytes(), {"type": "text", "source": str(f)}, CleanParams())
        if r["reason"] is None:
            docs.append({"id": f"{i:016x}", "source": str(f), "title": "", "text": r["text"]})
    metrics, suite = run(tmp_path, docs, heldout_fraction=0.5)
    assert len(suite) >= 5, metrics["domain_cloze"]


def test_real_pages_give_well_formed_passages(tmp_path):
    """Debian's slurm-wlm-doc HTML pages, cleaned by our pipeline, all held out."""
    from tests.test_clean_real_docs import cleaned, need
    docs = [{"id": f"{i:016x}", "source": d["source"], "title": "", "text": d["text"]}
            for i, d in enumerate(cleaned(p) for p in need("slurm")) if d["reason"] is None]
    p = CorpusParams(clean_docs=str(tmp_path / "docs.jsonl"), out_dir=str(tmp_path / "out"),
                     heldout_sources=["/usr/share/doc/*"], val_fraction=0.0)
    write_jsonl(p.clean_docs, docs + [{"id": "e" * 16, "source": "train-only", "title": "",
                                       "text": " ".join(SENTENCES)}])
    metrics = build(p, seed=0)
    suite = [json.loads(x) for x in p.cloze_path.read_text().splitlines()]
    terms = set(Path(p.out_dir, "terms.txt").read_text().split())
    assert len(suite) >= 50, metrics["domain_cloze"]
    texts = [flat(d["text"]) for d in docs]
    for r in suite:
        assert r["target"][0] == " " and r["target"][1:] in terms
        assert MIN_CONTEXT_WORDS <= words(r["context"]) < p.cloze_max_words
        assert not re.search(r"\s$", r["context"])
        assert any(r["context"] + r["target"] in t for t in texts)
