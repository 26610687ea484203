"""lm-evaluation-harness as the real client of an exported model: its LAMBADA accuracy and
perplexity (``--model hf`` over a local task file, hub access off) equal ours (lib/eval/lambada.py, what
the eval stage reports) to 4 decimals, with and without BOS.

Always runs on a tiny model trained here for a few seconds (so perplexity is small and accuracy
not zero: both comparisons mean something); also on models/pretrain when it is present.
"""
from __future__ import annotations

import json
import os
import random
import sys
import types
from pathlib import Path

import pytest
import torch

from lib.model.checkpoint import save_model
from lib.hf.export import export_model
from lib.eval.harness import check_tasks, lambada_task, run_tasks, write_task
from lib.eval.lambada import evaluate_lambada, read_lambada
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.core.params import read_params
from lib.tokenizer import MODEL_FILE, Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
pytest.importorskip("transformers")
pytest.importorskip("lm_eval")

pytestmark = pytest.mark.slow  # ~30-60 s on 2 CPU cores, most of it importing the harness
ROOT = Path(__file__).resolve().parent.parent


def trained_model_dirs() -> tuple[Path, Path]:
    """models/pretrain and models/tokenizer, or the directories HPC_LM_PARITY_MODEL and
    HPC_LM_PARITY_TOKENIZER name (to check another trained model)."""
    return (Path(os.environ.get("HPC_LM_PARITY_MODEL", ROOT / "models" / "pretrain")),
            Path(os.environ.get("HPC_LM_PARITY_TOKENIZER", ROOT / "models" / "tokenizer")))
DECIMALS = 4


@pytest.fixture(scope="module", autouse=True)
def accelerate_available():
    """lm-eval's HF model imports ``accelerate`` at module level but, on one CPU process with an
    explicit device_map, uses only these names. Until accelerate is a dev dependency, a stand-in
    with single-process answers is installed for this module; the real package wins when present."""
    try:
        import accelerate  # noqa: F401
        yield
        return
    except ImportError:
        pass
    from transformers.utils import import_utils
    import_utils.is_accelerate_available()  # transformers caches "absent" before the stand-in exists
    acc, utils = types.ModuleType("accelerate"), types.ModuleType("accelerate.utils")

    class Accelerator:
        num_processes, process_index, local_process_index = 1, 0, 0
        is_main_process = is_local_main_process = True
        device = torch.device("cpu")

        def __init__(self, **kwargs):
            pass

    def find_executable_batch_size(function=None, starting_batch_size=1):
        def wrap(f):
            return lambda *a, **kw: f(starting_batch_size, *a, **kw)
        return wrap if function is None else wrap(function)

    acc.Accelerator, acc.find_executable_batch_size = Accelerator, find_executable_batch_size
    acc.InitProcessGroupKwargs = lambda **kwargs: kwargs
    utils.get_max_memory = lambda: {}
    acc.utils = utils
    sys.modules.update({"accelerate": acc, "accelerate.utils": utils})
    yield
    for name in ("accelerate", "accelerate.utils"):
        sys.modules.pop(name, None)


WORDS = ("the rank sends a message to every node while threads share the loop iterations of a parallel "
         "region and a kernel launches blocks of threads on the device so the cache line bounces between "
         "cores when false sharing happens and MPI_Allreduce sums the values of every rank").split()


def passages(n: int, seed: int) -> list[str]:
    """Walks along WORDS that jump to a random word one step in four: learnable, not certain."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i, words = rng.randrange(len(WORDS)), []
        for _ in range(rng.randint(6, 30)):
            words.append(WORDS[i])
            i = (i + 1) % len(WORDS) if rng.random() < 0.75 else rng.randrange(len(WORDS))
        out.append(" ".join(words))
    return out


def train_tiny(tok: Tokenizer, texts: list[str], steps: int = 60) -> GPT:
    """A few seconds of training: tiny ops, where a second thread costs more than it gives."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(tok, texts, steps)
    finally:
        torch.set_num_threads(threads)


def _train(tok: Tokenizer, texts: list[str], steps: int) -> GPT:
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, n_head=4, n_kv_head=2, d_model=32, d_ff=64, max_seq_len=24,
                            dropout=0.0, tie_embeddings=True, vocab_size=tok.vocab_size))
    stream = torch.tensor([i for t in texts for i in [tok.bos_id] + tok.encode(t)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        starts = torch.randint(0, len(stream) - 25, (8,), generator=g)
        batch = torch.stack([stream[s:s + 25] for s in starts])
        _, loss = model(batch[:, :-1], batch[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def compare(hf_dir: Path, model: GPT, tok: Tokenizer, jsonl: Path, task_dir: Path, task: str, bos: bool) -> tuple:
    raw = run_tasks(hf_dir, [task], check_tasks([task], [str(task_dir)]), bos, 8, bootstrap_iters=0)["_raw"]
    harness = {"accuracy": raw["results"][task]["acc,none"], "perplexity": raw["results"][task]["perplexity,none"],
               "passages": raw["n-samples"][task]["effective"]}  # unrounded, as the harness computed them
    ours = evaluate_lambada(model, read_lambada(jsonl, tok, bos), "cpu", 8, progress=False)
    print(f"\n{task} bos={bos}: harness acc {harness['accuracy']:.4f} ppl {harness['perplexity']:.4f} | "
          f"ours acc {ours['accuracy']:.4f} ppl {ours['perplexity']:.4f} ({ours['passages']} passages, "
          f"{ours['truncated']} truncated)")
    assert harness["passages"] == ours["passages"]
    assert round(harness["accuracy"], DECIMALS) == round(ours["accuracy"], DECIMALS)
    # Perplexity equal to 4 decimals (as a tolerance: rounding both could split values 1e-9 apart).
    # Float32 logits carry ~7 significant digits, and the harness batches (so pads) passages
    # differently and sums a target's log-probs in float32, so a weak model's perplexity of
    # ~2e4 agrees to ~1e-8 relative, not to 4 decimals: there the relative bound applies.
    diff = abs(harness["perplexity"] - ours["perplexity"])
    assert diff < 0.5 * 10 ** -DECIMALS or diff / ours["perplexity"] < 1e-6
    return harness, ours


def prepend_bos_param() -> bool:
    try:
        return bool(read_params(ROOT / "params.yaml").get("eval", {}).get("prepend_bos", True))
    except Exception:  # params.yaml mid-edit by someone else: the harness default
        return True


def test_task_file_shipped_matches_generated():
    import yaml
    shipped = yaml.safe_load((ROOT / "lib" / "hf" / "tasks" / "lambada_hpc.yaml").read_text())
    generated = lambada_task("lambada_hpc", "data/sample/eval/lambada_hpc.jsonl")
    assert shipped == generated


def test_harness_lambada_equals_ours_on_tiny_model(tmp_path):
    train_texts = passages(300, 0)
    params = TokenizerParams(vocab_size=420, num_threads=1)
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / MODEL_FILE).write_bytes(train_tokenizer(train_texts, params, ["MPI_Allreduce"], seed=0))
    tok = Tokenizer.load(tmp_path / "tok")
    model = train_tiny(tok, train_texts)
    save_model(tmp_path / "ours", model, tok.sha256)
    export_model(tmp_path / "ours", tmp_path / "tok", tmp_path / "hf")
    jsonl = tmp_path / "lambada.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in passages(10, 1)), encoding="utf-8")
    write_task(tmp_path / "tasks", "lambada_tiny", lambada_task("lambada_tiny", jsonl.resolve()))
    bos = prepend_bos_param()
    harness, ours = compare(tmp_path / "hf", model, tok, jsonl, tmp_path / "tasks", "lambada_tiny", bos)
    # the comparison covers truncated passages, hits and misses
    assert ours["truncated"] > 0 and 0 < ours["accuracy"] < 1
    compare(tmp_path / "hf", model, tok, jsonl, tmp_path / "tasks", "lambada_tiny", not bos)


def test_harness_lambada_equals_ours_on_trained_model(tmp_path):
    model_dir, tok_dir = trained_model_dirs()
    jsonl = ROOT / "data" / "sample" / "eval" / "lambada_hpc.jsonl"
    if not (model_dir / "model.safetensors").exists() or not (tok_dir / MODEL_FILE).exists():
        pytest.skip("models/pretrain or models/tokenizer absent (run `dvc repro pretrain`)")
    tok = Tokenizer.load(tok_dir)
    if json.loads((model_dir / "config.json").read_text()).get("tokenizer_sha256") != tok.sha256:
        pytest.skip("models/pretrain was trained with another tokenizer than models/tokenizer (stale; `dvc repro`)")
    from lib.model.checkpoint import load_model
    model = load_model(model_dir, "cpu", tok.sha256)
    export_model(model_dir, tok_dir, tmp_path / "hf")
    write_task(tmp_path / "tasks", "lambada_hpc_abs", lambada_task("lambada_hpc_abs", Path(jsonl).resolve()))
    compare(tmp_path / "hf", model, tok, jsonl, tmp_path / "tasks", "lambada_hpc_abs", prepend_bos_param())
