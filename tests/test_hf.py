"""Hugging Face export/import, checked against transformers (a dev dependency):

* the tokenizer loaded through transformers gives our ids (generated text, property-based text,
  the corpus val split) and its chat template gives ``encode_chat``'s ids;
* transformers' logits equal ours within 1e-4 (float32, CPU) and greedy generation of 32 tokens
  gives the same ids, for random weights (tied/untied, MHA/GQA/MQA) and for the trained model
  (models/pretrain, when present);
* export -> import round-trips bit for bit; variants Llama cannot hold are refused by name.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.tokenizer.chat import Message, encode_chat
from lib.model.checkpoint import load_model, save_model
from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.hf import convert
from lib.hf import export as hf_export
from lib.hf import import_ as hf_import
from lib.hf.tokenizer import stuck_pieces, tokenizer_json
from lib.hf.verify import greedy_both, max_logit_diff, tokenizer_mismatches
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.tokenizer import MODEL_FILE, Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent


def trained_model_dirs() -> tuple[Path, Path]:
    """models/pretrain and models/tokenizer, or the directories HPC_LM_PARITY_MODEL and
    HPC_LM_PARITY_TOKENIZER name (to check another trained model)."""
    return (Path(os.environ.get("HPC_LM_PARITY_MODEL", ROOT / "models" / "pretrain")),
            Path(os.environ.get("HPC_LM_PARITY_TOKENIZER", ROOT / "models" / "tokenizer")))
TOL = 1e-4
TERMS = ["MPI_Allreduce", "OpenMP", "MPI", "CUDA", "NUMA"]
WORDS = ("the rank sends a message to every node while threads share the loop iterations of a parallel "
         "region; a kernel launches blocks of threads on the GPU and the cache line bounces between "
         "cores when false sharing happens; jobs run on 64 cores with 2.5 GB/s of bandwidth. "
         "MPI OpenMP CUDA NUMA MPI_Allreduce(sendbuf, recvbuf) naïve café Größe über 東京 → ✓").split()


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seps = [" "] * 12 + ["  ", "\n", "\n\n", "\t", " \n "]
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 18))]
        out.append("".join(w + rng.choice(seps) for w in words).rstrip() + rng.choice([".", "", "!", " ?"]))
    return out


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    params = TokenizerParams(vocab_size=420, num_threads=1, user_symbols=["Slurm"])
    model = train_tokenizer(sentences(400, 0), params, terms=TERMS, seed=0)
    d = tmp_path_factory.mktemp("tok")
    (d / MODEL_FILE).write_bytes(model)
    return d


@pytest.fixture(scope="module")
def tok(tok_dir) -> Tokenizer:
    return Tokenizer.load(tok_dir)


def random_model(vocab_size: int, seed: int = 0, **kw) -> GPT:
    """Random weights spread wide enough that greedy argmaxes are not near-ties; norms not 1."""
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=4, n_kv_head=4, d_model=64, d_ff=96, max_seq_len=96, dropout=0.0,
               tie_embeddings=True, vocab_size=vocab_size)
    cfg.update(kw)
    model = GPT(ModelConfig(**cfg))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.15)
    return model.eval()


def export(tmp: Path, model: GPT, tok_dir: Path, name: str = "m") -> tuple[Path, Path]:
    ours = tmp / f"{name}_ours"
    save_model(ours, model, Tokenizer.load(tok_dir).sha256, {"stage": "test"})
    hf = tmp / f"{name}_hf"
    hf_export.export_model(ours, tok_dir, hf)
    return ours, hf


def hf_load(hf: Path):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32).eval()
    return model, transformers.AutoTokenizer.from_pretrained(str(hf))


# ---- tokenizer ---------------------------------------------------------------------------------

EDGE_TEXTS = ["", " ", "  ", "x", " x", "x ", "  two  spaces  ", "\n", "a\nb", "tab\there", "MPI", " MPI",
              "MPI_Allreduce", "(MPI_Allreduce)", "useMPI andOpenMP", "MPIMPI", "OpenMPI", "Slurm jobs",
              "naïve café 東京 → ✓ 🎉", "digits 1234567890 and 3.14159", "ümlaut Größe", "∑ unseen ∫ chars",
              "a  \n  b", "end with space ", "</ s> <s x> <|usr|>"]


@pytest.fixture(scope="module")
def hf_tok(tmp_path_factory, tok_dir):
    d = tmp_path_factory.mktemp("hf_tok")
    model = random_model(Tokenizer.load(tok_dir).vocab_size, n_layer=1)
    _, hf = export(d, model, tok_dir)
    return transformers.AutoTokenizer.from_pretrained(str(hf))


def test_tokenizer_ids_match_on_generated_text(tok, hf_tok):
    texts = EDGE_TEXTS + sentences(300, 1)
    assert tokenizer_mismatches(tok, hf_tok, texts) == []
    # BOS is added by default, as in the pipeline's documents and lm-eval's add_bos_token
    assert hf_tok("Use MPI now")["input_ids"] == [tok.bos_id] + tok.encode("Use MPI now")
    assert hf_tok.bos_token_id == 2 and hf_tok.eos_token_id == 3 and hf_tok.pad_token_id == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["MPI", "_", "Allreduce", "Open", "MP", "OpenMP", "CUDA", " ", "  ", "\n", "the",
                                 "a", "é", "東", "🎉", "1", "23", ".", "(", "x", "threads", "Slurm"]),
                max_size=25).map("".join)
       | st.text(alphabet=st.characters(blacklist_characters="\u2581", blacklist_categories=("Cs",)), max_size=40))
def test_tokenizer_ids_match_property(tok, hf_tok, text):
    assert hf_tok.encode(text, add_special_tokens=False) == tok.encode(text)


def test_tokenizer_decodes_like_ours(tok, hf_tok):
    for text in EDGE_TEXTS + sentences(20, 2):
        ids = tok.encode(text)
        assert hf_tok.decode(ids) == tok.decode(ids)


def test_chat_template_matches_encode_chat(tok, hf_tok):
    conversations = [
        [Message("user", "What is MPI_Allreduce?")],
        [Message("system", "Answer briefly."), Message("user", "What is OpenMP?"),
         Message("assistant", " A threading API.\n"), Message("user", "And CUDA?")],
        [Message("user", "  leading spaces"), Message("assistant", "")],
    ]
    for messages in conversations:
        for gen in (True, False):
            ours, _ = encode_chat(tok, messages, add_generation_prompt=gen)
            theirs = hf_tok.apply_chat_template([{"role": m.role, "content": m.content} for m in messages],
                                                tokenize=True, add_generation_prompt=gen)
            theirs = theirs["input_ids"] if not isinstance(theirs, list) else theirs
            assert theirs == ours


def test_no_stuck_pieces(tok_dir):
    # ignore_merges in tokenizer.json is exact only if every piece rebuilds itself (see lib/hf/tokenizer.py)
    assert stuck_pieces((tok_dir / MODEL_FILE).read_bytes()) == []


def test_project_tokenizer_matches_on_val_text(tmp_path):
    tok_path = ROOT / "models" / "tokenizer" / MODEL_FILE
    val = ROOT / "data" / "corpus" / "val.jsonl"
    if not tok_path.exists() or not val.exists():
        pytest.skip("models/tokenizer or data/corpus/val.jsonl absent (run `dvc repro corpus tokenizer`)")
    model_bytes = tok_path.read_bytes()
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer_json(model_bytes)), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    texts = [json.loads(line)["text"] for line in val.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert texts
    assert tokenizer_mismatches(Tokenizer(model_bytes), hf_tok, texts) == []
    assert stuck_pieces(model_bytes) == []


# ---- model parity ------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", [
    dict(tie_embeddings=True, n_kv_head=4),
    dict(tie_embeddings=False, n_kv_head=2),  # GQA
    dict(tie_embeddings=False, n_kv_head=1, rope_theta=500.0),  # MQA, other theta
])
def test_random_weights_logits_and_greedy_match(tmp_path, tok_dir, tok, variant):
    model = random_model(tok.vocab_size, seed=1, **variant)
    _, hf = export(tmp_path, model, tok_dir)
    hf_model, _ = hf_load(hf)
    assert hf_model.config.tie_word_embeddings == variant["tie_embeddings"]
    assert hf_model.config.num_key_value_heads == variant["n_kv_head"]
    seqs = [[tok.bos_id] + tok.encode(t)[:90] for t in sentences(6, 3)]
    seqs.append([tok.bos_id] + tok.encode(" ".join(sentences(20, 4)))[:95])  # the full window
    diff = max_logit_diff(model, hf_model, seqs)
    print(f"\nrandom weights {variant}: max |logit diff| = {diff:.3e}")
    assert diff < TOL
    a, b = greedy_both(model, hf_model, seqs[0][:20], 32)
    assert len(a) == 32 and a == b


@pytest.mark.parametrize("tie", [True, False])
def test_width_scaled_model_exports_with_its_logit_multiplier_folded(tmp_path, tok_dir, tok, tie):
    """A model twice its base_width multiplies its logits by 1/2 (muP); transformers' Llama has no
    such scale, so the export folds it into an untied output matrix: the same logits there, and
    an import of the export is that untied, unscaled model with the same logits again."""
    model = random_model(tok.vocab_size, seed=2, base_width=32, tie_embeddings=tie)
    assert model.cfg.width_mult == 2.0
    ours, hf = export(tmp_path, model, tok_dir)
    hf_model, _ = hf_load(hf)
    assert hf_model.config.tie_word_embeddings is False
    seqs = [[tok.bos_id] + tok.encode(t)[:90] for t in sentences(4, 7)]
    assert max_logit_diff(model, hf_model, seqs) < TOL
    a, b = greedy_both(model, hf_model, seqs[0][:20], 16)
    assert a == b
    back, back_tok = tmp_path / "back", tmp_path / "back_tok"
    hf_import.import_model(hf, back, back_tok)
    reloaded = load_model(back, "cpu", tok.sha256)
    assert (reloaded.cfg.base_width, reloaded.cfg.tie_embeddings) == (0, False)
    x = torch.tensor([seqs[0]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x)[0], model(x)[0], rtol=0, atol=1e-5)


def test_trained_model_logits_and_greedy_match(tmp_path):
    model_dir, tok_dir = trained_model_dirs()
    if not (model_dir / "model.safetensors").exists() or not (tok_dir / MODEL_FILE).exists():
        pytest.skip("models/pretrain or models/tokenizer absent (run `dvc repro pretrain`)")
    tok = Tokenizer.load(tok_dir)
    meta = json.loads((model_dir / "config.json").read_text())
    if meta.get("tokenizer_sha256") != tok.sha256:
        pytest.skip("models/pretrain was trained with another tokenizer than models/tokenizer (stale; `dvc repro`)")
    model = load_model(model_dir, "cpu", tok.sha256).eval()
    hf = tmp_path / "hf"
    hf_export.export_model(model_dir, tok_dir, hf)
    hf_model, hf_tok = hf_load(hf)
    val = ROOT / "data" / "corpus" / "val.jsonl"
    texts = ([json.loads(line)["text"] for line in val.read_text(encoding="utf-8").splitlines() if line.strip()]
             if val.exists() else sentences(8, 5))
    n = model.cfg.max_seq_len
    seqs = [([tok.bos_id] + ids)[i:i + n] for ids in tok.encode_batch(texts) for i in range(0, min(len(ids), 4 * n), n)]
    diff = max_logit_diff(model, hf_model, seqs)
    print(f"\ntrained {model_dir}: max |logit diff| = {diff:.3e} over {len(seqs)} windows of <= {n} tokens")
    assert diff < TOL
    prompt = seqs[0][: n - 32]
    a, b = greedy_both(model, hf_model, prompt, 32)
    assert len(a) == 32 and a == b
    assert tokenizer_mismatches(tok, hf_tok, texts) == []


# ---- files, round trip, refusals ---------------------------------------------------------------

def test_export_writes_hf_layout_deterministically(tmp_path, tok_dir, tok):
    model = random_model(tok.vocab_size, n_kv_head=2)
    ours, hf = export(tmp_path, model, tok_dir)
    names = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json", MODEL_FILE}
    assert {p.name for p in hf.iterdir()} == names
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["num_key_value_heads"] == 2
    assert cfg["tie_word_embeddings"] is True and cfg["rms_norm_eps"] == 1e-6
    gen = json.loads((hf / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [tok.eos_id, tok.marker("end")]
    from safetensors import safe_open
    with safe_open(str(hf / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys()  # tied: stored once
    again = tmp_path / "again"
    hf_export.export_model(ours, tok_dir, again)
    for name in names:
        assert (hf / name).read_bytes() == (again / name).read_bytes(), name


@pytest.mark.parametrize("tie", [True, False])
def test_export_import_round_trip(tmp_path, tok_dir, tok, tie):
    model = random_model(tok.vocab_size, n_kv_head=2, tie_embeddings=tie)
    ours, hf = export(tmp_path, model, tok_dir)
    back, back_tok = tmp_path / "back", tmp_path / "back_tok"
    hf_import.import_model(hf, back, back_tok)
    a, b = json.loads((ours / "config.json").read_text()), json.loads((back / "config.json").read_text())
    assert a["model"] == b["model"] and a["tokenizer_sha256"] == b["tokenizer_sha256"]
    from safetensors.torch import load_file
    wa, wb = load_file(str(ours / "model.safetensors")), load_file(str(back / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (back_tok / MODEL_FILE).read_bytes() == (tok_dir / MODEL_FILE).read_bytes()
    reloaded = load_model(back, "cpu", tok.sha256)
    x = torch.tensor([[tok.bos_id] + tok.encode("the rank sends a message")])
    with torch.no_grad():
        assert torch.equal(reloaded(x)[0], model(x)[0])


def test_import_of_a_transformers_saved_model(tmp_path, tok_dir, tok):
    """A model saved by transformers itself (save_pretrained) imports and computes the same logits."""
    model = random_model(tok.vocab_size, n_kv_head=2, tie_embeddings=False)
    _, hf = export(tmp_path, model, tok_dir)
    hf_model, _ = hf_load(hf)
    saved = tmp_path / "saved"
    hf_model.save_pretrained(str(saved))
    (saved / MODEL_FILE).write_bytes((tok_dir / MODEL_FILE).read_bytes())
    hf_import.import_model(saved, tmp_path / "back")
    back = load_model(tmp_path / "back", "cpu", tok.sha256)
    x = torch.tensor([[tok.bos_id] + tok.encode("threads share the loop")])
    with torch.no_grad():
        assert (back(x)[0] - model(x)[0]).abs().max() < TOL


@pytest.mark.parametrize("key,value", [("positions", "learned"), ("positions", "sinusoidal"), ("positions", "none"),
                                       ("norm", "layernorm"), ("mlp", "gelu")])
def test_export_refuses_variants_llama_cannot_hold(tmp_path, tok_dir, tok, key, value, capsys):
    fields = {f for f in ModelConfig.__dataclass_fields__}
    if key not in fields:
        pytest.skip(f"ModelConfig has no '{key}' yet")
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_kv_head=2, d_model=32, d_ff=64, max_seq_len=32,
                            vocab_size=tok.vocab_size, **{key: value}))
    save_model(tmp_path / "m", model, tok.sha256)
    with pytest.raises(UserError, match=rf"{key}={value!r}"):
        hf_export.export_model(tmp_path / "m", tok_dir, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
    with pytest.raises(SystemExit) as exc:  # the CLI: one line, exit status 2
        run_stage(lambda: hf_export.main(["--model", str(tmp_path / "m"), "--tokenizer", str(tok_dir),
                                          "--out", str(tmp_path / "hf")]))
    assert exc.value.code == 2 and key in capsys.readouterr().err


def test_export_refuses_unknown_model_params_and_wrong_tokenizer(tmp_path, tok_dir, tok):
    with pytest.raises(UserError, match="made_up_switch"):
        convert.check_exportable({"n_layer": 1, "vocab_size": 10, "made_up_switch": True})
    model = random_model(tok.vocab_size, n_layer=1)
    save_model(tmp_path / "m", model, "0" * 64)
    with pytest.raises(UserError, match="different tokenizer"):
        hf_export.export_model(tmp_path / "m", tok_dir, tmp_path / "hf")
    with pytest.raises(UserError, match="not found"):
        hf_export.export_model(tmp_path / "missing", tok_dir, tmp_path / "hf")


def test_import_refuses_what_our_model_cannot_hold(tmp_path, tok_dir, tok):
    _, hf = export(tmp_path, random_model(tok.vocab_size, n_layer=1), tok_dir)
    cfg = json.loads((hf / "config.json").read_text())
    for key, value in [("hidden_act", "gelu"), ("attention_bias", True), ("model_type", "gpt2"),
                       ("rope_parameters", {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4})]:
        (hf / "config.json").write_text(json.dumps({**cfg, key: value}))
        with pytest.raises(UserError, match=key):
            hf_import.import_model(hf, tmp_path / "back")
    (hf / "config.json").write_text(json.dumps(cfg))
    (hf / MODEL_FILE).unlink()
    with pytest.raises(UserError, match="SentencePiece"):
        hf_import.import_model(hf, tmp_path / "back")


def test_export_stage_writes_both_models_and_metrics(tmp_path, tok_dir, tok, monkeypatch):
    from stages import export as stage
    models = tmp_path / "models"
    (models / "tokenizer").mkdir(parents=True)
    (models / "tokenizer" / MODEL_FILE).write_bytes((tok_dir / MODEL_FILE).read_bytes())
    for name in ("pretrain", "sft"):
        save_model(models / name, random_model(tok.vocab_size, n_layer=1), tok.sha256, {"stage": name})
    monkeypatch.chdir(tmp_path)
    stage.main([])
    metrics = json.loads((tmp_path / "metrics" / "export.json").read_text())
    assert set(metrics) == {"pretrain", "sft", "seconds"}
    for name in ("pretrain", "sft"):
        assert json.loads((models / "hf" / name / "config.json").read_text())["model_type"] == "llama"
