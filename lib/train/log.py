"""Training progress for people: a tqdm bar on a terminal; plain ``step N/M loss ... val ... lr ...
tok/s ... eta`` lines every ``log_every`` steps otherwise (DVC logs, sbatch files, CI), so a log of
a long run always shows how it went. The eta is lib/train/eta.py's: recent step times plus the
validations and samples still due, not elapsed time over steps done."""
from __future__ import annotations

import sys

from lib.core.progress import progress
from lib.train.eta import Eta


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class TrainLog:
    def __init__(self, desc: str, start: int, steps: int, log_every: int, enabled: bool = True):
        self.desc, self.start, self.steps, self.log_every = desc, start, steps, log_every
        self.enabled = enabled
        self.plain = enabled and not sys.stderr.isatty()
        self.bar = progress(total=steps, initial=start, desc=desc, enabled=enabled and not self.plain,
                            leave=False, mininterval=1.0)
        self.eta = Eta(steps)
        self.last_val: float | None = None

    def step(self, step: int, loss: float, lr: float, grad_norm: float, tok_s: float, mfu: float | None,
             seconds: float) -> None:
        """After optimizer step ``step`` (0-based) has run, in ``seconds``."""
        self.eta.step(seconds)
        if not self.enabled:
            return
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", gnorm=f"{grad_norm:.2f}", tok_s=f"{tok_s:.0f}",
                             **({} if mfu is None else {"mfu": f"{mfu:.1%}"}))
        done = step + 1
        if self.plain and (done % self.log_every == 0 or done == self.steps):
            left = self.eta.remaining(done)
            val = "" if self.last_val is None else f" val {self.last_val:.4f}"
            util = "" if mfu is None else f" mfu {mfu:.1%}"
            self.write(f"{self.desc} step {done}/{self.steps} loss {loss:.4f}{val} lr {lr:.2e} "
                       f"gnorm {grad_norm:.2f} tok/s {tok_s:.0f}{util} eta {'?' if left is None else _duration(left)}")

    def skipped(self, step: int) -> None:
        if self.enabled:
            self.bar.update(1)

    def periodic(self, name: str, seconds: float, every: int) -> None:
        """A validation or sampling run, due every ``every`` steps, took ``seconds``."""
        self.eta.task(name, seconds, every)

    def validated(self, step: int, val: float, best: bool) -> None:
        self.last_val = val
        if self.enabled and self.plain:
            self.write(f"{self.desc} step {step}/{self.steps} val {val:.4f}{' (best)' if best else ''}")

    def write(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line, file=sys.stderr) if not self.plain else print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()
