"""LAMBADA as lm-evaluation-harness computes it: the split, the pair encoding, known-prediction
scores, batching, truncation and malformed files."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.core.errors import UserError
from lib.eval.lambada import (LambadaItem, encode_pair, evaluate_lambada, lambada_metrics, read_lambada,
                         score_items, split_passage)
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.tokenizer import Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

TRAIN_TEXT = ("The node sends a message to every rank. Each process reads the input file and the cache line "
              "bounces between cores. Threads share memory on the same socket; the warp runs both branches. "
              "MPI broadcasts 1024 values in 12 us. \"Quoted words\" and naïve café text appear too.\n")

# (passage, expected target): punctuation attached to the last word, quotes, digits, unicode,
# newlines (before and inside the last word), a double space, characters only byte fallback covers.
EDGE_CASES = [
    ("The cache line bounces between cores.", " cores."),
    ('He said "the node"', ' node"'),
    ("He said \"quoted words\" to the 'rank'", " 'rank'"),
    ("MPI broadcasts 1024", " 1024"),
    ("it took 12 us, then 3.5", " 3.5"),
    ("naïve café", " café"),
    ("the input file\nand the cache", " cache"),
    ("the input\nfile", " input\nfile"),
    ("the  cache", " cache"),
    ("a warp — 😀 ok 😀", " 😀"),
    ("Threads share\tmemory", " share\tmemory"),
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    params = TokenizerParams(vocab_size=360, user_symbols=["MPI"], num_threads=1)
    return Tokenizer(train_tokenizer([TRAIN_TEXT] * 50, params, [], seed=1))


# --- the split and the encoding -------------------------------------------------------------

@pytest.mark.parametrize("text,target", EDGE_CASES)
def test_split_passage_is_last_space_separated_word(text, target):
    context, got = split_passage(text)
    assert got == target
    assert context + got == text


def test_split_matches_the_harness_template():
    jinja2 = pytest.importorskip("jinja2")
    # lm_eval/tasks/lambada/lambada_openai.yaml
    doc_to_text = jinja2.Template("{{text.split(' ')[:-1]|join(' ')}}")
    doc_to_target = jinja2.Template("{{' '+text.split(' ')[-1]}}")
    for text, _ in EDGE_CASES:
        assert split_passage(text) == (doc_to_text.render(text=text), doc_to_target.render(text=text))


@pytest.mark.parametrize("text,target", EDGE_CASES)
def test_target_tokens_are_exactly_the_continuation(tok, text, target):
    context, target = split_passage(text)
    ctx, tgt, aligned = encode_pair(tok, context, target, prepend_bos=True)
    assert aligned and ctx[0] == tok.bos_id and tok.bos_id not in ctx[1:] + tgt
    assert tok.decode(ctx[1:] + tgt) == text            # nothing lost, nothing added
    assert tok.decode(ctx[1:]) == context.rstrip()      # trailing spaces moved to the target
    assert tok.piece(tgt[0]).startswith("\u2581")       # the target starts at the word boundary
    assert ctx[1:] + tgt == tok.encode(text)            # the whole passage's own tokenisation


def test_target_alone_would_get_a_spurious_boundary_piece(tok):
    _, tgt, _ = encode_pair(tok, "the cache line bounces between", " cores", prepend_bos=True)
    alone = tok.encode(" cores")
    assert alone != tgt and tok.piece(alone[0]) == "\u2581" and alone[1:] == tgt


def test_trailing_spaces_move_to_the_continuation(tok):
    ctx, tgt, _ = encode_pair(tok, "the  ", " cache", prepend_bos=False)
    assert ctx == tok.encode("the")
    assert tok.decode(ctx + tgt) == "the   cache"


def test_prepend_bos_false(tok):
    ctx, tgt, _ = encode_pair(tok, "the cache", " line", prepend_bos=False)
    assert ctx == tok.encode("the cache") and ctx + tgt == tok.encode("the cache line")


@pytest.mark.parametrize("bos", [True, False])
def test_encoding_matches_the_harness_encode_pair(tok, bos):
    model_api = pytest.importorskip("lm_eval.api.model")
    prefix = [tok.bos_id] if bos else []
    fake_lm = SimpleNamespace(backend="causal", tok_encode=lambda s: prefix + tok.encode(s))
    for text, _ in EDGE_CASES + [("the cache ", "x")]:
        context, target = split_passage(text)
        ours = encode_pair(tok, context, target, prepend_bos=bos)[:2]
        assert ours == model_api.TemplateLM._encode_pair(fake_lm, context, target)


# --- malformed files ------------------------------------------------------------------------

@pytest.mark.parametrize("lines,match", [
    (['{"text": "a b c"}', '{"text": "a b', '{"text": "d e"}'], r"bad\.jsonl:2: invalid JSON"),
    (['{"text": "a b c"}', '', '{"txt": "d e"}'], r"bad\.jsonl:3: expected \{\"text\""),
    (['{"text": 5}'], r"bad\.jsonl:1: expected"),
    (['["a b"]'], r"bad\.jsonl:1: expected a JSON object"),
    (['{"text": "a b"}', '{"text": "single"}'], r"bad\.jsonl:2: .*two words"),
    (['{"text": " single"}'], r"bad\.jsonl:1: .*two words"),
    (['{"text": "ends with space "}'], r"bad\.jsonl:1: .*ends with a space"),
    ([], r"bad\.jsonl: no passages"),
])
def test_malformed_file_names_its_line(tok, tmp_path, lines, match):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=match):
        read_lambada(path, tok, prepend_bos=True)


def test_missing_file(tok, tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_lambada(tmp_path / "nope.jsonl", tok, prepend_bos=True)


def test_read_lambada_keeps_line_numbers(tok, tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"text": "the cache line"}\n\n{"text": "He said \\"go\\"\\nnow"}\n', encoding="utf-8")
    items = read_lambada(path, tok, prepend_bos=True)
    assert [it.line for it in items] == [1, 3]
    assert tok.decode(items[1].context[1:] + items[1].target) == 'He said "go"\nnow'
    assert tok.decode(items[1].target) == '"go"\nnow'  # decode drops the boundary's leading space


# --- scores with a model whose predictions are known ---------------------------------------

class Successor(nn.Module):
    """Gives logit ``c`` to (previous token + 1) % vocab and 0 to every other token."""

    def __init__(self, vocab: int = 10, max_seq_len: int = 16, c: float = 2.0):
        super().__init__()
        self.cfg = SimpleNamespace(max_seq_len=max_seq_len)
        self.vocab, self.c, self.widths = vocab, c, []

    def forward(self, idx, targets=None, attn_mask=None, positions=None):
        assert idx.shape[1] <= self.cfg.max_seq_len
        self.widths.append(idx.shape[1])
        logits = torch.zeros(*idx.shape, self.vocab)
        return logits.scatter_(2, ((idx + 1) % self.vocab)[..., None], self.c), None

    def logp(self, hit: bool) -> float:
        norm = math.log(math.exp(self.c) + self.vocab - 1)
        return (self.c if hit else 0.0) - norm


def test_known_predictions():
    model = Successor()
    hit, miss = model.logp(True), model.logp(False)
    items = [LambadaItem([1, 2, 3], [4, 5]),   # both targets predicted: correct
             LambadaItem([1, 2], [3, 7]),      # second target missed
             LambadaItem([5], [6]),            # correct
             LambadaItem([0], [9])]            # missed
    logliks, greedy = score_items(model, items, batch_size=3, progress=False)
    np.testing.assert_allclose(logliks, [2 * hit, hit + miss, hit, miss], rtol=1e-6)
    assert greedy.tolist() == [True, False, True, False]
    m = lambada_metrics(items, logliks, greedy, max_seq_len=16)
    assert m["accuracy"] == 0.5 and m["passages"] == 4 and m["target_tokens"] == 6
    assert m["perplexity"] == pytest.approx(math.exp(-(4 * hit + 2 * miss) / 4))
    assert m["mean_token_nll"] == pytest.approx(-(4 * hit + 2 * miss) / 6)
    assert m["accuracy_stderr"] == pytest.approx(np.std([1, 0, 1, 0], ddof=1) / 2)
    assert m["truncated"] == 0 and m["boundary_mismatches"] == 0


def test_metrics_match_the_harness_aggregations():
    metrics_api = pytest.importorskip("lm_eval.api.metrics")
    items = [LambadaItem([1], [2, 3]), LambadaItem([1], [4]), LambadaItem([2], [3])]
    logliks, greedy = np.array([-1.5, -7.25, -0.5]), np.array([True, False, True])
    m = lambada_metrics(items, logliks, greedy, max_seq_len=8)
    assert m["perplexity"] == pytest.approx(metrics_api.perplexity(list(logliks)))
    assert m["accuracy"] == pytest.approx(metrics_api.mean(list(greedy)))
    assert m["accuracy_stderr"] == pytest.approx(metrics_api.mean_stderr([float(g) for g in greedy]))


def test_long_context_is_left_truncated():
    model = Successor(vocab=10, max_seq_len=4)
    item = LambadaItem(list(range(9)), [9, 0])  # 11 tokens: the model sees the last 5 minus 1
    logliks, greedy = score_items(model, [item], progress=False)
    assert model.widths == [4]
    assert greedy.tolist() == [True] and logliks[0] == pytest.approx(2 * model.logp(True))
    assert lambada_metrics([item], logliks, greedy, max_seq_len=4)["truncated"] == 1


def test_target_longer_than_the_window_is_an_error():
    with pytest.raises(UserError, match="more than the model's window"):
        score_items(Successor(max_seq_len=4), [LambadaItem([1], [2, 3, 4, 5, 6], line=7)], progress=False)


# --- batching with a real transformer -------------------------------------------------------

def _reference(model: GPT, item: LambadaItem) -> tuple[float, bool]:
    """Unbatched, unpadded, straight from the definition."""
    seq = (item.context + item.target)[-(model.cfg.max_seq_len + 1):]
    logits, _ = model(torch.tensor([seq[:-1]]))
    logp = F.log_softmax(logits[0].double(), -1)[-len(item.target):]
    tgt = torch.tensor(item.target)
    return float(logp.gather(1, tgt[:, None]).sum()), bool((logp.argmax(-1) == tgt).all())


def test_batched_equals_unbatched():
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, n_head=2, n_kv_head=1, d_model=32, d_ff=64, max_seq_len=24,
                            vocab_size=40)).eval()
    rng = np.random.default_rng(0)
    items = [LambadaItem(rng.integers(4, 40, int(rng.integers(1, 35))).tolist(),
                         rng.integers(4, 40, int(rng.integers(1, 4))).tolist()) for _ in range(13)]
    with torch.no_grad():
        ref = [_reference(model, it) for it in items]
    for batch_size in (1, 4, 64):
        logliks, greedy = score_items(model, items, batch_size=batch_size, progress=False)
        np.testing.assert_allclose(logliks, [r[0] for r in ref], rtol=1e-5, atol=1e-5)
        assert greedy.tolist() == [r[1] for r in ref]
    m = evaluate_lambada(model, items, batch_size=5, progress=False)
    assert m["truncated"] == sum(len(it.context) + len(it.target) > 25 for it in items) > 0
