"""GGUF export checked by a reader we did not write: transformers' GGUF loader rebuilds the model
and its logits match ours (f32 to float rounding, f16 to f16 rounding of the weights, Q8_0 within
its quantisation error); the tokenizer, special ids and chat template travel with it."""
from __future__ import annotations

import pytest
import torch

gguf = pytest.importorskip("gguf", reason="the dev group's `gguf` package")
transformers = pytest.importorskip("transformers", reason="the dev group's `transformers` package")

from lib.core.errors import UserError  # noqa: E402
from lib.hf.export import main as export_main  # noqa: E402
from lib.hf.gguf_export import export_gguf  # noqa: E402
from lib.hf.tokenizer import tokenizer_config  # noqa: E402
from lib.model.checkpoint import load_model  # noqa: E402
from tests.fixtures_tiny import tiny_model, tiny_tokenizer, write_model_dirs  # noqa: E402

TEXT = "the MPI rank sends a message to every node while OpenMP threads share the loop"


def _read_back(path, qk_norm: bool):
    # transformers' GGUF reader takes qwen3's head_dim from its config default (128), not from the
    # file's attention.key_length; ours is d_model / n_head = 8, so it is passed (llama.cpp reads it)
    extra = {"head_dim": 8} if qk_norm else {}
    return transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                             dtype=torch.float32, **extra).eval()


def _f16_rounded(model):
    """Our model with every matrix rounded to f16, as the f16 file holds it (norm gains stay f32)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(p.half().float())
    return model


@pytest.mark.parametrize("qk_norm", [False, True], ids=["llama", "qwen3"])
def test_transformers_reads_the_same_model(tmp_path, qk_norm):
    tok = tiny_tokenizer()
    model_dir, tok_dir = write_model_dirs(tmp_path, tiny_model(tok.vocab_size, qk_norm=qk_norm))
    ours = load_model(model_dir).eval()
    ids = torch.tensor([[tok.bos_id] + tok.encode(TEXT)])
    with torch.no_grad():
        ref = ours(ids)[0]
        scale = float(ref.abs().max())
        diffs = {}
        for kind in ("f32", "f16", "q8_0"):
            out = tmp_path / f"model-{kind}.gguf"
            summary = export_gguf(model_dir, tok_dir, out, kind)
            assert summary["architecture"] == ("qwen3" if qk_norm else "llama")
            hf = _read_back(out, qk_norm)
            assert type(hf).__name__ == ("Qwen3ForCausalLM" if qk_norm else "LlamaForCausalLM")
            diffs[kind] = float((hf(ids).logits - ref).abs().max())
            if kind == "f16":  # the same as our model with f16-rounded weights, to float rounding
                assert float((hf(ids).logits - _f16_rounded(load_model(model_dir))(ids)[0]).abs().max()) < 1e-5
    assert diffs["f32"] < 1e-5
    assert diffs["f16"] < 1e-2 * scale
    assert diffs["q8_0"] < 5e-2 * scale
    assert (tmp_path / "model-q8_0.gguf").stat().st_size < 0.7 * (tmp_path / "model-f16.gguf").stat().st_size


def test_tokenizer_and_template_travel(tmp_path):
    tok = tiny_tokenizer()
    model_dir, tok_dir = write_model_dirs(tmp_path)
    out = tmp_path / "m.gguf"
    export_main(["--model", str(model_dir), "--tokenizer", str(tok_dir), "--out", str(out), "--format", "gguf"])
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=out.name)
    assert hf_tok(TEXT)["input_ids"] == [tok.bos_id] + tok.encode(TEXT)
    reader = gguf.GGUFReader(str(out))

    def value(key):
        return reader.fields[key].contents()
    assert value("tokenizer.chat_template") == tokenizer_config(tok.model_bytes, 64)["chat_template"]
    assert value("tokenizer.ggml.eot_token_id") == tok.marker("end")
    assert value("tokenizer.ggml.bos_token_id") == tok.bos_id and value("tokenizer.ggml.eos_token_id") == tok.eos_id
    assert len(value("tokenizer.ggml.tokens")) == tok.vocab_size


@pytest.mark.parametrize("variant, param", [({"mlp": "relu2"}, "mlp"),
                                            ({"logit_softcap": 30.0}, "logit_softcap")])
def test_refusals_name_the_param(tmp_path, variant, param):
    tok = tiny_tokenizer()
    model_dir, tok_dir = write_model_dirs(tmp_path, tiny_model(tok.vocab_size, **variant))
    with pytest.raises(UserError, match=param):
        export_gguf(model_dir, tok_dir, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()
