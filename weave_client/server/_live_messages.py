"""The messages of live traces: stored events, and runs of them cut into WebSocket messages.

A message is one or more events' JSON, one per line, in seq order. Each line
starts ``{"kind":"<kind>","seq":<seq>,`` (as SQLite's ``json_object`` and the
page query write it), so a line's seq can be read without parsing the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "MESSAGE_CHARS",
    "Chunk",
    "Event",
    "SharedText",
    "chunks_of_events",
    "chunks_of_text",
    "message",
    "text_frame",
]

# About the most characters sent in one WebSocket message (a larger single event
# goes alone).
MESSAGE_CHARS = 65_536
# Most events in one message cut from a list of events.
_PER_MESSAGE = 1000


def text_frame(data: bytes) -> bytes:
    """``data`` (UTF-8) as one final, unmasked RFC 6455 text frame (a server's)."""
    size = len(data)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = b"\x81\x7e" + size.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + size.to_bytes(8, "big")
    return head + data


class SharedText(str):
    """A message sent to many watchers, with its WebSocket frame built once (see
    ``_ws_protocol``; anywhere else it is the plain text)."""

    frame: bytes

    def __new__(cls, text: str) -> SharedText:
        self = super().__new__(cls, text)
        self.frame = text_frame(text.encode())
        return self

    @classmethod
    def from_frame(cls, frame: bytes) -> SharedText:
        """The message of a frame :func:`text_frame` made (the frame kept as it is)."""
        size = frame[1] & 0x7F
        start = 2 if size < 126 else 4 if size == 126 else 10
        self = super().__new__(cls, frame[start:].decode())
        self.frame = frame
        return self


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


def chunks_of_text(text: str, first: int, last: int, count: int) -> list[Chunk]:
    """A page's event lines (``count`` of them, seqs ``first`` to ``last``) cut at line
    ends into messages of about MESSAGE_CHARS, each a :class:`SharedText` (a page goes
    to every watcher of its project); the usual page is one message, untouched."""
    if len(text) <= MESSAGE_CHARS:
        return [Chunk(first, last, count, SharedText(text))]
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
        out.append(Chunk(_seq_of(part), _seq_of(part[tail:]), lines, SharedText(part)))
        start = end + 1
    return out
