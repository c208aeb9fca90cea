"""Cutting live-trace event lines into WebSocket messages (``server/_live_messages``)."""

from __future__ import annotations

import json

import pytest
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol, Opcode

from weave_client.server import _live_messages as m
from weave_client.server._live_messages import Event, chunks_of_events, chunks_of_text


def _line(seq: int, size: int = 10) -> str:
    return json.dumps({"kind": "end", "seq": seq, "call": {"id": "x" * size}}, separators=(",", ":"))


def test_a_page_within_the_bound_is_one_message_untouched() -> None:
    text = "\n".join(_line(s) for s in range(5, 9))
    (chunk,) = chunks_of_text(text, 5, 8, 4)
    assert (chunk.first, chunk.last, chunk.count, chunk.text) == (5, 8, 4, text)


def test_a_long_page_is_cut_at_line_ends_into_bounded_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MESSAGE_CHARS", 200)
    lines = [_line(s, 40) for s in range(1, 21)]
    chunks = chunks_of_text("\n".join(lines), 1, 20, 20)
    assert len(chunks) > 1
    assert all(len(c.text) <= 200 for c in chunks)
    assert [line for c in chunks for line in c.text.split("\n")] == lines
    assert sum(c.count for c in chunks) == 20
    for c in chunks:
        seqs = [json.loads(line)["seq"] for line in c.text.split("\n")]
        assert (c.first, c.last, c.count) == (seqs[0], seqs[-1], len(seqs))


def test_an_event_longer_than_a_message_goes_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MESSAGE_CHARS", 100)
    lines = [_line(1), _line(2, 500), _line(3)]
    chunks = chunks_of_text("\n".join(lines), 1, 3, 3)
    assert [c.text for c in chunks] == lines
    assert [(c.first, c.last, c.count) for c in chunks] == [(1, 1, 1), (2, 2, 1), (3, 3, 1)]


def test_after_drops_the_events_up_to_the_cursor() -> None:
    text = "\n".join(_line(s) for s in (10, 11, 12))
    (chunk,) = chunks_of_text(text, 10, 12, 3)
    assert chunk.after(9) == text
    assert chunk.after(11) == _line(12)
    assert chunk.after(12) is None


def test_chunks_of_events_match_the_text_path() -> None:
    events = [Event(s, "p", [], _line(s)) for s in range(1, 4)]
    (chunk,) = chunks_of_events(events)
    assert chunk == chunks_of_text("\n".join(e.text for e in events), 1, 3, 3)[0]


@pytest.mark.parametrize("chars", [0, 1, 125, 126, 40_000, 65_536])
def test_a_shared_message_is_one_text_frame_that_a_client_reads_back(chars: int) -> None:
    # Multi-byte characters: the frame's length is the UTF-8 size (65,536 characters of
    # "é" need the 8-byte length form), not the number of characters.
    text = ("é" * chars)[: max(0, chars // 2)] + "x" * (chars - max(0, chars // 2))
    shared = m.SharedText(text)
    assert shared == text and isinstance(shared, str)
    reader = FrameProtocol(client=True, extensions=[])
    reader.receive_bytes(shared.frame)
    frames = list(reader.received_frames())
    assert frames and all(f.opcode in (Opcode.TEXT, Opcode.CONTINUATION) for f in frames)
    assert frames[-1].message_finished
    assert "".join(str(f.payload) for f in frames) == text


def test_shared_chunks_carry_their_frames_and_plain_ones_do_not() -> None:
    events = [Event(s, "p", [], _line(s)) for s in (1, 2)]
    (shared,) = chunks_of_events(events, shared=True)
    (plain,) = chunks_of_events(events)
    assert type(shared.text) is m.SharedText and type(plain.text) is str
    assert shared == plain  # the same message either way
    assert shared.text.frame == m.text_frame(plain.text.encode())


@pytest.mark.parametrize("chars", [0, 1, 126, 40_000, 65_536])
def test_a_deflated_message_is_one_compressed_frame_that_a_client_reads_back(chars: int) -> None:
    # What a browser does with it: wsproto's client side of permessage-deflate, told
    # the server takes no context over, inflates each message on its own.
    text = ('{"kind":"end","seq":1,"call":{"id":"é✓"}}\n' * chars)[:chars]
    shared = m.SharedText(text)
    deflate = PerMessageDeflate()
    deflate.finalize("permessage-deflate; server_no_context_takeover")
    reader = FrameProtocol(client=True, extensions=[deflate])
    for _ in range(2):  # the same frame twice on one connection: no state carried over
        reader.receive_bytes(shared.deflated)
        frames = list(reader.received_frames())
        assert frames[-1].message_finished
        assert "".join(str(f.payload) for f in frames) == text
    assert shared.deflated[0] == 0xC1  # final text frame, RSV1 (compressed)
    if chars >= 40_000:
        assert len(shared.deflated) < len(shared.frame) / 10


def test_the_deflated_frame_is_built_once_where_asked_for() -> None:
    text = '{"kind":"start","seq":7,"call":{}}'
    ahead = m.SharedText(text, deflate=True)
    assert ahead._deflated is not None  # built with the page (in its thread or process)
    lazy = m.SharedText(text)
    assert lazy._deflated is None and lazy.deflated == ahead.deflated
    assert lazy.deflated is lazy.deflated  # kept
    (chunk,) = chunks_of_text(text, 7, 7, 1, deflate=True)
    assert chunk.text._deflated == ahead.deflated  # type: ignore[attr-defined]
