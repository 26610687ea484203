"""Tokenizer: fixed ids, exact round trip on any text, byte-identical retraining, whole terms."""
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.core.errors import UserError
from lib.core.params import ParamsError, from_mapping
from lib.tokenizer import BOS, CHAT_MARKERS, EOS, META, PAD, UNK, Tokenizer
from lib.tokenizer.build import TokenizerParams, symbols_for, train_tokenizer
from lib.tokenizer.sample import sample_texts, training_sentences
from lib.tokenizer.stats import tokenizer_metrics

WORDS = ("the memory bandwidth of a node limits the stencil kernel so we tile loops and pin threads "
         "to cores while the scheduler places ranks on sockets; caches hold 64 byte lines and "
         "vectorised loops use AVX registers with 3.5 GHz clocks").split()
TERMS = ["OpenMP", "NUMA", "MPI_Allreduce"]


def make_docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        lines = []
        for _ in range(rng.randint(2, 8)):
            words = [rng.choice(WORDS + TERMS) for _ in range(rng.randint(5, 30))]
            lines.append(" ".join(words) + rng.choice([".", ",", ":", ""]))
        docs.append("\n".join(lines) + "\n")
    return docs


PARAMS = TokenizerParams(vocab_size=400, user_symbols=["NUMA"], num_threads=2)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return train_tokenizer(make_docs(300), PARAMS, ["OpenMP", "MPI_Allreduce"], seed=7)


@pytest.fixture(scope="module")
def tok(model_bytes) -> Tokenizer:
    return Tokenizer(model_bytes)


def test_fixed_special_ids(tok):
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert [tok.marker(m) for m in ("system", "user", "assistant", "end")] == [4, 5, 6, 7]
    assert [tok.piece(i) for i in range(4, 8)] == list(CHAT_MARKERS)
    assert tok.vocab_size == 400


def test_markers_in_text_are_not_control_ids(tok):
    assert not set(tok.encode("<|user|> hi <|end|>")) & {4, 5, 6, 7}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_round_trip_any_unicode(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", " ", "  ", META, "\n", "\t", "OpenMP", "é", "😀", "\x00", "x y"]),
                max_size=12).map("".join))
def test_round_trip_whitespace_and_meta_symbol(tok, text):
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_batch([text, "plain", text]) == [tok.encode(text), tok.encode("plain"), tok.encode(text)]


def test_unseen_characters_fall_back_to_bytes(tok):
    ids = tok.encode("Ωmega 漢字 🚀")
    assert UNK not in ids
    assert tok.decode(ids) == "Ωmega 漢字 🚀"


def test_domain_terms_stay_whole(tok):
    for term in ["OpenMP", "NUMA", "MPI_Allreduce"]:
        assert len(tok.encode(term)) == 1, term                        # document start
        assert META + term in [tok.piece(i) for i in tok.encode(f"use {term} here")]  # after a space
        assert term in [tok.piece(i) for i in tok.encode(f"({term})")]                # after punctuation


def test_training_is_byte_identical(model_bytes):
    again = train_tokenizer(make_docs(300), PARAMS, ["OpenMP", "MPI_Allreduce"], seed=7)
    assert again == model_bytes


def test_sampling_is_seeded():
    rng = random.Random(5)
    docs = [" ".join("".join(rng.choices("abcdefgh", k=rng.randint(2, 6))) for _ in range(40)) for _ in range(400)]
    params = TokenizerParams(vocab_size=400, input_sentence_size=150, num_threads=2)
    a = train_tokenizer(docs, params, [], seed=1)
    assert a == train_tokenizer(docs, params, [], seed=1)
    assert a != train_tokenizer(docs, params, [], seed=2)  # another seed draws another sample


def test_training_is_byte_identical_across_processes(tmp_path):
    # SentencePiece's own sampler differs between fresh processes whatever its seed: this
    # catches a return to it (and any thread-order dependence in training).
    script = (
        "import random, sys\n"
        "from lib.tokenizer import Tokenizer\nfrom lib.tokenizer.build import TokenizerParams, train_tokenizer\n"
        "rng = random.Random(5)\n"
        "docs = [' '.join(''.join(rng.choices('abcdefgh', k=rng.randint(2, 6))) for _ in range(40)) + chr(0x4E00 + i)\n"
        "        for i in range(400)]\n"
        "p = TokenizerParams(vocab_size=600, input_sentence_size=150, character_coverage=1.0, num_threads=2)\n"
        "print(Tokenizer(train_tokenizer(docs, p, ['abc'], seed=3)).sha256)\n")
    root = Path(__file__).resolve().parents[1]
    runs = [subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.strip()) == 64


def test_sample_is_uniform_seeded_and_in_corpus_order():
    texts = [f"doc {i}\n" for i in range(1000)]  # one piece each
    a = sample_texts(texts, 100, 2048, seed=1)
    assert len(a) == 100 and a == sorted(a, key=lambda t: int(t.split()[1])) and set(a) <= set(texts)
    assert a == sample_texts(iter(texts), 100, 2048, seed=1) != sample_texts(texts, 100, 2048, seed=2)
    assert sample_texts(texts, 0, 2048, seed=1) == texts
    assert sample_texts(texts[:5], 100, 2048, seed=1) == texts[:5]
    # uniform: each tenth of the corpus holds about a tenth of the sample, over many seeds
    tenths = [0] * 10
    for seed in range(50):
        for t in sample_texts(texts, 100, 2048, seed):
            tenths[int(t.split()[1]) // 100] += 1
    assert min(tenths) > 400 and max(tenths) < 600  # 500 expected, binomial sd ~21


def test_training_sentences_cut_at_lines_and_keep_text():
    docs = ["short\n", "a" * 10 + "\n" + "b b b " * 200 + "\n" + "c" * 700]
    pieces = list(training_sentences(docs, 256))
    assert all(len(p.encode()) <= 256 for p in pieces)
    assert "".join(pieces) == "".join(docs)
    assert pieces[0] == "short\n"


def test_symbols_for_registers_both_forms():
    assert symbols_for(["MPI", "MPI", "", "two words", "<|user|>"]) == [META + "MPI", "MPI"]


def test_params_errors_name_the_key():
    with pytest.raises(ParamsError, match="tokenizer.vocab_size"):
        from_mapping(TokenizerParams, {"vocab_size": 100}, "params.yaml: tokenizer")
    with pytest.raises(ParamsError, match="tokenizer.vocab_szie: unknown key; did you mean 'vocab_size'"):
        from_mapping(TokenizerParams, {"vocab_szie": 100}, "params.yaml: tokenizer")
    with pytest.raises(ParamsError, match="user_symbols"):
        from_mapping(TokenizerParams, {"user_symbols": ["a b"]}, "params.yaml: tokenizer")


def test_vocab_size_unfit_for_corpus_is_a_user_error():
    with pytest.raises(UserError, match="tokenizer.vocab_size=60000 is too large"):
        train_tokenizer(make_docs(5), TokenizerParams(vocab_size=60000), [], seed=0)
    with pytest.raises(UserError, match="tokenizer.vocab_size=270 is too small"):
        train_tokenizer(make_docs(5) + ["".join(map(chr, range(0x4E00, 0x4E40)))],
                        TokenizerParams(vocab_size=270, character_coverage=1.0), [], seed=0)


def test_metrics(tok):
    m = tokenizer_metrics(tok, make_docs(20, seed=3), TERMS)
    assert m["vocab_size"] == 400
    assert m["domain_terms_whole_share"] == 1.0
    assert 1.0 < m["val_bytes_per_token"] < 10
    assert m["val_tokens_per_word"] > 0.5
