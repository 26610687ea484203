"""A training run killed with SIGKILL between checkpoints resumes on the next start and ends with
exactly the weights and val curve of an uninterrupted run (CPU, same seed): with AdamW on the
default model, and with the recipe (Muon, QK-norm, ReLU², an untied head with its own rate,
soft-capped logits, zero-initialised projections). The run is this file executed as a script in a
subprocess, so the kill is a real one: no exception handler or cleanup runs."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = 18
RECIPES = {
    "adamw": ({"d_ff": 32}, {"beta1": 0.9, "beta2": 0.95}),
    "muon": ({"d_ff": 64, "qk_norm": True, "mlp": "relu2", "zero_init_proj": True, "logit_softcap": 10.0,
              "tie_embeddings": False},
             {"optimizer": "muon", "muon_lr": 0.05, "embed_lr": 0.03, "head_lr": 0.01, "muon_weight_decay": 0.01}),
}


def worker(out_dir: Path, sleep_s: float, recipe: str) -> None:
    import torch
    from safetensors.torch import save_file

    from lib.core.runtime import setup_torch
    from lib.data.batch import Batch
    from lib.eval.validation import mean_loss
    from lib.model.config import ModelConfig
    from lib.model.gpt import GPT
    from lib.train.loop import finish, train
    from tests.fixtures_tiny import train_config

    model_kw, optim_kw = RECIPES[recipe]
    device = setup_torch("cpu", 1, 7)
    model = GPT(ModelConfig(vocab_size=40, n_layer=2, n_head=2, n_kv_head=1, d_model=16, max_seq_len=12,
                            dropout=0.1, **model_kw))  # dropout: the RNG state must resume too

    def batch(i: int):
        if sleep_s:
            time.sleep(sleep_s)  # slow enough to be killed mid-run; does not touch the numbers
        starts = torch.randint(0, 40, (4, 1), generator=torch.Generator().manual_seed(i))
        rows = (starts + torch.arange(9)) % 40
        return Batch(rows[:, :-1], rows[:, 1:])

    cfg = train_config(steps=STEPS, lr=1e-2, min_lr=1e-3, warmup_steps=3, weight_decay=0.1, grad_clip=1.0,
                       eval_every=5, checkpoint_every=3, **optim_kw)
    result = train(model, *cfg, device, batch, lambda: mean_loss(model, [batch(10_000)], device),
                   out_dir / "state.pt", "run-key", f"resume-test-{recipe}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight" or
               not model.cfg.tie_embeddings}, str(out_dir / "final.safetensors"))
    (out_dir / "result.json").write_text(json.dumps({"resumed_from": result.resumed_from,
                                                     "val_curve": result.val_curve}))
    finish(out_dir / "state.pt")  # the outputs are whole


def _start(out_dir: Path, recipe: str, sleep_s: float = 0.0) -> subprocess.Popen:
    out_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, __file__, str(out_dir), str(sleep_s), recipe], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode(errors="replace")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_sigkilled_run_resumes_to_the_uninterrupted_weights(tmp_path, recipe):
    reference = _start(tmp_path / "reference", recipe)
    killed = _start(tmp_path / "killed", recipe, sleep_s=0.25)
    state = tmp_path / "killed" / "state.pt"
    try:
        deadline = time.monotonic() + 240
        while not state.exists():  # first checkpoint after step 3; the state file appears atomically
            assert killed.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        time.sleep(0.4)  # kill between checkpoints, not only right after one
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "final.safetensors").exists()
    _finish(_start(tmp_path / "killed", recipe))
    _finish(reference)

    resumed = json.loads((tmp_path / "killed" / "result.json").read_text())
    uninterrupted = json.loads((tmp_path / "reference" / "result.json").read_text())
    assert 0 < resumed["resumed_from"] < STEPS and uninterrupted["resumed_from"] == 0
    assert _sha(tmp_path / "killed" / "final.safetensors") == _sha(tmp_path / "reference" / "final.safetensors")
    assert resumed["val_curve"] == uninterrupted["val_curve"]
    assert uninterrupted["val_curve"][-1][2] < uninterrupted["val_curve"][0][2]  # it learns
    assert not state.exists()


def test_muon_params_are_training_params_and_checked_by_name():
    from lib.core.params import ParamsError, from_mapping
    from lib.train.params import TrainParams
    p = from_mapping(TrainParams, RECIPES["muon"][1], "params.yaml: pretrain")
    assert (p.optimizer, p.muon_lr, p.head_lr) == ("muon", 0.05, 0.01)
    with pytest.raises(ParamsError, match="pretrain.optimizer"):
        from_mapping(TrainParams, {"optimizer": "lion"}, "params.yaml: pretrain")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
