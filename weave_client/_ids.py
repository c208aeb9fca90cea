"""UUIDv7 ids for calls and traces (RFC 9562), made in about a microsecond.

The stdlib ``uuid`` module (3.11) has no v7, and building a ``uuid.UUID`` object
costs more than the whole id here, so the id is assembled from one integer and
formatted directly. Ids made by one thread are strictly increasing: within one
millisecond a process-wide counter fills ``rand_a`` and the top of ``rand_b`` (RFC
9562 method 2), so the server's id order matches start order. A traced call keeps
its id as the integer (``id_value``); the text (``format_id``) is written later.
"""

from __future__ import annotations

import itertools
import random
import time

__all__ = ["TRACE_BITS", "format_id", "generate_id", "id_value", "trace_value"]

_rng = random.SystemRandom()
# Seeded once from the OS; per-id randomness then comes from a fast PRNG. Ids need
# to be unique, not unpredictable.
_fast = random.Random(_rng.getrandbits(128))
_getrandbits = _fast.getrandbits
_time_ns = time.time_ns

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62

_latest: tuple[int, int] = (0, _VERSION | _VARIANT)
# The process-wide sequence (itertools.count is atomic: no lock): 42 bits of it fill
# rand_a and the top of rand_b (RFC 9562 method 2), so ids made in one millisecond
# increase with it; 32 random bits below keep processes apart. It starts at a random
# point, far from the 2**42 ids it could count.
_counter = itertools.count(_rng.getrandbits(30))


def id_value() -> int:
    """A new UUIDv7 as its 128-bit integer (the traced call's hot path keeps ids as
    integers; ``format_id`` writes the text where it is needed, e.g. on the sender)."""
    global _latest
    ms = _time_ns() // 1_000_000
    latest_ms, prefix = _latest
    if ms > latest_ms:
        # The timestamp, version and variant bits, made once per millisecond (one
        # tuple swapped in: threads never see one millisecond with another's bits).
        prefix = (ms << 80) | _VERSION | _VARIANT
        _latest = (ms, prefix)
    # Else the same millisecond, or the clock stepped back: stay on the latest one.
    n = next(_counter)
    # Bits 30-41 of the sequence go to rand_a (64-75), bits 0-29 under the variant.
    return prefix | (n & 0x3FFC0000000) << 34 | (n & 0x3FFFFFFF) << 32 | _getrandbits(32)


# A root call's trace id is its call id with these random bits flipped (in rand_b): as
# unique as the call ids, and made without a second clock read or random draw.
TRACE_BITS = _rng.getrandbits(62) | 1


def trace_value(call_id: int) -> int:
    """The trace id of the root call ``call_id``."""
    return call_id ^ TRACE_BITS


def format_id(value: int) -> str:
    """The UUID text of an id integer: ``0193e107-8fcf-7630-b576-977cc3062e2e``."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_id() -> str:
    """A new UUIDv7 string such as ``0193e107-8fcf-7630-b576-977cc3062e2e``."""
    return format_id(id_value())
