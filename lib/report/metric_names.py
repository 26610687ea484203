"""What a metric's name says about it: which way is better, and whether it is a timing.

Names follow lm-evaluation-harness where it has one (acc, acc_norm, acc_stderr, exact_match, f1,
perplexity, bits per byte). The longest matching suffix of the name's ``_``-separated parts
decides, so ``accuracy_stderr`` is a standard error (lower is better) and not an accuracy.
"""
from __future__ import annotations

LOWER_IS_BETTER = ("loss", "perplexity", "nll", "bpb", "stderr", "seconds", "skipped_steps", "fallbacks",
                   "misses", "bad_records", "dropped", "failed")
HIGHER_IS_BETTER = ("accuracy", "acc", "acc_norm", "exact_match", "f1", "tokens_per_s", "mfu",
                    "hit_rate", "hits")
# Timings vary between identical runs on a busy machine: never counted as changes. Last part of
# the name: seconds, a duration or rate in *_s / *_ms (eta_s, tokens_per_s), or model FLOPs use.
TIMING_LAST_PARTS = ("seconds", "s", "ms", "mfu")


def _name(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def direction(key: str) -> bool | None:
    """True: higher is better; False: lower is better; None: unknown (a count, a setting)."""
    name = _name(key)
    parts = name.split("_")
    for i in range(len(parts)):  # longest suffix first: acc_norm before norm, *_stderr before acc
        tail = "_".join(parts[i:])
        if tail in LOWER_IS_BETTER:
            return False
        if tail in HIGHER_IS_BETTER:
            return True
    # a qualifier after the measure: val_loss_before, loss_final
    if any(name.startswith(w + "_") or f"_{w}_" in name for w in LOWER_IS_BETTER):
        return False
    if any(name.startswith(w + "_") for w in HIGHER_IS_BETTER):
        return True
    return None


def is_timing(key: str) -> bool:
    return _name(key).split("_")[-1] in TIMING_LAST_PARTS
