"""Every counter the clean stage can report, gathered from where each is declared.

A module that counts something in a document's stats declares the names in ``COUNTERS`` next to
the code that counts them (tests/test_registries.py checks that each module counts exactly what
it declares). The stage's metrics list every declared counter, 0 included, so a rule that never
fired is visible; a registered format's extractor and post-processing steps bring their
modules' counters with them.
"""
from __future__ import annotations

from importlib import import_module
from pathlib import Path

from lib.formats.registry import FORMATS, module_of


def declared() -> tuple[str, ...]:
    """The union of ``COUNTERS`` over this package's modules and every format's steps' modules."""
    modules = {f"lib.clean.{path.stem}" for path in Path(__file__).parent.glob("*.py")
               if path.stem != "__init__"}
    modules |= {module_of(ref) for fmt in FORMATS.values() for ref in (fmt.extract, *fmt.post)}
    return tuple(sorted({c for name in modules for c in getattr(import_module(name), "COUNTERS", ())}))
