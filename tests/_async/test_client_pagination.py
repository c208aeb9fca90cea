"""AsyncPaginator and AsyncBatchIterator: exact ``has_next``, limits, offsets, batching.

The page source here is an in-memory list (the paginator's only collaborator is a
``fetch(offset, limit)`` function); the client's use of them against real servers
is tested in test_client_calls.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from weave_client._async._pagination import AsyncBatchIterator, AsyncPaginator
from weave_client._async._pagination import AsyncPage as Page


def source(n: int) -> tuple[list[tuple[int, int]], AsyncPaginator[int]]:
    """A paginator over range(n) plus the list of (offset, limit) requests it made."""
    requests: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> list[int]:
        requests.append((offset, limit))
        return list(range(n))[offset : offset + limit]

    return requests, AsyncPaginator(fetch, page_size=3)


async def test_pages_cover_everything_once_with_exact_has_next() -> None:
    _requests, paginator = source(7)
    pages = [page async for page in paginator]
    assert [list(p) for p in pages] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [p.offset for p in pages] == [0, 3, 6]
    assert isinstance(pages[0], Page)
    assert not paginator.has_next


async def test_exact_multiple_of_page_size_has_no_phantom_page() -> None:
    requests, paginator = source(6)
    pages = [page async for page in paginator]
    assert [list(p) for p in pages] == [[0, 1, 2], [3, 4, 5]]
    assert pages[-1].has_next is False
    # One extra row is asked for, so the end is known without an empty round trip.
    assert requests == [(0, 4), (3, 4)]


async def test_next_page_by_hand_then_empty_page() -> None:
    _requests, paginator = source(4)
    first = await paginator.next_page()
    second = await paginator.next_page()
    third = await paginator.next_page()
    assert (list(first), first.has_next) == ([0, 1, 2], True)
    assert (list(second), second.has_next) == ([3], False)
    assert (list(third), third.has_next) == ([], False)


async def test_limit_and_offset() -> None:
    requests: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> list[int]:
        requests.append((offset, limit))
        return list(range(100))[offset : offset + limit]

    paginator = AsyncPaginator(fetch, page_size=4, limit=6, offset=10)
    pages = [page async for page in paginator]
    assert [list(p) for p in pages] == [[10, 11, 12, 13], [14, 15]]
    assert pages[-1].has_next is False
    assert await AsyncPaginator(fetch, page_size=4, limit=6, offset=10).items() == list(
        range(10, 16)
    )


async def test_empty_source_yields_no_pages() -> None:
    _requests, paginator = source(0)
    assert [page async for page in paginator] == []


def test_bad_arguments_are_refused() -> None:
    async def fetch(offset: int, limit: int) -> list[int]:
        return []

    with pytest.raises(ValueError, match="page_size"):
        AsyncPaginator(fetch, page_size=0)
    with pytest.raises(ValueError, match="limit"):
        AsyncPaginator(fetch, limit=-1)
    with pytest.raises(ValueError, match="batch_size"):
        AsyncBatchIterator(lambda: numbers(1), batch_size=0)


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def test_batches_regroup_and_keep_the_short_tail() -> None:
    opened = []

    def open_source() -> AsyncIterator[int]:
        opened.append(True)
        return numbers(10)

    batches = AsyncBatchIterator(open_source, batch_size=4)
    assert opened == []  # nothing is requested before the first batch
    assert [b async for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert opened == [True]
    assert [b async for b in batches] == []
