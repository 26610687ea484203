"""Check params.yaml as a whole before a long run: the top-level sections (a misspelt one gets a
did-you-mean), then every section against its schema, reporting every faulty section at once.

    uv run hpc-lm check [--params params.yaml]

A stage checks the top level and its own section each time it runs (lib/core/params.py); the
`check` stage in dvc.yaml runs the top-level check whenever params.yaml changes, so a section
no stage reads (``pretrian:``) cannot pass silently. This command adds the deep check of every
section, which imports each stage's library (and so torch) and is therefore not run by DVC.
"""
from __future__ import annotations

import argparse
import importlib
from typing import Sequence

from lib.core.errors import UserError
from lib.core.params import PARAMS_FILE, check_file, from_mapping

# section -> (module, dataclass): the schema lives next to the code that reads the section
SCHEMAS: dict[str, tuple[str, str]] = {
    "scrape": ("lib.scrape", "ScrapeParams"),
    "clean": ("lib.clean", "CleanParams"),
    "corpus": ("lib.corpus", "CorpusParams"),
    "tokenizer": ("lib.tokenizer.build", "TokenizerParams"),
    "pack": ("lib.data.pack", "PackParams"),
    "pretrain": ("lib.train.pretrain", "PretrainParams"),
    "sft": ("lib.train.sft", "SFTParams"),
    "eval": ("lib.eval.params", "EvalParams"),
    "attention": ("lib.attention.params", "AttentionParams"),
}


def section_errors(path: str) -> list[str]:
    """One message per faulty section (an empty list: the file is sound)."""
    data = check_file(path)  # top level first: unknown sections, missing ones, the seed
    errors = []
    for name, (module, cls) in SCHEMAS.items():
        if name not in data or (name == "attention" and data[name] is None):
            continue  # the optional section left out or empty: its defaults
        try:
            section = from_mapping(getattr(importlib.import_module(module), cls), data[name], f"{path}: {name}")
            if name == "scrape":  # local sources DVC would not follow (lib/scrape/tracked.py)
                importlib.import_module("lib.scrape.tracked").check_tracked(section.sources)
        except UserError as err:
            errors.append(str(err))
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", default=PARAMS_FILE, help="the params file (default: params.yaml)")
    args = p.parse_args(argv)
    errors = section_errors(args.params)
    if errors:
        raise UserError("\nerror: ".join(errors))
    print(f"{args.params}: ok ({len(SCHEMAS)} sections, the seed and the engine, every key checked)")
    return 0
