"""Fixed eval suites: reading and validating suite files (one clear line per mistake), and the
four kinds' batched scorers checked against one-example-at-a-time references and against
lm-evaluation-harness's own definitions."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib.core.errors import UserError
from lib.eval.lambada import LambadaItem, batch_rows, encode_pair, evaluate_lambada, read_lambada
from lib.eval.suites import KINDS, ScoreSettings
from lib.eval.suites import generation, multiple_choice, text
from lib.eval.suites.reader import read_suite
from tests.fixtures_tiny import tiny_model, tiny_tokenizer

MC = [{"id": "q1", "question": "Which MPI call sums a value over every rank and gives the sum to all of them?",
       "choices": ["MPI_Allreduce", "MPI_Bcast", "MPI_Scatter", "MPI_Barrier"], "answer": 0, "rationale": "r"},
      {"id": "q2", "question": "What does OpenMP share between the threads of a parallel region by default?",
       "choices": ["nothing", "the loop iterations", "variables declared outside the region", "the stack"],
       "answer": 2, "rationale": "r"},
      {"id": "q3", "question": "Where does a CUDA kernel run?", "choices": ["on the host", "on the GPU"],
       "answer": 1, "rationale": "r"}]


def write(path, records, raw_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "".join(raw_lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok.vocab_size, seed=3, max_seq_len=48, spread=8.0)


def settings(batch_size=5, **kw):
    return ScoreSettings(batch_size=batch_size, **kw)


# --- reading: one line per mistake ------------------------------------------------------------

def test_reads_a_valid_suite_and_hashes_its_bytes(tmp_path):
    path = write(tmp_path / "mc.jsonl", MC)
    suite = read_suite("mc", "multiple_choice", path, "eval.suites[0]")
    assert [r["id"] for r in suite.records] == ["q1", "q2", "q3"]
    import hashlib
    assert suite.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert suite.key == f"mc@{suite.sha256[:8]}"
    assert suite.identity() == {"kind": "multiple_choice", "sha256": suite.sha256, "examples": 3}


@pytest.mark.parametrize("raw,expected", [
    ('{"id": "x", "question": "q", "choices": ["a", "b"], "answer": 1\n', ":4: invalid JSON"),
    ('{"id": "q1", "question": "q", "choices": ["a", "b"], "answer": 1}\n', ":4: duplicate id 'q1' (first at line 1)"),
    ('{"id": "x", "question": "q", "choices": ["a", "b", "c", "d"], "answer": 4}\n',
     ":4: answer index 4 is out of range for 4 choices (0 to 3)"),
    ('{"id": "x", "question": "q", "choices": ["a", "b"], "answer": -1}\n', ":4: answer index -1 is out of range"),
    ('{"id": "x", "question": "q", "choices": ["a", "b"]}\n', ":4: missing key 'answer'"),
    ('{"id": 7, "question": "q", "choices": ["a", "b"], "answer": 0}\n', ":4: 'id' must be a string, got int"),
    ('{"id": "x", "question": "q", "choices": ["a", "a"], "answer": 0}\n', ":4: 'choices' has the same option twice"),
    ('["not", "an", "object"]\n', ":4: expected a JSON object"),
])
def test_bad_records_stop_with_file_and_line(tmp_path, raw, expected):
    path = write(tmp_path / "mc.jsonl", MC, [raw])
    with pytest.raises(UserError) as err:
        read_suite("mc", "multiple_choice", path, "eval.suites[0]")
    msg = str(err.value)
    assert msg.startswith(str(path)) and expected in msg and "\n" not in msg


def test_missing_file_names_its_params_key(tmp_path):
    with pytest.raises(UserError, match=r"^eval\.suites\[1\]\.path: .*nope\.jsonl: suite file not found"):
        read_suite("x", "text", tmp_path / "nope.jsonl", "eval.suites[1]")


def test_empty_file_and_wrong_kind_fields(tmp_path):
    with pytest.raises(UserError, match="no examples"):
        read_suite("x", "text", write(tmp_path / "e.jsonl", [], ["\n"]), "k")
    with pytest.raises(UserError, match=r":1: missing key 'target'"):
        read_suite("x", "cloze", write(tmp_path / "c.jsonl", [{"id": "a", "context": "the rank"}]), "k")
    with pytest.raises(UserError, match=r"eval.suites\[3\].kind: unknown suite kind 'mcq' \(known: text, "):
        read_suite("x", "mcq", write(tmp_path / "m.jsonl", [{"id": "a", "text": "x"}]), "eval.suites[3]")


# --- batching -------------------------------------------------------------------------------

def test_batches_keep_a_group_together_and_put_long_first():
    items = [LambadaItem([1] * n, [2]) for n in (3, 3, 3, 9, 9, 1, 1, 1, 1)]
    groups = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    batches = batch_rows(items, 5, groups)
    assert batches == [[3, 4, 0, 1, 2], [5, 6, 7, 8]]
    assert sorted(i for b in batch_rows(items, 3, groups) for i in b) == list(range(9))
    assert [3, 4] in batch_rows(items, 1, groups)  # a group larger than the batch stays whole


# --- multiple choice ------------------------------------------------------------------------

@torch.no_grad()
def one_at_a_time(model, item: LambadaItem) -> float:
    """The log-likelihood of one continuation by its own forward: the reference."""
    seq = torch.tensor([(item.context + item.target)[-(model.cfg.max_seq_len + 1):][:-1]])
    logits, _ = model(seq)
    logprobs = F.log_softmax(logits[0, -len(item.target):].float(), -1)
    return float(logprobs.gather(1, torch.tensor(item.target)[:, None]).sum())


def test_multiple_choice_equals_per_option_reference(tok, model):
    records = MC * 3
    records = [{**r, "id": f"{r['id']}-{i}"} for i, r in enumerate(records)]
    got = multiple_choice.score(model, tok, records, settings(batch_size=7))
    items, groups = multiple_choice.option_items(tok, records, True)
    lls = [one_at_a_time(model, it) for it in items]
    acc, acc_norm = [], []
    for q, r in enumerate(records):  # lm_eval/api/task.py process_results, written out
        ll = np.array([lls[i] for i in range(len(items)) if groups[i] == q])
        acc.append(float(np.argmax(ll) == r["answer"]))
        acc_norm.append(float(np.argmax(ll / np.array([len(c) for c in r["choices"]])) == r["answer"]))
    assert got["acc"] == pytest.approx(np.mean(acc))
    assert got["acc_norm"] == pytest.approx(np.mean(acc_norm))
    n = len(records)
    assert got["acc_stderr"] == pytest.approx(math.sqrt(np.var(acc) * n / (n - 1) / n))


def test_acc_norm_divides_by_the_option_length():
    # option 0 is likelier in total, option 1 per character: acc and acc_norm disagree
    lls = np.array([[-4.0, -6.0, -np.inf], [-1.0, -2.0, -3.0]])
    lengths = np.array([[2.0, 12.0, 1.0], [5.0, 5.0, 5.0]])
    m = multiple_choice.choice_metrics(lls, lengths, np.array([1, 0]))
    assert m["acc"] == 0.5 and m["acc_norm"] == 1.0
    assert m["acc_stderr"] == pytest.approx(0.5) and m["acc_norm_stderr"] == 0.0


def test_multiple_choice_options_share_a_batch(tok, model, monkeypatch):
    seen = []
    real = multiple_choice.score_items
    monkeypatch.setattr(multiple_choice, "score_items",
                        lambda *a, **kw: seen.append(kw["groups"]) or real(*a, **kw))
    multiple_choice.score(model, tok, MC, settings(batch_size=4, shared_prefix=False))
    assert seen == [[0, 0, 0, 0, 1, 1, 1, 1, 2, 2]]
    multiple_choice.score(model, tok, MC, settings(batch_size=4))  # packed: only what does not fit is padded
    assert len(seen) == 1 or len(seen[1]) < len(seen[0])


# --- cloze ----------------------------------------------------------------------------------

def test_cloze_equals_lambada_on_the_same_split(tok, model, tmp_path):
    passages = ["the MPI rank sends a message to every node", "OpenMP threads share the loop iterations",
                "a CUDA kernel launches blocks of threads on the GPU and the cache line bounces between cores " * 3
                + "on the node"]
    lam = tmp_path / "lambada.jsonl"
    write(lam, [{"text": p} for p in passages])
    records = [{"id": str(i), "context": p.rsplit(" ", 1)[0], "target": " " + p.rsplit(" ", 1)[1]}
               for i, p in enumerate(passages)]
    got = KINDS["cloze"].score(model, tok, records, settings())
    ref = evaluate_lambada(model, read_lambada(lam, tok, True), "cpu", 2, progress=False)
    for k in ("accuracy", "perplexity", "mean_token_nll", "truncated"):
        assert got[k] == pytest.approx(ref[k], rel=1e-6)
    assert ref["truncated"] == 1  # the long passage exceeds the 48-token window


# --- held-out text --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 5, 24, 25, 48, 49, 70])
def test_rolling_windows_match_the_harness(n):
    lm_utils = pytest.importorskip("lm_eval.utils")
    tokens = list(range(100, 100 + n))
    want = [lm_utils.make_disjoint_window(w) for w in lm_utils.get_rolling_token_windows(tokens, 1, 24, 1)]
    got = text.rolling_windows(tokens, 1, 24)
    assert [(list(a), list(b)) for a, b in want] == got
    assert [t for _, pred in got for t in pred] == tokens  # every token predicted once


def test_bits_per_byte_equals_one_forward_when_the_text_fits(tok, model):
    records = [{"id": "a", "text": "the MPI rank sends a message"}, {"id": "b", "text": "naïve café on the GPU"}]
    got = text.score(model, tok, records, settings())
    nats, nbytes = 0.0, 0
    for r in records:
        ids = tok.encode(r["text"])
        assert len(ids) <= 48
        nats -= one_at_a_time(model, LambadaItem([tok.bos_id], ids))
        nbytes += len(r["text"].encode())
    assert got["bpb"] == pytest.approx(nats / nbytes / math.log(2), rel=1e-5)
    assert got["bytes"] == nbytes


def test_long_text_is_scored_whole_in_windows(tok, model):
    long = " ".join(["the MPI rank sends a message to every node while OpenMP threads share"] * 6)
    got = text.score(model, tok, [{"id": "a", "text": long}], settings())
    assert got["tokens"] == len(tok.encode(long)) > 2 * 48


# --- generation -----------------------------------------------------------------------------

def test_squad_normalisation_and_f1():
    assert generation.normalize("The  MPI_Allreduce call!") == "mpiallreduce call"
    assert generation.token_f1("a collective sums values", "sums values") == pytest.approx(0.8)  # "a" is dropped: P 2/3, R 1
    assert generation.token_f1("nothing alike", "sums values") == 0.0
    assert generation.token_f1("", "") == 1.0


def test_generation_scores_greedy_replies(tok, model):
    prompts = ["What is MPI?", "What does a CUDA kernel launch?", "Which scheduler runs jobs?"]
    replies = generation.answers(model, tok, prompts, settings(batch_size=2, max_new_tokens=6))
    assert len(replies) == 3
    records = [{"id": str(i), "prompt": p, "answer": replies[i] if i != 1 else "zzz qqq"} for i, p in enumerate(prompts)]
    got = generation.score(model, tok, records, settings(batch_size=2, max_new_tokens=6))
    expected = np.mean([generation.normalize(replies[i]) == generation.normalize(records[i]["answer"]) for i in range(3)])
    assert got["exact_match"] == pytest.approx(expected)
    assert 0 <= got["f1"] <= 1 and got["f1"] >= got["exact_match"]


def test_shared_prefix_equals_one_row_per_option(tok, model):
    long_q = {"id": "long", "question": " ".join(["the MPI rank sends a message to every node"] * 6),
              "choices": ["MPI_Allreduce", "a warp of threads", "the cache", "Slurm"], "answer": 0}
    records = MC + [long_q]  # the long one does not fit packed: the padded fallback
    items, groups = multiple_choice.option_items(tok, records, True)
    packed = multiple_choice.option_logliks(model, items, groups, settings(batch_size=2))
    plain = multiple_choice.option_logliks(model, items, groups, settings(batch_size=2, shared_prefix=False))
    reference = np.array([one_at_a_time(model, it) for it in items])
    # float32 rounding: 1e-5 absolute or 1e-6 relative (this random model's options reach -180 nats)
    assert np.allclose(packed, reference, rtol=1e-6, atol=1e-5) and np.allclose(plain, reference, rtol=1e-6, atol=1e-5)
    from lib.eval.suites.shared_prefix import pack
    assert pack(items[-1].context, [it.target for it in items[-4:]], 0, 48) is None
    fits = pack(items[8].context, [it.target for it in items[8:10]], 8, 48)  # q3: short
    assert len(fits.tokens) == len(items[8].context) + sum(len(it.target) - 1 for it in items[8:10])
    assert set(fits.owner) == {8, 9}


def test_an_option_longer_than_the_window_is_scored_on_its_last_tokens(tok, model):
    long_option = " ".join(["the MPI rank sends a message to every node"] * 8)
    records = [{"id": "a", "question": "What does the rank do?", "choices": ["nothing", long_option], "answer": 1}]
    items, groups = multiple_choice.option_items(tok, records, True)
    assert len(items[1].target) > 48
    lls = multiple_choice.option_logliks(model, items, groups, settings())
    tail = LambadaItem(items[1].context + items[1].target[:-48], items[1].target[-48:])
    assert lls[1] == pytest.approx(one_at_a_time(model, tail), rel=1e-6)
    assert lls[0] == pytest.approx(one_at_a_time(model, items[0]), rel=1e-6)
