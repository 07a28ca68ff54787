"""Merge asynchronous streams into one in arrival order: the seed's ``merge``.

``merge`` keeps one pending request (``__anext__``) per input and yields whichever
item arrives first, then asks that input, and only that one, for its next item.
Hence:

* each input contributes at its own pace, and its items come out in its own order;
* at most one item per input is in flight: a slow consumer slows every input down
  (backpressure) and nothing piles up in between;
* an input that ends early just leaves the race; the others go on to their end;
* an input that fails leaves the race as well, but its failure is not swallowed:
  the other inputs are drained to their end first, so none of their items is lost,
  and then :class:`MergeError` is raised, naming every input that failed and
  chaining the first failure. ``fail_fast=True`` raises at once instead;
* closing the merged stream early (``break``, ``aclose``) cancels the pending
  requests and closes the inputs that can be closed.

Items that arrive in the same turn of the event loop come out in input order, so a
run over inputs that are all ready is deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import suppress
from typing import Any, TypeVar

__all__ = ["MergeError", "merge"]

T = TypeVar("T")


class MergeError(Exception):
    """One or more inputs of a merge failed; ``failures`` maps input index to its exception."""

    def __init__(self, failures: dict[int, BaseException]) -> None:
        names = ", ".join(f"{i} ({type(err).__name__}: {err})" for i, err in failures.items())
        super().__init__(f"merge input(s) failed: {names}")
        self.failures = dict(failures)


async def merge(
    *streams: AsyncIterable[T], labelled: bool = False, fail_fast: bool = False
) -> AsyncGenerator[Any, None]:
    """Yield the items of ``streams`` as they arrive; ``(index, item)`` pairs when ``labelled``."""
    inputs = [aiter(s) for s in streams]
    pending: dict[asyncio.Future[Any], int] = {}
    failures: dict[int, BaseException] = {}

    def request(index: int) -> None:
        pending[asyncio.ensure_future(anext(inputs[index]))] = index

    try:
        for index in range(len(inputs)):
            request(index)
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in sorted(done, key=pending.__getitem__):
                index = pending.pop(future)
                try:
                    item = future.result()
                except StopAsyncIteration:
                    continue
                except Exception as err:
                    failures[index] = err
                    if fail_fast:
                        raise MergeError(failures) from err
                    continue
                yield (index, item) if labelled else item
                request(index)
        if failures:
            raise MergeError(failures) from next(iter(failures.values()))
    finally:
        await _close(pending, inputs)


async def _close(pending: dict[asyncio.Future[Any], int], inputs: list[AsyncIterator[Any]]) -> None:
    for future in pending:
        future.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for it in inputs:
        close = getattr(it, "aclose", None)
        if close is not None:
            with suppress(Exception):  # a failing close must not hide the merge's outcome
                await close()
