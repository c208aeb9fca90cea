"""Pages and batches over server results.

The paginator walks an offset/limit query one page at a time (each page a
list with ``.has_next``); the batch iterator regroups any iterable of results
(e.g. a JSONL stream) into lists of a fixed size. Both hold one page or batch
in memory at a time, whatever the total.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class _PageFetcher(Protocol[T]):
    """``fetch(offset, limit)``: up to ``limit`` items starting at ``offset``."""

    async def __call__(self, offset: int, limit: int, /) -> list[T]: ...


class AsyncPage(list[T]):
    """One page of results: a list, plus whether another page follows."""

    def __init__(self, items: list[T], *, has_next: bool, offset: int) -> None:
        super().__init__(items)
        self.has_next = has_next
        self.offset = offset

    def __repr__(self) -> str:
        return f"Page(offset={self.offset}, items={len(self)}, has_next={self.has_next})"


class AsyncPaginator(Generic[T]):
    """Iterates over the pages of an offset/limit query (each a ``AsyncPage``).

    ``fetch(offset, limit)`` returns up to ``limit`` items starting at ``offset``.
    One extra item is asked for on each page, so ``has_next`` is exact rather
    than guessed from a full page. ``next_page()`` steps by hand.
    """

    def __init__(
        self,
        fetch: _PageFetcher[T],
        *,
        page_size: int = 100,
        limit: int | None = None,
        offset: int = 0,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size!r}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit!r}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset!r}")
        self._fetch = fetch
        self.page_size = page_size
        self._limit = limit
        self._start = offset
        self._offset = offset
        self._done = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(page_size={self.page_size}, offset={self._offset}, "
            f"done={self._done})"
        )

    @property
    def has_next(self) -> bool:
        """False once the last page has been returned."""
        return not self._done

    async def next_page(self) -> AsyncPage[T]:
        """The next page; an empty page with ``has_next=False`` once exhausted."""
        if self._done:
            return AsyncPage([], has_next=False, offset=self._offset)
        want = self.page_size
        if self._limit is not None:
            want = min(want, self._start + self._limit - self._offset)
        if want <= 0:
            self._done = True
            return AsyncPage([], has_next=False, offset=self._offset)
        items = await self._fetch(self._offset, want + 1)
        more = len(items) > want
        items = items[:want]
        page = AsyncPage(items, has_next=more, offset=self._offset)
        self._offset += len(items)
        if self._limit is not None and self._offset >= self._start + self._limit:
            page.has_next = False
        self._done = not page.has_next
        return page

    def __aiter__(self) -> AsyncIterator[AsyncPage[T]]:
        return self

    async def __anext__(self) -> AsyncPage[T]:
        if self._done:
            raise StopAsyncIteration
        page = await self.next_page()
        if not page and not page.has_next:
            # An empty first page is still not worth yielding.
            raise StopAsyncIteration
        return page

    async def items(self) -> list[T]:
        """Every remaining item, as one list (memory grows with the result)."""
        out: list[T] = []
        async for page in self:
            out.extend(page)
        return out


class AsyncBatchIterator(Generic[T]):
    """Regroups an iterable of results into lists of ``batch_size`` (the last may be shorter).

    ``source`` is a zero-argument callable returning the iterable, so nothing is
    requested until the first batch is asked for.
    """

    def __init__(
        self, source: Callable[[], AsyncIterable[T]], *, batch_size: int = 100
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        self._source = source
        self.batch_size = batch_size
        self._iterator: AsyncIterator[T] | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size}, done={self._done})"

    def __aiter__(self) -> AsyncIterator[list[T]]:
        return self

    async def __anext__(self) -> list[T]:
        if self._done:
            raise StopAsyncIteration
        if self._iterator is None:
            self._iterator = aiter(self._source())
        batch: list[T] = []
        while len(batch) < self.batch_size:
            try:
                item = await anext(self._iterator)
            except StopAsyncIteration:
                self._done = True
                break
            batch.append(item)
        if not batch:
            raise StopAsyncIteration
        return batch
