"""The recipe through the real training loop: a Muon run (QK-norm, ReLU², untied head with its
own rate, soft-capped logits, zero-initialised projections) killed with SIGKILL between
checkpoints resumes to exactly the weights and val curve of an uninterrupted run, as
tests/test_resume.py checks for AdamW. The run is this file executed as a script."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = 18
RECIPE_MODEL = dict(qk_norm=True, mlp="relu2", zero_init_proj=True, logit_softcap=10.0, tie_embeddings=False)
RECIPE_OPTIM = dict(optimizer="muon", muon_lr=0.05, embed_lr=0.03, head_lr=0.01, muon_weight_decay=0.01)


def worker(out_dir: Path, sleep_s: float) -> None:
    import torch
    from safetensors.torch import save_file

    from lib.core.runtime import setup_torch
    from lib.eval.validation import mean_loss
    from lib.model.config import ModelConfig
    from lib.model.gpt import GPT
    from lib.train.loop import finish, train
    from tests.fixtures_tiny import train_config

    device = setup_torch("cpu", 1, 7)
    model = GPT(ModelConfig(vocab_size=40, n_layer=2, n_head=2, n_kv_head=1, d_model=16, d_ff=64,
                            max_seq_len=12, dropout=0.1, **RECIPE_MODEL))

    def batch(i: int):
        if sleep_s:
            time.sleep(sleep_s)  # slow enough to be killed mid-run; does not touch the numbers
        starts = torch.randint(0, 40, (4, 1), generator=torch.Generator().manual_seed(i))
        rows = (starts + torch.arange(9)) % 40
        return rows[:, :-1], rows[:, 1:]

    cfg = train_config(steps=STEPS, lr=1e-2, min_lr=1e-3, warmup_steps=3, weight_decay=0.1, grad_clip=1.0,
                       eval_every=5, checkpoint_every=3, **RECIPE_OPTIM)
    result = train(model, *cfg, device, batch, lambda: mean_loss(model, [batch(10_000)], device),
                   out_dir / "state.pt", "run-key", "recipe-resume-test")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "final.safetensors"))
    (out_dir / "result.json").write_text(json.dumps({"resumed_from": result.resumed_from,
                                                     "val_curve": result.val_curve}))
    finish(out_dir / "state.pt")


def _start(out_dir: Path, sleep_s: float = 0.0) -> subprocess.Popen:
    out_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, __file__, str(out_dir), str(sleep_s)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode(errors="replace")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigkilled_muon_run_resumes_to_the_uninterrupted_weights(tmp_path):
    reference = _start(tmp_path / "reference")
    killed = _start(tmp_path / "killed", sleep_s=0.25)
    state = tmp_path / "killed" / "state.pt"
    try:
        deadline = time.monotonic() + 240
        while not state.exists():
            assert killed.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        time.sleep(0.4)  # kill between checkpoints, not only right after one
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL
    _finish(_start(tmp_path / "killed"))
    _finish(reference)
    resumed = json.loads((tmp_path / "killed" / "result.json").read_text())
    uninterrupted = json.loads((tmp_path / "reference" / "result.json").read_text())
    assert 0 < resumed["resumed_from"] < STEPS and uninterrupted["resumed_from"] == 0
    assert _sha(tmp_path / "killed" / "final.safetensors") == _sha(tmp_path / "reference" / "final.safetensors")
    assert resumed["val_curve"] == uninterrupted["val_curve"]
    assert uninterrupted["val_curve"][-1][2] < uninterrupted["val_curve"][0][2]  # it learns


def test_muon_params_are_training_params_and_checked_by_name():
    import pytest

    from lib.core.params import ParamsError, from_mapping
    from lib.train.params import TrainParams
    p = from_mapping(TrainParams, RECIPE_OPTIM, "params.yaml: pretrain")
    assert (p.optimizer, p.muon_lr, p.head_lr) == ("muon", 0.05, 0.01)
    with pytest.raises(ParamsError, match="pretrain.optimizer"):
        from_mapping(TrainParams, {"optimizer": "lion"}, "params.yaml: pretrain")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker(Path(sys.argv[1]), float(sys.argv[2]))
