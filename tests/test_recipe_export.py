"""Export of the recipe's variants: qk_norm maps exactly to transformers' Qwen3 layout (logits
within 1e-4 and the same greedy ids, as tests/test_hf.py checks for Llama); zero-initialised
projections are only an init and export as usual; soft-capping and the ReLU² MLP are refused,
naming the param."""
from __future__ import annotations

import json
import os

import pytest
import torch

from lib.core.errors import UserError
from lib.hf import export as hf_export
from lib.hf.verify import greedy_both, max_logit_diff
from lib.model.checkpoint import save_model
from lib.tokenizer import MODEL_FILE, Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
transformers = pytest.importorskip("transformers")

from test_hf import TERMS, TOL, export, hf_load, random_model, sentences  # noqa: E402


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    model = train_tokenizer(sentences(400, 0), TokenizerParams(vocab_size=420, num_threads=1), terms=TERMS, seed=0)
    d = tmp_path_factory.mktemp("tok")
    (d / MODEL_FILE).write_bytes(model)
    return d


@pytest.mark.parametrize("variant", [
    dict(qk_norm=True, tie_embeddings=False, n_kv_head=2),
    dict(qk_norm=True, tie_embeddings=True, n_kv_head=4, zero_init_proj=True),
    # the shipped recipe grown past its base_width: the logit multiplier folds into an untied head
    dict(qk_norm=True, tie_embeddings=True, n_kv_head=4, zero_init_proj=True, base_width=32),
])
def test_qk_norm_exports_as_qwen3_with_exact_logits_and_greedy(tmp_path, tok_dir, variant):
    tok = Tokenizer.load(tok_dir)
    model = random_model(tok.vocab_size, seed=2, **variant)
    _, hf = export(tmp_path, model, tok_dir)
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen3ForCausalLM"] and cfg["model_type"] == "qwen3"
    hf_model, _ = hf_load(hf)
    assert type(hf_model).__name__ == "Qwen3ForCausalLM"
    norms = hf_model.model.layers[0].self_attn.q_norm.weight
    assert torch.equal(norms, model.blocks[0].attn.q_norm.weight)  # random gains, not ones
    seqs = [[tok.bos_id] + tok.encode(t)[:90] for t in sentences(4, 3)]
    diff = max_logit_diff(model, hf_model, seqs)
    print(f"\nqk_norm {variant}: max |logit diff| = {diff:.3e}")
    assert diff < TOL
    a, b = greedy_both(model, hf_model, seqs[0][:20], 32)
    assert len(a) == 32 and a == b


def test_zero_init_proj_alone_still_exports_as_llama(tmp_path, tok_dir):
    tok = Tokenizer.load(tok_dir)
    _, hf = export(tmp_path, random_model(tok.vocab_size, n_layer=1, zero_init_proj=True), tok_dir)
    assert json.loads((hf / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]


@pytest.mark.parametrize("key,value", [("logit_softcap", 15.0), ("mlp", "relu2")])
def test_export_refuses_softcap_and_relu2_naming_the_param(tmp_path, tok_dir, key, value):
    tok = Tokenizer.load(tok_dir)
    model = random_model(tok.vocab_size, n_layer=1, **{key: value}, **({"d_ff": 128} if key == "mlp" else {}))
    save_model(tmp_path / "m", model, tok.sha256)
    with pytest.raises(UserError, match=rf"{key}={value!r}"):
        hf_export.export_model(tmp_path / "m", tok_dir, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
