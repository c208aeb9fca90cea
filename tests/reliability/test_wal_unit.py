"""The write-ahead log's file handling, without a server: locks, torn lines, settle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weave_client import InvalidSettingError
from weave_client._tracing import op_save
from weave_client._wal import WriteAheadLog, decode_op_save, encode_op_save, wal_enabled


def line(i: int) -> bytes:
    return json.dumps({"mode": "start", "req": {"start": {"id": f"c{i}"}}}).encode()


def test_segments_held_by_a_writer_are_never_claimed(tmp_path: Path) -> None:
    writer = WriteAheadLog(tmp_path, segment_records=3)
    other = WriteAheadLog(tmp_path)  # another process, as far as flock is concerned
    for i in range(5):
        writer.append(line(i), seq=i)
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 2
    assert other.claim() is None  # both held by the writer
    # Settled and stored: deleted, nothing to replay.
    writer.settle(3)
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 1
    # The writer stops with records unsent: unlocked and kept for the next one.
    assert writer.close(done_seq=3) == 2
    claimed = other.claim()
    assert claimed is not None and claimed.lines == [line(3), line(4)]
    assert WriteAheadLog(tmp_path).claim() is None  # held by the replayer now
    other.release(claimed)
    again = WriteAheadLog(tmp_path).claim()
    assert again is not None
    other.remove(again)
    assert list(tmp_path.glob("seg-*")) == []


def test_spilled_and_deferred_records_keep_their_segment(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_records=2)
    wal.append(line(0), seq=0)
    wal.append(line(1), seq=None)  # on disk only
    wal.append(line(2), seq=1)
    wal.append(line(3), seq=2)
    wal.settle(3, keep_from=1)  # both segments settled; the second one deferred
    kept = sorted(tmp_path.glob("seg-*.jsonl"))
    assert len(kept) == 2
    replayer = WriteAheadLog(tmp_path)
    first = replayer.claim()
    assert first is not None and first.lines == [line(0), line(1)]


def test_a_torn_last_line_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "seg-00000000000000000001-1-000001.jsonl").write_bytes(
        line(0) + b"\n" + line(1) + b"\n" + line(2)[:10]
    )
    claimed = WriteAheadLog(tmp_path).claim()
    assert claimed is not None and claimed.lines == [line(0), line(1)]
    assert "torn last record" in caplog.text


def test_op_saves_round_trip() -> None:
    save = op_save("e/p", "my_op", "def my_op():\n    return 1\n")
    assert decode_op_save(json.loads(encode_op_save(save))) == save


def test_wal_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEAVE_CLIENT_WAL", raising=False)
    assert wal_enabled(None) is False
    assert wal_enabled(True) is True
    monkeypatch.setenv("WEAVE_CLIENT_WAL", "yes")
    assert wal_enabled(None) is True and wal_enabled(False) is False
    monkeypatch.setenv("WEAVE_CLIENT_WAL", "perhaps")
    with pytest.raises(InvalidSettingError, match="WEAVE_CLIENT_WAL='perhaps'"):
        wal_enabled(None)
