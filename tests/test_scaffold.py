"""The training frame both stages share (lib/train/scaffold.py): every output, the figures split
into headline / stats / timing, the summary line with why the run stopped, the batch source
closed, and the resumable state deleted only once the outputs are whole."""
from __future__ import annotations

import json

import pytest
import torch

from lib.data.batch import Batch
from lib.model.checkpoint import load_model
from lib.train.scaffold import TrainingRun
from tests.fixtures_tiny import hpc_sentences, tiny_model, tiny_tokenizer, train_config

CPU = torch.device("cpu")


class Batches:
    """Windows of real tokenized text, with the ``close()`` a prefetcher has."""

    def __init__(self, tokenizer, seq_len: int = 16, rows: int = 4):
        self.ids = torch.tensor([i for s in hpc_sentences() for i in tokenizer.encode(s)])
        self.seq_len, self.rows, self.closed = seq_len, rows, False

    def __call__(self, index: int):
        starts = (torch.arange(self.rows) * 97 + index * 31) % (len(self.ids) - self.seq_len - 1)
        windows = torch.stack([self.ids[s:s + self.seq_len + 1] for s in starts.tolist()])
        return Batch.from_rows(windows.numpy())

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("seed: 0\n")  # no attention section: learned attention
    return tmp_path


def start(stage: str = "pretrain"):
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer.vocab_size)
    params, plan = train_config(steps=30, lr=1e-2, min_lr=1e-3, warmup_steps=2, eval_every=2,
                                early_stop_patience=1, checkpoint_every=2)
    return TrainingRun(stage, model, tokenizer, params, seed=0), model, Batches(tokenizer), plan


def test_a_run_writes_every_output_and_says_when_and_why_it_stopped(project, capsys):
    run, model, batches, plan = start()
    losses = iter([5.0, 4.0, 4.5])  # a new best at step 2, none at step 4: patience 1 stops there
    with run:
        result = run.train(plan, CPU, batches, lambda: next(losses), lambda step: {"MPI is": "x"}, inputs=["abc"])
        assert (project / "checkpoints/pretrain/state.pt").is_file()  # until the outputs are whole
        run.save(result, result.best_model, model.state_dict(), result.samples,
                 {"params": model.num_params(), "best_val_bpb": 1.5}, "(1.5000 bits/byte)")
    assert batches.closed and not (project / "checkpoints/pretrain/state.pt").exists()

    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("pretrain: 4 steps, best val loss 4.0000 at step 2 (1.5000 bits/byte); stopped early "
                           "at step 4 of 30: no new best val loss in 1 validations (early_stop_patience) -> "
                           "models/pretrain, samples in models/samples/pretrain.json (")
    assert line.endswith(" s)")

    assert json.loads((project / "metrics/pretrain.json").read_text()) == {"steps": 4, "val_bpb": 1.5}
    stats = json.loads((project / "data/stats/pretrain.json").read_text())
    assert stats["params"] == model.num_params() and stats["stopped_by"] == "early_stop_patience"
    assert stats["best_step"] == 2 and stats["early_stopped"] is True and "seconds" not in stats
    assert set(json.loads((project / "metrics/timing/pretrain.json").read_text())) == {"seconds", "tokens_per_s", "mfu"}
    loaded = load_model(project / "models/pretrain", CPU)
    assert torch.equal(loaded.state_dict()["lm_head.weight"], result.best_model["lm_head.weight"])
    assert (project / "models/pretrain/final/model.safetensors").is_file()
    assert (project / "metrics/plots/pretrain/val.csv").read_text().splitlines()[1:] == \
        ["0,0,5", "2,128,4", "4,256,4.5"]
    assert json.loads((project / "models/samples/pretrain.json").read_text()) == result.samples


def test_a_failure_after_training_keeps_the_state_and_still_closes_the_batches(project):
    run, model, batches, plan = start("sft")
    with pytest.raises(OSError, match="disk full"):
        with run:
            run.train(plan, CPU, batches, lambda: 4.0, lambda step: {}, inputs=[])
            raise OSError("disk full")  # e.g. while writing the outputs
    assert batches.closed and (project / "checkpoints/sft/state.pt").is_file()  # a rerun resumes, done
    assert not (project / "metrics/sft.json").exists()
