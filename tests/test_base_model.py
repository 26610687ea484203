"""Starting from a pretrained base (pretrain.init): a tiny random Llama saved by transformers with
a byte-level BPE tokenizer (the shape of SmolLM2, Llama 3, Qwen), imported through lib.hf.

* import parity: our logits equal transformers' on the same tokens;
* the base tokenizer extended with domain terms keeps each term one token and every base id as it was;
* continued pretraining of the imported, grown model lowers the domain val loss;
* each bad input stops with one clear UserError.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lib.core.errors import UserError
from lib.hf import base as hf_base, import_ as hf_import
from lib.model.config import ModelConfig
from lib.tokenizer import CHAT_MARKERS, Tokenizer
from lib.tokenizer.build import extend_base

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TERMS = ["MPI_Allreduce", "OpenMP", "cudaMemcpy"]
GENERAL = "the cat sat on the mat and the dog ran to the park while the sun was shining on the hill. " * 4
DOMAIN = ("Call MPI_Allreduce after the OpenMP parallel region; cudaMemcpy copies the buffer to the GPU "
          "before MPI_Allreduce sums it across ranks. ")


def byte_level_tokenizer(vocab_size: int = 320) -> "tokenizers.Tokenizer":
    from tokenizers import Tokenizer as HF, decoders, models, pre_tokenizers, trainers
    tok = HF(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([GENERAL] * 20, trainer)
    return tok


def save_tiny_llama(path: Path, tie: bool = True, **overrides) -> Path:
    """A random LlamaForCausalLM and its tokenizer as a Hugging Face directory."""
    tok = byte_level_tokenizer()
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=128, tie_word_embeddings=tie,
                                   bos_token_id=0, eos_token_id=0, **{"rms_norm_eps": 1e-6, **overrides})
    transformers.LlamaForCausalLM(cfg).save_pretrained(str(path))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    fast.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("base") / "tiny")


@pytest.fixture(scope="module")
def base_tok(base_dir):
    return hf_base.load_base_tokenizer(hf_base.BaseSource(base_dir, None))


def adapted_tokenizer(base_tok) -> Tokenizer:
    tokenizer_json, special = base_tok
    return Tokenizer(extend_base(tokenizer_json, special, TERMS)[0])


def test_import_parity_with_transformers(base_dir, base_tok, tmp_path):
    """Logits equal transformers', also for a base whose norms use another epsilon (SmolLM2's 1e-5):
    a model run with our epsilon instead differs by ~8e-3 here."""
    check_parity(base_dir, base_tok)
    check_parity(save_tiny_llama(tmp_path / "eps", rms_norm_eps=1e-5), base_tok)


def check_parity(base_dir, base_tok):
    cfg, weights, facts = hf_import.load_base_weights(hf_base.BaseSource(base_dir, None))
    ours = hf_import.build_model(cfg, weights, "test").eval()
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    tok = Tokenizer(extend_base(*base_tok, [])[0])
    x = torch.tensor([tok.encode(GENERAL[:200])])
    with torch.no_grad():
        diff = (ours(x)[0] - hf(x).logits).abs().max().item()
    assert diff < 1e-5 and facts == {}


def test_extended_tokenizer_keeps_terms_whole_and_base_ids(base_tok):
    tokenizer_json, special = base_tok
    base = tokenizers.Tokenizer.from_str(tokenizer_json)
    tok = adapted_tokenizer(base_tok)
    assert tok.base_vocab_size == base.get_vocab_size() and tok.vocab_size > tok.base_vocab_size
    assert [tok.marker(m[2:-2]) for m in CHAT_MARKERS] == list(range(tok.base_vocab_size, tok.base_vocab_size + 4))
    for term in TERMS:  # one token at a text start and after a space, and it decodes back
        assert len(tok.encode(term)) == 1 and len(tok.encode("a " + term)) == len(tok.encode("a")) + 1
    assert tok.decode(tok.encode(DOMAIN)) == DOMAIN
    assert tok.encode(GENERAL) == base.encode(GENERAL, add_special_tokens=False).ids  # base ids unchanged
    for i in range(tok.base_vocab_size):
        assert tok.piece(i) == base.id_to_token(i)
    # a document cannot forge a role marker or an end of text
    assert tok.marker("user") not in tok.encode("<|user|> hi") and special["eos"] not in tok.encode("<|endoftext|>")


def test_grown_rows_are_the_mean_of_the_base_pieces(base_dir, base_tok):
    tok = adapted_tokenizer(base_tok)
    model, info = hf_import.init_model(str(base_dir), tok, ModelConfig(), base_dir=None)
    base_cfg, weights, _ = hf_import.load_base_weights(hf_base.BaseSource(base_dir, None))
    emb = model.embed.weight.detach()
    assert emb.shape[0] == tok.vocab_size and info["added_tokens"] == tok.vocab_size - tok.base_vocab_size
    assert torch.equal(emb[:tok.base_vocab_size], weights["embed.weight"])
    for added in tok.added:
        assert torch.allclose(emb[added["id"]], weights["embed.weight"][added["base_ids"]].mean(0))


def lm_loss(model, ids: torch.Tensor) -> torch.Tensor:
    logits, _ = model(ids[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def test_continued_pretraining_lowers_domain_val_loss(base_dir, base_tok):
    tok = adapted_tokenizer(base_tok)
    torch.manual_seed(0)
    model, _ = hf_import.init_model(str(base_dir), tok, ModelConfig(), base_dir=None)
    train = torch.tensor([tok.encode(DOMAIN * 3)[:96]])
    val = torch.tensor([tok.encode("Before MPI_Allreduce the OpenMP threads join; " + DOMAIN)[:48]])
    with torch.no_grad():
        before = lm_loss(model.eval(), val).item()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        opt.zero_grad()
        lm_loss(model, train).backward()
        opt.step()
    with torch.no_grad():
        after = lm_loss(model.eval(), val).item()
    assert after < before - 0.5, (before, after)


def test_export_generates_like_transformers(tmp_path, base_dir, base_tok):
    """Adapted model -> our weights -> Hugging Face directory -> transformers: same greedy tokens."""
    from lib.hf.export import export_model
    from lib.hf.verify import greedy_both
    from lib.model.checkpoint import save_model
    tok = adapted_tokenizer(base_tok)
    tok_dir = tmp_path / "tokenizer"
    tok_dir.mkdir()
    (tok_dir / tok.file_name).write_bytes(tok.model_bytes)
    model, _ = hf_import.init_model(str(base_dir), tok, ModelConfig(), base_dir=None)
    save_model(tmp_path / "m", model, tok.sha256)
    export_model(tmp_path / "m", tok_dir, tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert hf_tok.encode("MPI_Allreduce now", add_special_tokens=False) == tok.encode("MPI_Allreduce now")
    ours, theirs = greedy_both(model.eval(), hf, [tok.bos_id] + tok.encode("Call MPI_Allreduce"), 16)
    assert ours == theirs


# ---- bad input: one clear line each ------------------------------------------------------------

def test_init_pointing_at_a_missing_path(tmp_path):
    with pytest.raises(UserError, match=r"pretrain.init=.*no such file or directory"):
        hf_base.resolve_init(str(tmp_path / "nope"), base_dir=None)
    with pytest.raises(UserError, match="models/base"):
        hf_base.resolve_init(str(tmp_path), base_dir=Path("models/base"))
    assert hf_base.resolve_init("scratch") is None


def test_not_a_causal_lm_or_not_a_layout_we_map(tmp_path, base_dir):
    for found, arch, message in [("bert", "BertForMaskedLM", "not a causal LM"),
                                 ("gpt2", "GPT2LMHeadModel", "not a causal LM"),
                                 ("mistral", "MistralForCausalLM", "not a layout we map")]:
        bad = tmp_path / found
        bad.mkdir()
        cfg = json.loads((base_dir / "config.json").read_text())
        (bad / "config.json").write_text(json.dumps({**cfg, "model_type": found, "architectures": [arch]}))
        with pytest.raises(UserError, match=rf"{message}: found model_type='{found}', architectures=\['{arch}'\]"):
            hf_import.load_base_weights(hf_base.BaseSource(bad, None))


def test_tokenizer_missing_from_the_base_dir(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="tokenizer missing"):
        hf_base.load_base_tokenizer(hf_base.BaseSource(tmp_path, None))


def test_vocab_embedding_size_mismatch(tmp_path, base_dir, base_tok):
    tok = adapted_tokenizer(base_tok)
    other = save_tiny_llama(tmp_path / "other")
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "vocab_size": cfg["vocab_size"] + 8}))
    with pytest.raises(UserError, match="vocab/embedding size mismatch"):
        hf_import.init_model(str(other), tok, ModelConfig(), base_dir=None)


def test_gguf_without_the_gguf_package(tmp_path, monkeypatch):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    real = hf_base.importlib.util.find_spec
    monkeypatch.setattr(hf_base.importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    source = hf_base.resolve_init(str(tmp_path / "m.gguf"), base_dir=None)
    with pytest.raises(UserError, match=r"needs the `gguf` package: `uv add gguf`"):
        hf_import.load_base_weights(source)


def test_base_init_needs_the_base_tokenizer(base_dir):
    from lib.tokenizer.build import TokenizerParams, train_tokenizer
    sp = Tokenizer(train_tokenizer([GENERAL * 20], TokenizerParams(vocab_size=300), [], seed=0))
    with pytest.raises(UserError, match="tokenizer.source: base"):
        hf_import.init_model(str(base_dir), sp, ModelConfig(), base_dir=None)
