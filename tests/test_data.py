"""Loader: reproducible and resumable windows, disjoint DDP streams, windows inside documents,
identical batches through worker processes, a complete val pass, flat memory; the one Batch."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.data.batch import Batch
from lib.data.prefetch import Prefetcher
from lib.data.val_windows import val_windows
from lib.data.windows import TrainWindows
from lib.core.errors import UserError
from lib.core.io import write_json
from lib.data.shards import META_FILE, open_split, write_split

BOS, EOS = 2, 3


def make_docs(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[BOS] + rng.integers(10, 1000, size=rng.integers(5, 120)).tolist() + [EOS] for _ in range(n)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list:
    root = tmp_path_factory.mktemp("shards")
    meta = {"vocab_size": 1000, "tokenizer_sha256": "cd" * 32, "dtype": "uint16", "bos_id": BOS, "eos_id": EOS,
            "splits": {"train": write_split(root / "train", make_docs(400), "uint16", 4096, 1000, "cd" * 32),
                       "val": write_split(root / "val", make_docs(60, seed=1), "uint16", 1024, 1000, "cd" * 32)}}
    write_json(root / META_FILE, meta)
    return open_split(root / "train")


@pytest.fixture(scope="module")
def val_shards(shards) -> list:
    return open_split(Path(shards[0].path).parent.parent / "val")


def test_windows_are_shifted_slices_of_the_shards(shards):
    w = TrainWindows(shards, seq_len=32, batch_size=8, seed=1)
    b = w.batch(0)
    x, y = b.inputs, b.targets
    assert b.loss_mask is None and b.scored_tokens == 8 * 32
    assert x.shape == y.shape == (8, 32) and x.dtype == y.dtype == torch.int64
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(x[:, 1:], y[:, :-1])
    text = np.concatenate([np.asarray(s.tokens) for s in shards]).tobytes()
    for row in torch.cat([x, y[:, -1:]], dim=1).numpy().astype(np.uint16):
        assert row.tobytes() in text


def test_batches_depend_only_on_seed_and_index(shards):
    a, b = TrainWindows(shards, 32, 8, seed=1), TrainWindows(shards, 32, 8, seed=1)
    assert torch.equal(a.batch(7).inputs, b.batch(7).inputs)
    assert not torch.equal(a.batch(7).inputs, a.batch(8).inputs)
    assert not torch.equal(a.batch(7).inputs, TrainWindows(shards, 32, 8, seed=2).batch(7).inputs)


def test_the_batch_index_is_the_whole_loader_state(shards):
    """A resumed run rebuilds the loader and asks for batch ``step``: nothing else to restore."""
    full = TrainWindows(shards, 32, 4, seed=3)
    expected = [full.batch(i).inputs for i in range(10)]
    resumed = TrainWindows(shards, 32, 4, seed=3)
    assert all(torch.equal(resumed.batch(i).inputs, expected[i]) for i in range(6, 10))
    assert not torch.equal(TrainWindows(shards, 32, 4, seed=4).batch(6).inputs, expected[6])


def test_ddp_ranks_are_disjoint_and_together_the_global_batch(shards):
    single = TrainWindows(shards, 32, 8, seed=5).batch(11).inputs
    ranks = [TrainWindows(shards, 32, 2, seed=5, rank=r, world_size=4).batch(11).inputs for r in range(4)]
    for r in range(4):
        assert torch.equal(ranks[r], single[r::4])
    # the same global batch with another world size: a resume on other hardware sees the same data
    two = [TrainWindows(shards, 32, 4, seed=5, rank=r, world_size=2).batch(11).inputs for r in range(2)]
    assert torch.equal(torch.cat(two).sort(dim=0).values, single.sort(dim=0).values)
    with pytest.raises(ValueError, match="rank 2"):
        TrainWindows(shards, 32, 2, seed=5, rank=2, world_size=2)


def test_windows_can_stay_inside_documents(shards):
    w = TrainWindows(shards, seq_len=40, batch_size=64, seed=0, cross_documents=False)
    seen_start = 0
    for i in range(20):
        b = w.batch(i)
        x, y = b.inputs, b.targets
        rows = torch.cat([x, y[:, -1:]], dim=1)
        # a window inside one document holds BOS only first and EOS only last
        assert not (rows[:, 1:] == BOS).any() and not (rows[:, :-1] == EOS).any()
        seen_start += int((rows[:, 0] == BOS).sum())
    assert seen_start > 0  # document starts are drawn too
    crossing = TrainWindows(shards, seq_len=40, batch_size=64, seed=0)
    assert any((crossing.batch(i).inputs[:, 1:] == BOS).any() for i in range(5))
    with pytest.raises(UserError, match="per document, fewer than seq_len"):
        TrainWindows(shards, seq_len=500, batch_size=4, seed=0, cross_documents=False)


def test_too_long_seq_len_is_a_user_error(val_shards):
    with pytest.raises(UserError, match="lower seq_len"):
        TrainWindows(val_shards, seq_len=100_000, batch_size=4, seed=0)


@pytest.mark.parametrize("workers", [0, 2])  # a background thread, two worker processes
def test_prefetcher_gives_the_same_batches(shards, workers):
    w = TrainWindows(shards, 32, 8, seed=9)
    p = Prefetcher(w, num_workers=workers)
    try:
        steps = list(range(5, 25)) + [3, 4, 5]  # and a jump back, as on resume
        for step in steps:
            got, expected = p(step), w.batch(step)
            assert torch.equal(got.inputs, expected.inputs) and torch.equal(got.targets, expected.targets)
    finally:
        p.close()


def test_val_pass_is_complete_and_non_overlapping(val_shards):
    seq = 16
    batches = list(val_windows(val_shards, seq, batch_size=5))
    rows = torch.cat([torch.cat([b.inputs, b.targets[:, -1:]], 1) for b in batches])
    expected = sum((len(s.tokens) - 1) // seq for s in val_shards)
    assert len(rows) == expected
    # consecutive windows of a shard share exactly one token: the last target is the next first input
    flat = np.concatenate([np.asarray(s.tokens[:(len(s.tokens) - 1) // seq * seq + 1]) for s in val_shards])
    assert rows[0, 0] == flat[0]
    assert list(val_windows(val_shards, seq, 5, max_batches=2)).__len__() == 2
    again = list(val_windows(val_shards, seq, batch_size=5))
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(batches, again))


def test_val_ranks_split_the_pass_evenly(val_shards):
    seq = 16
    whole = torch.cat([b.inputs for b in val_windows(val_shards, seq, batch_size=4)])
    parts = [torch.cat([b.inputs for b in val_windows(val_shards, seq, 4, rank=r, world_size=3)]) for r in range(3)]
    assert len({len(p) for p in parts}) == 1
    usable = len(whole) - len(whole) % 3
    for r in range(3):
        assert torch.equal(parts[r], whole[:usable][r::3])


def test_memory_does_not_grow(shards):
    w = TrainWindows(shards, 64, 16, seed=0)
    for i in range(200):
        w.batch(i)
    tracemalloc.start()
    try:
        for i in range(200, 3000):  # crosses the periodic memmap refresh too
            w.batch(i)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < 256 * 1024


def test_prefetcher_raises_the_loaders_error(shards, monkeypatch):
    w = TrainWindows(shards, 32, 8, seed=9)
    p = Prefetcher(w)
    monkeypatch.setattr(w, "rows", lambda index: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        p(0)
    p.close()


def test_windows_pickle_without_their_tokens(shards):
    import pickle
    w = TrainWindows(shards, 32, 8, seed=9)
    data = pickle.dumps(w)
    assert len(data) < 20_000  # paths and small arrays, not the shards' tokens
    assert torch.equal(pickle.loads(data).batch(3).inputs, w.batch(3).inputs)


def test_batch_right_padded_scores_only_masked_real_tokens():
    b = Batch.right_padded([[2, 5, 6, 7], [2, 8]], [[0, 0, 1, 1], [0, 1]], pad_id=0)
    assert b.inputs.tolist() == [[2, 5, 6], [2, 0, 0]] and b.targets.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b.loss_mask.tolist() == [[0, 1, 1], [1, 0, 0]] and b.scored_tokens == 3
    assert Batch(b.inputs, b.targets).scored_tokens == 6  # no mask: every target


def test_batch_moves_and_slices_as_one(shards):
    b = TrainWindows(shards, 16, 6, seed=0).batch(0)
    b = Batch(b.inputs, b.targets, torch.ones_like(b.targets))
    moved = b.to("meta")
    assert {t.device.type for t in (moved.inputs, moved.targets, moved.loss_mask)} == {"meta"}
    half = b.rows(slice(1, None, 2))
    assert torch.equal(half.inputs, b.inputs[1::2]) and torch.equal(half.loss_mask, b.loss_mask[1::2])
    assert Batch(b.inputs, b.targets).to("meta").loss_mask is None


def test_dataloader_pins_a_batch_through_its_own_method(monkeypatch):
    """torch's DataLoader pins what a worker returns by calling its ``pin_memory()``: a Batch is
    pinned whole on CUDA (checked here without a GPU: the call is what matters)."""
    from torch.utils.data._utils.pin_memory import pin_memory
    b = Batch.from_rows(np.arange(18, dtype=np.int64).reshape(2, 9))
    monkeypatch.setattr(Batch, "pin_memory", lambda self: ("pinned", self))
    assert pin_memory(b) == ("pinned", b)


def _window_starts(val_shards, batches) -> list[int]:
    """Each window's start as a token offset into the split's shards laid end to end."""
    flat = np.concatenate([np.asarray(s.tokens) for s in val_shards]).astype(np.int64)
    offsets = np.cumsum([0] + [len(s.tokens) for s in val_shards])
    starts = []
    for row in torch.cat([torch.cat([b.inputs, b.targets[:, -1:]], 1) for b in batches]).numpy():
        # a window never crosses a shard: find it inside one shard's slice of the flat split
        hits = [int(o) + int(i) for o, e in zip(offsets[:-1], offsets[1:])
                for i in np.flatnonzero(np.lib.stride_tricks.sliding_window_view(flat[o:e], len(row))
                                        .__eq__(row).all(1))]
        assert hits, "every window is a whole slice of one shard"
        starts.append(hits[0])
    return starts


def test_capped_val_pass_spreads_over_the_whole_split(val_shards):
    seq, batch = 16, 2
    total = sum(len(s.tokens) for s in val_shards)
    assert len(val_shards) >= 3  # many documents over several shards
    capped = list(val_windows(val_shards, seq, batch, max_batches=3))
    assert [b.inputs.shape for b in capped] == [(batch, seq)] * 3  # whole windows only
    starts = _window_starts(val_shards, capped)
    assert starts == sorted(starts) and starts[0] == 0
    # six windows at a stride of a sixth of the split: the last starts in its last sixth, and no
    # gap between neighbours is much above the stride (the first windows in order sat in shard 0)
    assert starts[-1] > total * 5 / 6 - 2 * seq
    assert max(np.diff(starts)) < total / 6 + 2 * seq
    again = list(val_windows(val_shards, seq, batch, max_batches=3))
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(capped, again))  # same every validation


def test_val_pass_capped_at_the_split_is_the_whole_split(val_shards):
    seq = 16
    whole = torch.cat([b.inputs for b in val_windows(val_shards, seq, batch_size=4)])
    enough = -(-len(whole) // 4)
    for cap in (enough, enough + 5):
        assert torch.equal(torch.cat([b.inputs for b in val_windows(val_shards, seq, 4, max_batches=cap)]), whole)
    assert len(torch.cat([b.inputs for b in val_windows(val_shards, seq, 4, max_batches=enough - 1)])) == 4 * (enough - 1)


def test_capped_val_ranks_share_the_spread_windows(val_shards):
    seq, batch, cap = 16, 2, 3
    one = torch.cat([b.inputs for b in val_windows(val_shards, seq, batch, max_batches=cap * 3)])
    parts = [torch.cat([b.inputs for b in val_windows(val_shards, seq, batch, cap, rank=r, world_size=3)])
             for r in range(3)]
    assert all(len(p) == batch * cap for p in parts)
    for r in range(3):
        assert torch.equal(parts[r], one[r::3])
