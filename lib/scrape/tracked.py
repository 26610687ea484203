"""Local sources must lie inside a dep of dvc.yaml's scrape stage.

DVC reruns scrape when a dep changes; a local folder that `scrape.sources` names but no dep
covers would be read once and then never again, however its files change, with `dvc status`
saying "up to date". data/sources/ (a dep) is the drop-in folder that needs no edit; a folder
elsewhere needs both entries, and this check stops the run when the second one is missing.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import yaml

from lib.core.errors import UserError
from lib.scrape.config import Source

DVC_FILE = "dvc.yaml"
STAGE = "scrape"
DROP_IN = "data/sources"
_GLOB = "*?["


def local_root(src: Source) -> str | None:
    """The local folder or file a path/dataset/file:// source reads (a glob: its fixed leading
    folders), or None for a web source."""
    if src.path is not None or src.dataset is not None:
        raw = src.path if src.path is not None else src.dataset
    elif src.url is not None and src.url.lower().startswith("file:"):
        raw = url2pathname(urlsplit(src.url).path)
    else:
        return None
    parts = Path(raw).parts
    fixed = next((i for i, part in enumerate(parts) if any(c in part for c in _GLOB)), len(parts))
    return str(Path(*parts[:fixed])) if fixed else "."


def stage_deps(dvc_file: str | Path = DVC_FILE) -> list[str]:
    """The deps of dvc.yaml's scrape stage as written (repo-relative or absolute)."""
    try:
        spec = yaml.safe_load(Path(dvc_file).read_text(encoding="utf-8")) or {}
        deps = spec["stages"][STAGE].get("deps") or []
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{dvc_file}: cannot read the {STAGE} stage's deps ({err}); "
                        "run from the repository root") from None
    return [d if isinstance(d, str) else next(iter(d)) for d in deps]


def _inside(path: str, dep: str, root: Path) -> bool:
    """Whether ``path`` is ``dep`` or lies under it, both taken relative to ``root``; symlinks
    are not resolved, since DVC hashes a symlinked folder as the link, not what it points to."""
    p = Path(os.path.normpath(root / path))
    d = Path(os.path.normpath(root / dep))
    return p == d or d in p.parents


def check_tracked(sources: list[Source], dvc_file: str | Path = DVC_FILE) -> None:
    """Stop with one line naming the first local source no dep of the scrape stage covers.
    Without a dvc.yaml (the stage run by hand in a folder of its own) no DVC follows anything."""
    if not Path(dvc_file).exists():
        return
    root = Path(dvc_file).resolve().parent
    deps = stage_deps(dvc_file)
    for i, src in enumerate(sources):
        where = local_root(src)
        if where is None or any(_inside(where, dep, root) for dep in deps):
            continue
        raise UserError(f"params.yaml: scrape.sources[{i}].{src.kind} {getattr(src, src.kind)!r} is not inside "
                        f"any dep of the {STAGE} stage, so DVC would not notice when its files change; add "
                        f"{where!r} to the {STAGE} stage's deps in {Path(dvc_file).name} "
                        f"(or move the files into {DROP_IN}/)")
