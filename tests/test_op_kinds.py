"""Each flavour's decorator rejects the other flavour's functions, naming itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from weave_client import async_op, op


def plain() -> int:
    return 1


def gen() -> Iterator[int]:
    yield 1


async def coro() -> int:
    return 1


async def agen() -> AsyncIterator[int]:
    yield 1


@pytest.mark.parametrize("func", [plain, gen])
def test_async_op_rejects_sync_functions(func: object) -> None:
    with pytest.raises(TypeError, match=r"^async_op cannot trace .*\(use op for plain"):
        async_op(func)  # type: ignore[call-overload]


@pytest.mark.parametrize("func", [coro, agen])
def test_op_rejects_async_functions(func: object) -> None:
    with pytest.raises(TypeError, match=r"^op cannot trace .*\(use async_op for coroutine"):
        op(func)  # type: ignore[call-overload]


def test_each_takes_its_own_kind() -> None:
    assert callable(async_op(coro)) and callable(async_op(agen))
    assert callable(op(plain)) and callable(op(gen))
