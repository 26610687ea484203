"""The one interface a data stage uses to spread per-item work: an ordered, streaming map.

A stage describes its work as a ``Work``: ``fn(item, state)`` applied to each item, where
``state = setup(context)`` is built once per worker process (a tokenizer, the clean params and
language model) rather than shipped with every item. ``map_ordered`` yields ``fn``'s results in
input order while at most a bounded number of batches are in flight, so memory stays flat as
the corpus grows and the output cannot depend on which worker finished first.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol


def identity(context: Any) -> Any:
    return context


@dataclass(frozen=True)
class Work:
    fn: Callable[[Any, Any], Any]            # fn(item, state) -> result; module-level (picklable)
    context: Any = None                       # shipped once per map call, not once per item
    setup: Callable[[Any], Any] = identity    # setup(context) -> state, once per worker process
    batch: int = 1                            # items per task: amortises the per-task overhead


class Engine(Protocol):
    name: str

    def map_ordered(self, work: Work, items: Iterable[Any]) -> Iterator[Any]:
        """``work.fn`` over ``items``, results in input order, bounded work in flight."""
        ...


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


# The state of the Work a worker process last ran, by token: a worker serves one map call at a
# time, so one slot is enough and an old tokenizer never lingers.
_STATE: dict[str, Any] = {}


def run_batch(work: Work, token: str, batch: list[Any]) -> list[Any]:
    """What a worker runs for one task: build the state on first use, then apply fn."""
    if token not in _STATE:
        _STATE.clear()
        _STATE[token] = work.setup(work.context)
    state = _STATE[token]
    return [work.fn(item, state) for item in batch]


_INSTALLED: dict[str, Work] = {}


def install(work: Work, token: str) -> None:
    """Pool initializer: the Work is pickled once per worker process, not once per task."""
    _INSTALLED.clear()
    _INSTALLED[token] = work


def run_installed(token: str, batch: list[Any]) -> list[Any]:
    return run_batch(_INSTALLED[token], token, batch)
