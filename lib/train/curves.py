"""Training curves as the CSV files dvc.yaml declares as plots (``metrics/plots/<stage>/``)."""
from __future__ import annotations

import math
from pathlib import Path

from lib.core.io import write_csv
from lib.train.state import TrainResult


def write_curves(plots: Path, result: TrainResult, throughput: bool = True) -> None:
    """train.csv and val.csv (byte-reproducible on CPU) and, apart because timing varies run to
    run, throughput.csv (with MFU on a GPU whose peak is known)."""
    write_csv(plots / "train.csv", ["step", "tokens", "train_loss", "lr", "grad_norm"], result.train_curve)
    write_csv(plots / "val.csv", ["step", "tokens", "val_loss"], result.val_curve)
    if throughput:
        width = 3 if any(not math.isnan(row[2]) for row in result.perf_curve) else 2
        write_csv(plots / "throughput.csv", ["step", "tokens_per_s", "mfu"][:width],
                  [row[:width] for row in result.perf_curve])
