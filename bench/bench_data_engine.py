"""The data stages (scrape, clean, corpus, tokenizer, pack) at 1x, 4x and 16x volume, on the local
engine and on Ray with 1 and 2 workers: seconds per stage, MB/s and peak RSS per process.

Input: real third-party documents (tests/real_docs.py, the groups with topic "hpc": Slurm, MPICH,
FFTW and hwloc HTML manuals) plus the shipped sample's text and HTML files. Copy 0 of each file is
the file itself; copy c > 0 has a made-up word, distinct per copy and position, inserted after every
6th word of running text (outside HTML tags), so no copy is an exact or MinHash near-duplicate of
another and the kept count grows with the volume (``kept_ratio`` in the results). PDFs are left out: a copy of a PDF that differs
in its text would have to be typeset again.

Each stage runs as `python -m stages.X` in a throwaway copy of the project, as `dvc repro` runs it.
Peak RSS is sampled every 0.1 s with psutil: `rss_stage_mb` is the stage process itself,
`rss_worker_mb` the largest single worker (local: the stage's pool processes; Ray: the `ray::`
worker processes under this bench's raylets). MB/s is the input volume (raw bytes scraped) over
the stage's wall time. Ray clusters are started as the tests start them (tests/ray_cluster.py):
one `ray start` per node, one CPU each.

    nice uv run --extra ray python -m bench.bench_data_engine   # writes bench/results/data_engine.json
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import ray_cluster  # noqa: E402
from tests.pipeline_helpers import merge, project_files  # noqa: E402
from tests.real_docs import GROUPS, files  # noqa: E402

STAGES = ("scrape", "clean", "corpus", "tokenizer", "pack")
SCALES = (1, 4, 16)
ENGINES = (("local", 0), ("ray", 1), ("ray", 2))  # (engine, Ray nodes of one CPU each)
TEXT_TYPES = (".html", ".htm", ".shtml", ".md", ".txt")
TAG = re.compile(r"(<[^>]*>)")
EVERY = 6  # a 5-shingle window then holds at most 5 original words: no shingle survives whole
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
OUT = ROOT / "bench/results/data_engine.json"
# 1x volume: with clean at ~0.3 MB/s per core on this shared 2-core machine, 1.5 MB keeps the
# 95 MB of all runs (1 + 4 + 16 copies, three engines) near 15 minutes
BASE_BYTES = 1_500_000


def base_files(budget: int = BASE_BYTES) -> list[Path]:
    """The sample's text files, then the real groups' pages in turn, up to ``budget`` bytes."""
    def usable(paths):
        return [p for p in paths if p.suffix.lower() in TEXT_TYPES and p.stat().st_size > 0]

    chosen = usable(sorted(p for p in (ROOT / "data/sample/docs").rglob("*") if p.is_file()))
    groups = [usable(files(name)) for name, g in GROUPS.items() if g.topic == "hpc"]
    total = sum(p.stat().st_size for p in chosen)
    for rank in range(max(map(len, groups), default=0)):
        for group in groups:
            if rank < len(group) and total < budget:
                chosen.append(group[rank])
                total += group[rank].stat().st_size
    return chosen


def made_up_word(copy: int, position: int) -> str:
    digest = hashlib.blake2b(f"{copy}:{position}".encode(), digest_size=8).digest()
    return "".join(SYLLABLES[b % len(SYLLABLES)] for b in digest[:3])


def vary(text: str, copy: int) -> str:
    """Copy ``copy`` of a document: a made-up word after every ``EVERY``-th word of running text,
    outside HTML tags (split on them), so the markup stays valid and every paragraph changes."""
    if copy == 0:
        return text
    out, position, count = [], 0, 0
    for part in TAG.split(text):
        if part.startswith("<"):
            out.append(part)
            continue
        words = part.split(" ")
        for i, word in enumerate(words):
            out.append(word if i == 0 else " " + word)
            count += bool(word.strip())
            if word.strip() and count % EVERY == 0:
                out.append(" " + made_up_word(copy, position))
                position += 1
    return "".join(out)


def write_inputs(dest: Path, scale: int, sources: list[Path]) -> int:
    """``scale`` copies of every source file under ``dest``; returns the bytes written."""
    total = 0
    for copy in range(scale):
        for i, src in enumerate(sources):
            data = vary(src.read_bytes().decode("utf-8", errors="replace"), copy).encode("utf-8")
            path = dest / f"c{copy:02d}" / f"{i:04d}{src.suffix.lower()}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total += len(data)
    return total


def make_project(dest: Path, engine: str, inputs: Path) -> Path:
    for rel in project_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = merge(params, {"engine": engine, "scrape": {"sources": [{"path": str(inputs)}], "workers": 2,
                                                         "cache_dir": ""},
                            "clean": {"workers": 2}, "pack": {"workers": 2}, "tokenizer": {"num_threads": 2}})
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # a folder outside the project is a source only once the scrape stage's deps name it too
    spec = yaml.safe_load((dest / "dvc.yaml").read_text())
    spec["stages"]["scrape"]["deps"].append(str(inputs))
    (dest / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest


class PeakRSS:
    """Samples the RSS of a process, of its descendants and of the Ray workers every 0.1 s."""

    def __init__(self, pid: int, raylets: list[psutil.Process]):
        self.proc, self.raylets = psutil.Process(pid), raylets
        self.stage = self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _workers(self) -> list[psutil.Process]:
        found = self.proc.children(recursive=True)
        for raylet in self.raylets:
            found += [p for p in raylet.children(recursive=True) if _is_ray_worker(p)]
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.stage = max(self.stage, self.proc.memory_info().rss)
                for p in self._workers():
                    self.worker = max(self.worker, p.memory_info().rss)
            except psutil.Error:
                pass  # a process ended between listing and reading
            self._stop.wait(0.1)

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return round(self.stage / 2**20, 1), round(self.worker / 2**20, 1)


def _is_ray_worker(p: psutil.Process) -> bool:
    try:
        return (p.cmdline() or [""])[0].startswith("ray::")
    except psutil.Error:
        return False


def our_raylets() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["name", "cmdline", "username"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "raylet" in (p.info["name"] or "") and ray_cluster.TEMP in cmd:
            out.append(p)
    return out


def run_stage(project: Path, stage: str, env: dict, raylets: list[psutil.Process]) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"stages.{stage}"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = PeakRSS(proc.pid, raylets)
    log, _ = proc.communicate()
    seconds = time.perf_counter() - started
    stage_mb, worker_mb = peak.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed in {project}:\n{log[-3000:]}")
    return {"seconds": round(seconds, 2), "rss_stage_mb": stage_mb, "rss_worker_mb": worker_mb}


def run_config(engine: str, nodes: int, scale: int, inputs: Path, input_bytes: int, work: Path) -> dict:
    project = make_project(work / f"{engine}{nodes}_x{scale}", engine, inputs)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(project)}
    env.pop("RAY_ADDRESS", None)
    raylets: list[psutil.Process] = []
    if engine == "ray":
        env["RAY_ADDRESS"] = ray_cluster.start(nodes=nodes)
        raylets = our_raylets()
    try:
        row = {"engine": engine if engine == "local" else f"ray-{nodes}", "scale": scale,
               "input_mb": round(input_bytes / 1e6, 2), "stages": {}}
        for stage in STAGES:
            figures = run_stage(project, stage, env, raylets)
            figures["mb_per_s"] = round(input_bytes / 1e6 / figures["seconds"], 2)
            row["stages"][stage] = figures
        row["docs_kept"] = json.loads((project / "metrics/clean.json").read_text())["docs"]
        row["tokens"] = json.loads((project / "metrics/pack.json").read_text())["tokens"]
        row["outputs_sha"] = outputs_sha(project)
        return row
    finally:
        if engine == "ray":
            ray_cluster.stop()
        shutil.rmtree(project, ignore_errors=True)


def outputs_sha(project: Path) -> str:
    """One hash over the data stages' cached outputs: the same on every engine."""
    h = hashlib.sha256()
    for rel in ("data/raw", "data/clean", "data/corpus", "models/tokenizer", "data/shards"):
        for p in sorted((project / rel).rglob("*")):
            if p.is_file():
                h.update(p.relative_to(project).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    try:
        import ray  # noqa: F401 -- only to say what is missing before any work
    except ImportError:
        raise SystemExit("bench_data_engine needs Ray: uv sync --extra ray") from None
    sources = base_files()
    if len(sources) < 40:
        raise SystemExit("bench needs the Debian doc packages of tests/real_docs.py (slurm-wlm-doc, mpich-doc, ...)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_data_engine_") as tmp:
        work = Path(tmp)
        for scale in SCALES:
            inputs = work / f"inputs_x{scale}"
            input_bytes = write_inputs(inputs, scale, sources)
            for engine, nodes in ENGINES:
                row = run_config(engine, nodes, scale, inputs, input_bytes, work)
                print(json.dumps(row), flush=True)
                rows.append(row)
    report = summarise(rows, len(sources))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(table(rows))


def summarise(rows: list[dict], n_files: int) -> dict:
    by_scale = {}
    for r in rows:
        by_scale.setdefault(r["scale"], set()).add(r["outputs_sha"])
    kept = {r["scale"]: r["docs_kept"] for r in rows if r["engine"] == "local"}
    return {
        "cores": "local: 2 worker processes; ray-1 / ray-2: 1 / 2 nodes of one CPU each",
        "machine": f"{os.cpu_count()} CPUs (shared with other jobs while measured)",
        "input": f"{n_files} real HPC HTML pages and sample text files, 1x/4x/16x copies with made-up words",
        "same_outputs_on_every_engine": all(len(s) == 1 for s in by_scale.values()),
        "docs_kept_by_scale": kept,
        # near 4 and 16 when the copies survive dedup (copy 0 of a few sample files is a reject)
        "kept_ratio": {s: round(kept[s] / kept[1], 2) for s in kept},
        # MB/s between 4x and 16x: the fixed start-up costs (imports, models, Ray workers) cancel out
        "marginal_mb_per_s": marginal(rows),
        "rows": rows,
    }


def marginal(rows: list[dict]) -> dict:
    out = {}
    for engine in dict.fromkeys(r["engine"] for r in rows):
        small, big = (next(r for r in rows if r["engine"] == engine and r["scale"] == s) for s in (4, 16))
        mb = big["input_mb"] - small["input_mb"]
        per_stage = {s: big["stages"][s]["seconds"] - small["stages"][s]["seconds"] for s in STAGES}
        out[engine] = {s: round(mb / t, 2) if t > 0 else None for s, t in per_stage.items()}
        out[engine]["all"] = round(mb / sum(per_stage.values()), 2)
    return out


def table(rows: list[dict]) -> str:
    head = f"{'engine':8} {'scale':>5} {'MB':>6} {'kept':>5} " + " ".join(f"{s:>22}" for s in STAGES)
    lines = [head, " " * 27 + " ".join(f"{'s  MB/s  RSS st/wk':>22}" for _ in STAGES)]
    for r in rows:
        cells = [f"{f['seconds']:5.1f} {f['mb_per_s']:5.2f} {f['rss_stage_mb']:4.0f}/{f['rss_worker_mb']:<4.0f}"
                 for f in (r["stages"][s] for s in STAGES)]
        lines.append(f"{r['engine']:8} {r['scale']:>5} {r['input_mb']:>6} {r['docs_kept']:>5} "
                     + " ".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
