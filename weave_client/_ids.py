"""UUIDv7 ids for calls and traces (RFC 9562), made in about a microsecond.

The stdlib ``uuid`` module (3.11) has no v7, and building a ``uuid.UUID`` object
costs more than the whole id here, so the id is assembled from one integer and
formatted directly. Ids made by one process are strictly increasing: within one
millisecond the 12-bit ``rand_a`` field is a counter (RFC 9562 method 1) that
starts at a random point, so the server's id order matches start order.
"""

from __future__ import annotations

import random
import threading
import time

__all__ = ["generate_id"]

_rng = random.SystemRandom()
# Seeded once from the OS; per-id randomness then comes from a fast PRNG. Ids need
# to be unique, not unpredictable.
_fast = random.Random(_rng.getrandbits(128))
_getrandbits = _fast.getrandbits
_time_ns = time.time_ns
_lock = threading.Lock()

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62

_last_ms = 0
_seq = 0


def generate_id() -> str:
    """A new UUIDv7 string such as ``0193e107-8fcf-7630-b576-977cc3062e2e``."""
    global _last_ms, _seq
    ms = _time_ns() // 1_000_000
    with _lock:
        if ms > _last_ms:
            _last_ms = ms
            # Start low in the counter space so thousands of ids fit in one ms.
            _seq = _getrandbits(9)
        else:
            # Same millisecond (or the clock stepped back): keep counting from the
            # last id so order is preserved; on counter overflow borrow the next ms.
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:
                _last_ms = ms = ms + 1
                _seq = 0
        seq = _seq
    value = (ms << 80) | _VERSION | (seq << 64) | _VARIANT | _getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
