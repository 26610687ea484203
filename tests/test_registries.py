"""A new schedule, optimizer, document format or clean counter is one entry in its registry: each
test registers a toy one (for this test only) and runs it through the real code paths, with
nothing else edited."""
from __future__ import annotations

import ast
import csv
import importlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from lib.clean import CleanParams, clean
from lib.clean.counters import declared
from lib.clean.text import decode
from lib.clean.types import Extracted
from lib.core.params import ParamsError, from_mapping
from lib.data.batch import Batch
from lib.eval.validation import mean_loss
from lib.formats import registry
from lib.formats.format import DocumentFormat, Probe
from lib.formats.registry import sniff
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.scrape import ScrapeParams, scrape
from lib.train import optim, schedule
from lib.train.loop import finish, train
from lib.train.params import RunPlan, TrainParams
from tests.hpc_text import SENTENCES

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 40


def step_decay(done: float, lr: float, min_lr: float) -> float:
    """A toy schedule: the peak for the first half of the decay, the floor after."""
    return lr if done < 0.5 else min_lr


def sgd(roles: optim.Roles, p: optim.OptimParams, target: optim.Target):
    """A toy optimizer: plain SGD over the usual role groups; no initial_lr bookkeeping here."""
    return torch.optim.SGD(optim.role_groups(roles, p), lr=p.lr)


def test_a_registered_schedule_loads_from_params_and_drives_lr_at(monkeypatch):
    with pytest.raises(ParamsError, match=r"pretrain\.schedule: unknown schedule 'step'"):
        from_mapping(TrainParams, {"schedule": "step"}, "params.yaml: pretrain")
    monkeypatch.setitem(schedule.SCHEDULES, "step", step_decay)
    p = from_mapping(TrainParams, {"schedule": "step", "lr": 0.01, "min_lr": 0.001, "warmup_steps": 2},
                     "params.yaml: pretrain")
    got = [schedule.lr_at(s, p, 12) for s in range(12)]
    assert got == [0.005, 0.01] + [0.01] * 5 + [0.001] * 5


def test_an_unknown_schedule_or_optimizer_names_the_key_and_the_nearest_name():
    with pytest.raises(ParamsError, match=r"sft\.schedule: unknown schedule 'cosin'; did you mean 'cosine'\?"):
        from_mapping(TrainParams, {"schedule": "cosin"}, "params.yaml: sft")
    with pytest.raises(ParamsError, match=r"pretrain\.optimizer: unknown optimizer 'mun'; did you mean 'muon'\?"):
        from_mapping(TrainParams, {"optimizer": "mun"}, "params.yaml: pretrain")


def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=VOCAB, n_layer=1, n_head=2, n_kv_head=1, d_model=16, d_ff=32,
                           max_seq_len=12))


def batch(i: int) -> Batch:
    rows = (torch.randint(0, VOCAB, (4, 1), generator=torch.Generator().manual_seed(i)) + torch.arange(9)) % VOCAB
    return Batch.from_rows(rows.numpy())


def test_a_registered_optimizer_and_schedule_train_through_the_loop(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(optim.OPTIMIZERS, "sgd", sgd)
    monkeypatch.setitem(schedule.SCHEDULES, "step", step_decay)
    params = from_mapping(TrainParams, {"optimizer": "sgd", "schedule": "step", "lr": 0.5, "min_lr": 0.05,
                                        "warmup_steps": 2, "weight_decay": 0.0, "eval_every": 100,
                                        "checkpoint_every": 100}, "params.yaml: pretrain")
    model = tiny_model()
    before = mean_loss(model, [batch(10_000)], torch.device("cpu"))
    result = train(model, params, RunPlan(steps=30), torch.device("cpu"), batch,
                   lambda: mean_loss(model, [batch(10_000)], torch.device("cpu")), tmp_path / "state.pt", "k", "test")
    finish(tmp_path / "state.pt")
    rates = [row[3] for row in result.train_curve]
    assert rates[:3] == [0.25, 0.5, 0.5] and rates[-1] == 0.05  # warmup, then the toy decay
    assert result.final_val_loss < before - 0.5, (before, result.final_val_loss)


def test_an_optimizer_that_leaves_parameters_out_is_refused(monkeypatch):
    def hidden_only(roles, p, target):
        return torch.optim.SGD(roles["hidden"], lr=p.lr)
    monkeypatch.setitem(optim.OPTIMIZERS, "partial", hidden_only)
    with pytest.raises(ValueError, match="every trainable parameter once"):
        optim.build_optimizer(tiny_model(), optim.OptimParams(optimizer="partial"), torch.device("cpu"))


# A toy format: a two-column CSV glossary (term, explanation). Its extractor counts rows and
# rejects a ragged file; its post-processing step turns the row separator into a colon.
COUNTERS = ("csv_rows",)


def is_csv(probe: Probe, fmt: DocumentFormat) -> bool:
    if probe.text is None or not probe.named(fmt):
        return False
    lines = [ln for ln in probe.text.splitlines() if ln.strip()]
    return len(lines) >= 2 and all("," in ln for ln in lines)


def extract_csv(data: bytes, content_type: str | None, p: CleanParams, stats: Counter) -> Extracted:
    rows = list(csv.reader(io.StringIO(decode(data, None, stats))))
    if len({len(row) for row in rows}) != 1:
        return Extracted("", "", reason="csv_ragged")
    stats["csv_rows"] += len(rows) - 1
    return Extracted(" ".join(rows[0]), "\n\n".join(f"{term} -- {text}" for term, text in rows[1:]))


def csv_colons(text: str, p: CleanParams, stats: Counter) -> str:
    return text.replace(" -- ", ": ")


CSV = DocumentFormat("csv", ("csv",), ("text/csv",), is_csv, f"{__name__}:extract_csv",
                     post=(f"{__name__}:csv_colons",), reasons=("csv_ragged",))


def glossary() -> bytes:
    rows = [("Term", "Explanation")] + [(f"Topic {i}", s) for i, s in enumerate(SENTENCES)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def test_a_registered_format_is_sniffed_stored_and_cleaned(monkeypatch, tmp_path: Path):
    data = glossary()
    assert sniff(data, "glossary.csv") == "text"  # before: any text nothing else claims
    monkeypatch.setitem(registry.FORMATS, "csv", CSV)
    assert sniff(data, "glossary.csv") == "csv" and sniff(data, "glossary.txt") == "text"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "glossary.csv").write_bytes(data)
    (tmp_path / "docs" / "ragged.csv").write_bytes(b"a,b\nc,d\ne,f,g\nh,i\n")
    monkeypatch.chdir(tmp_path)
    scrape(from_mapping(ScrapeParams, {"sources": [{"path": "docs"}], "cache_dir": "", "out_dir": "raw"}, "s"))
    manifest = [json.loads(line) for line in (tmp_path / "raw" / "manifest.jsonl").read_text().splitlines()]
    assert {(r["type"], r["content_type"], Path(r["path"]).suffix) for r in manifest} == {("csv", "text/csv", ".csv")}
    metrics = clean(CleanParams(workers=1, raw_dir="raw", out_dir="clean"))
    [doc] = [json.loads(line) for line in (tmp_path / "clean" / "docs.jsonl").read_text().splitlines()]
    assert doc["type"] == "csv" and doc["title"] == "Term Explanation"
    assert doc["text"].startswith(f"Topic 0: {SENTENCES[0]}\n\nTopic 1: {SENTENCES[1]}")
    assert metrics["rules"]["csv_rows"] == len(SENTENCES) and metrics["dropped"]["csv_ragged"] == 1
    assert set(metrics["rules"]) == set(declared())  # the toy's counter came with its format


def emitted(path: Path) -> set[str]:
    """Counter names a module adds to a stats Counter: ``stats["x"] += n``, ``stats.update(x=n)``
    (``stats`` or ``self.stats``)."""
    def is_stats(node) -> bool:
        return (isinstance(node, ast.Name) and node.id == "stats") or \
            (isinstance(node, ast.Attribute) and node.attr == "stats")
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and is_stats(node.value):
            assert isinstance(node.slice, ast.Constant), f"{path}:{node.lineno}: a counter name must be a literal"
            names.add(node.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "update" and is_stats(node.func.value):
            assert node.keywords and not node.args, f"{path}:{node.lineno}: stats.update(name=n) only"
            names |= {k.arg for k in node.keywords}
    return names


def test_every_clean_module_declares_exactly_the_counters_it_emits():
    modules = sorted((ROOT / "lib" / "clean").glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        module = importlib.import_module(f"lib.clean.{path.stem}") if path.stem != "__init__" else None
        declared_here = set(getattr(module, "COUNTERS", ()))
        counted = emitted(path)
        assert counted == declared_here, f"{path}: counts {sorted(counted)}, declares {sorted(declared_here)}"
    everything = set().union(*(emitted(p) for p in modules))
    assert set(declared()) == everything and len(everything) >= 25


def test_every_format_step_resolves_and_the_clean_stage_depends_on_its_module():
    """The steps are named, not imported, so the scrape stage does not depend on them: the clean
    stage's dvc.yaml deps must cover their modules instead."""
    import yaml
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps, scrape_deps = stages["clean"]["deps"], stages["scrape"]["deps"]
    for fmt in registry.FORMATS.values():
        for ref in (fmt.extract, *fmt.post):
            assert callable(registry.load(ref)), ref
            path = registry.module_of(ref).replace(".", "/") + ".py"
            assert any(path.startswith(d.rstrip("/") + "/") for d in deps), f"{ref}: not under clean's deps"
            assert not any(path.startswith(d.rstrip("/") + "/") for d in scrape_deps), ref
