"""External attention: the seam in the model (checkpoint keys unchanged, wq/wk unused), the local
provider (a 1-layer 1-head model's own attention reproduces its learned forward exactly), the
cache, padding, training a few steps through lib.train.loop, and generation over the KV cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lib.attention import (AttentionParams, AttentionSource, ExternalAttention, LocalProvider, ScoreCache,
                           attention_maps, load_attention_params, normalise, wrap_for_external)
from lib.data.batch import Batch
from lib.model.checkpoint import save_model
from lib.infer.generate import generate, generate_batch
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.core.params import ParamsError, from_mapping

VOCAB = 24


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices on shared cores: one thread is faster than contending for two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(seed=0, n_layer=2, n_head=2, n_kv_head=1, spread=1.0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(ModelConfig(n_layer=n_layer, n_head=n_head, n_kv_head=n_kv_head, d_model=16, d_ff=32,
                            max_seq_len=24, dropout=0.0, tie_embeddings=False, vocab_size=VOCAB))
    with torch.no_grad():
        model.lm_head.weight.mul_(spread)  # logits far apart: no argmax ties in generation tests
    return model.eval()


class Recency:
    """A causal fake provider: row i scores j <= i by 1 / (1 + i - j) times a token-dependent factor."""
    name, model = "fake", "recency"

    def __init__(self):
        self.requests = 0
        self.seen: list[list[int]] = []

    def scores(self, token_ids, texts):
        self.requests += 1
        self.seen.append(list(token_ids))
        n = len(token_ids)
        i, j = np.indices((n, n))
        weight = 1.0 + np.asarray(token_ids)[None, :] % 3
        return np.tril(weight / np.maximum(1.0 + i - j, 1.0)).astype(np.float32)


def external(model: GPT, tmp_path: Path, provider=None, **kw):
    params = AttentionParams(mode="external", cache_dir=str(tmp_path / "cache"), **kw)
    return wrap_for_external(model, params, provider=provider or Recency())


def test_params_section_and_defaults(tmp_path, repo_root):
    assert load_attention_params(repo_root / "params.yaml").mode == "learned"
    (tmp_path / "p.yaml").write_text("seed: 1\n")
    assert load_attention_params(tmp_path / "p.yaml") == AttentionParams()
    with pytest.raises(ParamsError, match="attention.provder: unknown key; did you mean 'provider'"):
        from_mapping(AttentionParams, {"provder": "http"}, "params.yaml: attention")
    with pytest.raises(ParamsError, match="base_url_env: must be the NAME"):
        from_mapping(AttentionParams, {"http": {"base_url_env": "https://x"}}, "params.yaml: attention")


def test_learned_mode_is_a_no_op(tmp_path):
    model = tiny()
    before = model.blocks[0].attn
    assert wrap_for_external(model, AttentionParams(), provider=Recency()).metrics() == {}
    assert model.blocks[0].attn is before


def test_normalise_rows_and_zero_rows():
    m = normalise(np.array([[0.0, 9.0], [0.0, 0.0]]))  # the future is masked; an empty row is uniform
    np.testing.assert_allclose(m, [[1.0, 0.0], [0.5, 0.5]])


def test_install_keeps_checkpoint_keys_and_freezes_queries(tmp_path):
    model = tiny()
    keys = list(model.state_dict())
    external(model, tmp_path)
    assert list(model.state_dict()) == keys
    assert all(isinstance(b.attn, ExternalAttention) for b in model.blocks)
    x = torch.randint(0, VOCAB, (2, 8))
    _, loss = model(x, torch.roll(x, -1, 1))
    loss.backward()
    attn = model.blocks[0].attn
    assert attn.wq.weight.grad is None and attn.wk.weight.grad is None and attn.wv.weight.grad is not None


def test_external_layer_applies_the_matrix_per_head(tmp_path):
    model = tiny(n_head=4, n_kv_head=2)
    run = external(model, tmp_path)
    x = torch.randint(0, VOCAB, (1, 6))
    model(x)
    attn, h = model.blocks[0].attn, torch.randn(1, 6, 16)
    A = run.source.current
    v = attn.wv(h).view(1, 6, 2, 4).transpose(1, 2)
    y = torch.cat([A @ v[:, g] for g in (0, 0, 1, 1)], dim=-1)  # q head h uses kv head h // 2
    torch.testing.assert_close(attn(h), attn.wo(y))


def test_local_provider_reproduces_a_one_head_models_own_attention(tmp_path):
    teacher = tiny(seed=3, n_layer=1, n_head=1, n_kv_head=1)
    save_model(tmp_path / "teacher", teacher, "sha", {"stage": "test"})
    x = torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(0))
    maps = attention_maps(teacher, x)
    assert torch.allclose(maps.sum(-1), torch.ones(3, 10)) and float(maps.triu(1).abs().max()) == 0.0
    student = tiny(seed=3, n_layer=1, n_head=1, n_kv_head=1)
    provider = LocalProvider(AttentionParams(local_model=str(tmp_path / "teacher")), "sha")
    external(student, tmp_path, provider=provider)
    torch.testing.assert_close(student(x)[0], teacher(x)[0], atol=1e-5, rtol=1e-4)
    assert provider.requests == 3 and provider.model.startswith(f"{(tmp_path / 'teacher').as_posix()}@")


def test_local_provider_cannot_read_the_stages_own_output(tmp_path):
    params = AttentionParams(mode="external", local_model=str(tmp_path / "out"))
    with pytest.raises(Exception, match="this stage's own output"):
        wrap_for_external(tiny(), params, output_dir=tmp_path / "out")


def test_cache_is_shared_across_runs(tmp_path):
    x = torch.randint(0, VOCAB, (4, 8))
    first = external(tiny(), tmp_path)
    tiny_a = first.source
    out = tiny_a.set_batch(x).clone()
    provider = Recency()
    second = external(tiny(), tmp_path, provider=provider)
    torch.testing.assert_close(second.source.set_batch(x), out)
    assert provider.requests == 0
    m = second.metrics()
    assert (m["attention_cache_hits"], m["attention_cache_misses"], m["attention_cache_hit_rate"]) == (4, 0, 1.0)
    assert first.metrics()["attention_requests"] == 4


def test_right_padding_is_not_sent_to_the_provider(tmp_path):
    provider = Recency()
    source = AttentionSource(provider, ScoreCache(tmp_path / "c"), pad_id=0)
    A = source.set_batch(torch.tensor([[5, 6, 7, 0, 0]]))
    assert provider.seen == [[5, 6, 7]]
    torch.testing.assert_close(A[0, 3:], torch.eye(5)[3:])  # pad queries see themselves only


def test_train_a_few_steps_in_external_mode(tmp_path):
    from lib.train.loop import train
    from tests.fixtures_tiny import train_config
    teacher = tiny(seed=1)
    save_model(tmp_path / "teacher", teacher, "sha", {"stage": "test"})
    model = tiny(seed=2).train()
    wq0 = model.blocks[0].attn.wq.weight.detach().clone()
    run = wrap_for_external(model, AttentionParams(mode="external", provider="local", local_model=str(tmp_path / "teacher"),
                                                   cache_dir=str(tmp_path / "cache")), None)
    x = torch.randint(0, VOCAB, (4, 12), generator=torch.Generator().manual_seed(0))
    batch = lambda i: Batch(x, torch.roll(x, -1, 1))  # noqa: E731 - one fixed batch to memorise
    cfg = train_config(steps=8, lr=1e-2, min_lr=1e-3, warmup_steps=0, weight_decay=0.1, beta1=0.9, beta2=0.95,
                     grad_clip=1.0, eval_every=100, checkpoint_every=100, schedule="constant")
    result = train(model, *cfg, torch.device("cpu"), batch, lambda: 0.0, tmp_path / "state.pt", "k", "test")
    losses = [row[2] for row in result.train_curve]
    assert losses[-1] < losses[0] - 0.2
    assert torch.equal(model.blocks[0].attn.wq.weight, wq0)  # unused and frozen: not even decayed
    m = run.metrics()
    assert m["attention_requests"] == 4 and m["attention_cache_hits"] == 7 * 4


def test_generation_matches_full_forward_argmax(tmp_path):
    model = tiny(seed=4, spread=30.0)
    external(model, tmp_path)
    prompt = [3, 7, 1, 9]
    got = generate(model, prompt, 6, stop_ids=set())
    seq = list(prompt)
    for _ in range(6):
        logits, _ = model(torch.tensor([seq]))
        seq.append(int(logits[0, -1].argmax()))
    assert got == seq[len(prompt):]
    # a left-padded batch gives each row what it gets alone
    prompts = [[3, 7, 1, 9], [5, 2]]
    assert generate_batch(model, prompts, 4, stop_ids=set()) == [generate(model, p, 4, set()) for p in prompts]


def test_saved_model_runs_in_the_mode_it_was_trained_in(tmp_path):
    from lib.attention import attention_for_model
    from lib.model.checkpoint import load_model
    teacher = tiny(seed=5)
    save_model(tmp_path / "teacher", teacher, "sha", {"stage": "test"})
    params = AttentionParams(mode="external", provider="local", local_model=str(tmp_path / "teacher"),
                             cache_dir=str(tmp_path / "cache"))
    model = tiny(seed=6, spread=30.0)
    wrap_for_external(model, params)
    save_model(tmp_path / "student", model, "sha", {"stage": "test", "attention": params.info()})
    (tmp_path / "params.yaml").write_text(f"seed: 1\nattention:\n  cache_dir: {tmp_path / 'cache'}\n")
    restored = attention_for_model(tmp_path / "student", tmp_path / "params.yaml")
    assert (restored.mode, restored.local_model) == ("external", str(tmp_path / "teacher"))
    expected = generate(model, [1, 2, 3], 5, set())
    loaded = load_model(tmp_path / "student")
    run = wrap_for_external(loaded, restored)
    assert generate(loaded, [1, 2, 3], 5, set()) == expected
    assert run.metrics()["attention_requests"] == 0  # every prefix was cached by the first model's run
    assert attention_for_model(tmp_path / "teacher", tmp_path / "missing.yaml").mode == "learned"
