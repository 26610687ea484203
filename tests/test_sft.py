"""SFT data and training: record shapes, bad records (error with file:line, or skip and count),
truncate/drop, the loss mask through collation token by token, and a tiny run that lowers the val
loss, with and without LoRA, ending in a plain checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.fixtures_tiny import tiny_model, tiny_tokenizer
from lib.tokenizer.chat import encode_chat, to_messages
from lib.model.checkpoint import load_model, save_model
from lib.core.errors import UserError
from lib.model.lora import LoRAParams, apply_lora, merge_lora
from lib.core.params import load_section
from lib.data.sft import EpochBatches, collate, load_examples, read_conversations
from lib.train.sft import SFTParams
from lib.eval.validation import mean_loss
from lib.train.loop import train
from tests.fixtures_tiny import train_config

ROOT = Path(__file__).resolve().parent.parent
GOOD = [
    {"prompt": "What is an MPI rank?", "response": "The id of a process in a communicator."},
    {"instruction": "Name the loop clause.", "input": "OpenMP", "output": "collapse merges nested loops."},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "GPU?"},
                  {"role": "assistant", "content": "A many-core accelerator."},
                  {"role": "user", "content": "CUDA?"}, {"role": "assistant", "content": "NVIDIA's GPU API."}]},
]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def qa(i: int) -> dict:
    topic = ["MPI rank", "OpenMP threads", "CUDA kernel", "NUMA memory", "Slurm jobs", "cache line"][i % 6]
    return {"prompt": f"What about the {topic} {i}?", "response": f"The {topic} shares the loop on every node."}


def test_reads_every_shape(tmp_path, tok):
    path = write(tmp_path / "d.jsonl", GOOD * 10)
    train_set, val_set, stats = load_examples(path, tok, 128, 0.3)
    assert stats["records"] == 30 and stats["bad_records"] == 0 and stats["truncated"] == 0
    assert len(train_set) + len(val_set) == 30 and train_set and val_set
    for e in train_set + val_set:
        assert (e.ids, e.mask) == encode_chat(tok, e.messages)


@pytest.mark.parametrize("line, reason", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({"text": "x"}, "unknown record shape"),
    ({"messages": [{"role": "user", "content": "only a question"}]}, "must end with an assistant reply"),
])
def test_bad_record_stops_with_file_and_line(tmp_path, tok, line, reason):
    path = write(tmp_path / "d.jsonl", [GOOD[0], "", GOOD[1], line, GOOD[2]])
    with pytest.raises(UserError) as err:
        load_examples(path, tok, 128, 0.3)
    assert str(err.value).startswith(f"{path}:4: ") and reason in str(err.value)
    assert "sft.on_bad_record: skip" in str(err.value)


def test_bad_records_skipped_and_counted(tmp_path, tok):
    path = write(tmp_path / "d.jsonl", [qa(i) for i in range(12)] + ["{bad", {"text": 1}, "[]"])
    _, _, stats = load_examples(path, tok, 128, 0.3, on_bad_record="skip")
    assert stats["records"] == 12 and stats["bad_records"] == 3
    assert [e.split(": ")[0] for e in stats["bad_examples"]] == [f"{path}:{n}" for n in (13, 14, 15)]


def test_truncate_or_drop_long_examples(tmp_path, tok):
    long = {"prompt": "Explain the MPI rank.", "response": "the MPI rank sends a message to every node " * 8}
    path = write(tmp_path / "d.jsonl", [qa(i) for i in range(12)] + [long])
    n_long = len(encode_chat(tok, to_messages(long, "x"))[0])
    max_len = n_long - 5
    tr, va, stats = load_examples(path, tok, max_len, 0.3, truncate="truncate")
    assert stats["truncated"] == 1 and stats["dropped_too_long"] == 0
    assert max(len(e.ids) for e in tr + va) == max_len + 1
    tr, va, stats = load_examples(path, tok, max_len, 0.3, truncate="drop")
    assert stats["truncated"] == 0 and stats["dropped_too_long"] == 1 and len(tr) + len(va) == 12
    # cut before the reply starts: nothing left to learn, dropped and counted
    short_max = max(len(encode_chat(tok, to_messages(qa(i), "x"))[0]) for i in range(12))
    rambling = {"prompt": "the MPI rank sends a message " * 8, "response": "ok"}
    path = write(tmp_path / "d2.jsonl", [qa(i) for i in range(12)] + [rambling])
    _, _, stats = load_examples(path, tok, short_max, 0.3)
    assert stats["dropped_too_long"] == 1 and stats["truncated"] == 0 and stats["records"] == 13


def test_collated_mask_token_by_token(tmp_path, tok):
    """Every target is learned exactly when it is an assistant token or an assistant's end marker:
    no loss on BOS, system, user, role markers or padding."""
    path = write(tmp_path / "d.jsonl", GOOD * 4)
    examples, val, _ = load_examples(path, tok, 128, 0.3)
    b = collate(examples + val, tok.pad_id)
    x, y, m = b.inputs, b.targets, b.loss_mask
    end, assistant = tok.marker("end"), tok.marker("assistant")
    for row, e in enumerate(examples + val):
        n = len(e.ids) - 1
        assert x[row, :n].tolist() == e.ids[:-1] and y[row, :n].tolist() == e.ids[1:]
        assert m[row, n:].sum() == 0, "padding is never a target"
        role = None
        for t in range(n):
            prev = x[row, t].item()
            if prev in {tok.marker(r) for r in ("system", "user", "assistant")}:
                role = prev
            target_is_reply = role == assistant and (y[row, t].item() not in {tok.marker(r) for r in
                                                                             ("system", "user", "assistant")})
            assert m[row, t].item() == int(target_is_reply), (row, t)
            if prev == end:
                role = None
        assert m[row].sum() == sum(len(tok.encode(msg.content)) + 1 for msg in e.messages if msg.role == "assistant")


def test_loss_reaches_assistant_tokens_only(tmp_path, tok):
    path = write(tmp_path / "d.jsonl", GOOD * 4)
    examples, _, _ = load_examples(path, tok, 128, 0.3)
    b = collate(examples[:3], tok.pad_id)
    x, y, m = b.inputs, b.targets, b.loss_mask
    model = tiny_model(tok.vocab_size)
    logits, loss = model(x, y, loss_mask=m)
    logits.retain_grad()
    loss.backward()
    touched = logits.grad.abs().sum(-1) > 0
    assert torch.equal(touched, m.bool())
    expected = torch.nn.functional.cross_entropy(logits[m.bool()], y[m.bool()])
    torch.testing.assert_close(loss, expected)


def loop(steps: int, lr: float):
    return train_config(steps=steps, lr=lr, min_lr=3e-4, warmup_steps=2, weight_decay=0.0, beta1=0.9,
                      beta2=0.95, grad_clip=1.0, eval_every=steps, checkpoint_every=1000)


@pytest.mark.parametrize("lora", [False, True])
def test_tiny_sft_lowers_val_loss_and_saves_a_plain_model(tmp_path, tok, lora):
    path = write(tmp_path / "d.jsonl", [qa(i) for i in range(40)])
    train_set, val_set, _ = load_examples(path, tok, 48, 0.2)
    model = tiny_model(tok.vocab_size)
    if lora:
        apply_lora(model, LoRAParams(enabled=True, rank=4, alpha=8.0, dropout=0.0, targets=["wq", "wv", "w_up", "w_down"]))
    batches = EpochBatches(train_set, 8, 0, tok.pad_id)
    val_batches = EpochBatches(val_set, 8, 0, tok.pad_id)
    device = torch.device("cpu")
    result = train(model, *loop(batches.steps(3), 3e-2 if lora else 3e-3), device, batches.batch,
                   lambda: mean_loss(model, val_batches.all_batches(), device), tmp_path / "state.pt", "k", "sft")
    assert result.best_val_loss < result.val_curve[0][2] - (0.1 if lora else 0.3)
    model.load_state_dict(result.best_model)
    if lora:
        merge_lora(model)
    save_model(tmp_path / "sft", model, tok.sha256)
    reloaded = load_model(tmp_path / "sft", tokenizer_sha256=tok.sha256)
    assert abs(mean_loss(reloaded, val_batches.all_batches(), device) - result.best_val_loss) < 1e-4


def test_shipped_sample_and_params(tok):
    params = load_section("sft", SFTParams, ROOT / "params.yaml")
    data = ROOT / params.data
    records = list(read_conversations(data, "error"))
    assert len(records) == sum(1 for line in data.read_text().splitlines() if line.strip())
    shapes = {("messages" in r) * 1 + ("instruction" in r) * 2 for _, r, _ in records}
    assert shapes == {0, 1, 2}, "the sample covers all three record shapes"
