"""The messages of live traces: stored events, and runs of them cut into WebSocket messages.

A message is one or more events' JSON, one per line, in seq order. Each line
starts ``{"kind":"<kind>","seq":<seq>,`` (as SQLite's ``json_object`` and the
page query write it), so a line's seq can be read without parsing the call.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MESSAGE_CHARS",
    "Chunk",
    "Event",
    "SharedText",
    "chunks_of_events",
    "chunks_of_text",
    "deflated_frame",
    "message",
    "text_frame",
]

# About the most characters sent in one WebSocket message (a larger single event
# goes alone).
MESSAGE_CHARS = 65_536
# Most events in one message cut from a list of events.
_PER_MESSAGE = 1000
# zlib's fastest level: 14x smaller event lines at a third of the CPU of the default
# level (which gets 16x), measured on the bench's calls.
_DEFLATE_LEVEL = 1
# What a sync flush ends the compressed data with; RFC 7692 leaves it out of the frame.
_SYNC_TAIL = b"\x00\x00\xff\xff"


def _frame(first_byte: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        head = bytes((first_byte, size))
    elif size < 1 << 16:
        head = bytes((first_byte, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first_byte, 127)) + size.to_bytes(8, "big")
    return head + payload


def text_frame(data: bytes) -> bytes:
    """``data`` (UTF-8) as one final, unmasked RFC 6455 text frame (a server's)."""
    return _frame(0x81, data)


def deflated_frame(data: bytes) -> bytes:
    """``data`` (UTF-8) as one final, unmasked text frame compressed on its own
    (RFC 7692 permessage-deflate, RSV1 set): what a server that negotiated
    ``server_no_context_takeover`` may send on any connection."""
    compressor = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    payload = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return _frame(0xC1, payload.removesuffix(_SYNC_TAIL))


class SharedText(str):
    """A message sent to many watchers, with its WebSocket frames built once (see
    ``_ws_protocol``; anywhere else it is the plain text): ``frame`` as it is, and
    :attr:`deflated` for the connections that negotiated permessage-deflate."""

    frame: bytes
    _deflated: bytes | None

    def __new__(cls, text: str, *, deflate: bool = False) -> SharedText:
        """``deflate``: build the compressed frame now too (say, in a worker thread)."""
        self = super().__new__(cls, text)
        data = text.encode()
        self.frame = text_frame(data)
        self._deflated = deflated_frame(data) if deflate else None
        return self

    @property
    def deflated(self) -> bytes:
        """The message as a :func:`deflated_frame` (built at the first use, then kept)."""
        if self._deflated is None:
            self._deflated = deflated_frame(self.encode())
        return self._deflated


@dataclass(slots=True)
class Event:
    """One stored event, ready to send: ``text`` is its JSON message, ``call`` the
    call's id columns (what filters test)."""

    seq: int
    project_id: str
    call: list[Any]  # [rowid, project_id, *FILTER_FIELDS]; FIELD[name] is where a field is
    text: str


def message(kind: str, seq: int, call: str) -> str:
    """One event's line, ``call`` being the call's JSON text: as SQLite's
    ``json_object('kind', kind, 'seq', seq, 'call', call)`` writes it (kinds are plain
    words), with no parsing or re-encoding of the call."""
    return f'{{"kind":"{kind}","seq":{seq},"call":{call}}}'


def _seq_of(line: str) -> int:
    """The seq of one event line (``{"kind":"end","seq":42,...``)."""
    start = line.index('"seq":') + 6
    return int(line[start : line.index(",", start)])


@dataclass(frozen=True, slots=True)
class Chunk:
    """``count`` events, seqs ``first`` to ``last``, sent as one message ``text``."""

    first: int
    last: int
    count: int
    text: str

    def after(self, cursor: int) -> str | None:
        """The message without the events up to ``cursor`` (None when nothing is left)."""
        if self.last <= cursor:
            return None
        if self.first > cursor:
            return self.text
        return "\n".join(line for line in self.text.split("\n") if _seq_of(line) > cursor)


def chunks_of_events(events: list[Event], *, shared: bool = False) -> list[Chunk]:
    """Events cut into messages of at most _PER_MESSAGE events or about MESSAGE_CHARS
    (``shared``: for many watchers, each message a :class:`SharedText`)."""
    out: list[Chunk] = []
    start, size = 0, 0
    for i, event in enumerate(events):
        if i > start and (i - start >= _PER_MESSAGE or size + len(event.text) > MESSAGE_CHARS):
            out.append(_chunk(events[start:i], shared))
            start, size = i, 0
        size += len(event.text)
    if start < len(events):
        out.append(_chunk(events[start:], shared))
    return out


def _chunk(events: list[Event], shared: bool) -> Chunk:
    text = "\n".join(e.text for e in events)
    return Chunk(events[0].seq, events[-1].seq, len(events), SharedText(text) if shared else text)


def chunks_of_text(
    text: str, first: int, last: int, count: int, *, deflate: bool = False
) -> list[Chunk]:
    """A page's event lines (``count`` of them, seqs ``first`` to ``last``) cut at line
    ends into messages of about MESSAGE_CHARS, each a :class:`SharedText` (a page goes
    to every watcher of its project; ``deflate``: its compressed frame built now too);
    the usual page is one message, untouched."""
    if len(text) <= MESSAGE_CHARS:
        return [Chunk(first, last, count, SharedText(text, deflate=deflate))]
    out: list[Chunk] = []
    start = 0
    while start < len(text):
        end = len(text)
        if end - start > MESSAGE_CHARS:
            cut = text.rfind("\n", start, start + MESSAGE_CHARS)
            if cut <= start:  # one event longer than a message: it goes alone
                cut = text.find("\n", start)
            end = cut if cut > 0 else len(text)
        part = text[start:end]
        tail = part.rfind("\n") + 1
        lines = part.count("\n") + 1
        shared = SharedText(part, deflate=deflate)
        out.append(Chunk(_seq_of(part), _seq_of(part[tail:]), lines, shared))
        start = end + 1
    return out
