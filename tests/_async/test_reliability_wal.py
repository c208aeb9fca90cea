"""The write-ahead log (issue 6): calls made while the server is down buffer in
memory to the bound, spill to disk, and are all delivered once it is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fault_proxy import FaultProxy
from tests.reliability.helpers import exactly_once_report, stored_calls, tune_for_faults
from weave_client import async_op
from weave_client._async import _sender_delivery
from weave_client._async._client import AsyncWeaveClient
from weave_client._synchronization import async_sleep

KEY = "sk-WAL-5e6f7a-distinctive-key"


@async_op
async def wal_op(i: int) -> int:
    return i


def wal_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "wal").rglob("seg-*.jsonl"))


async def test_outage_buffers_spills_to_disk_and_delivers_when_back(
    upstream_url: str, entity: str, project: str, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    project_id = f"{entity}/{project}"
    # The server is "down": every request gets a 503 until the proxy stops faulting.
    with FaultProxy(upstream_url, fault_rate=1.0, kinds=["503"]) as proxy:
        async with AsyncWeaveClient(
            entity, project, server_url=proxy.url, api_key=KEY, cache_dir=cache_dir, wal=True
        ) as client:
            tune_for_faults(client, sender_attempts=2)
            sender = client._sender
            sender.max_queue = 100
            sender.replay_interval = 0.1
            for i in range(500):
                assert await wal_op(i) == i  # never blocks, never raises
            result = await client.flush(timeout=10)
            assert result.failed == 0 and result.dropped == 0, result
            # Memory held the bound; the rest went to disk only.
            assert sender.spilled > 0
            assert len(sender._queue) <= sender.max_queue
            assert stored_calls(upstream_url, project_id) == []
            on_disk = wal_files(cache_dir)
            assert on_disk
            assert not any(KEY.encode() in p.read_bytes() for p in on_disk)
            # The server comes back.
            proxy.fault_rate = 0.0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await client.flush(timeout=5)
                landed = stored_calls(upstream_url, project_id)
                if len(landed) == 500 and all(c["ended_at"] for c in landed):
                    break
                await async_sleep(0.1)
            spilled, replayed = sender.spilled, sender.replayed
    calls = stored_calls(upstream_url, project_id)
    report = exactly_once_report(calls, {c["id"] for c in calls})
    print(
        f"\n[wal outage] 500 calls, {spilled} records spilled, {replayed} replayed: {report}"
        "\n  reproduce: .venv/bin/pytest -q -s tests/_*/test_reliability_wal.py"
        "\n  a 60 s outage: .venv/bin/python scripts/benchmarks/bench_reliability.py outage"
    )
    assert report["stored"] == 500 and report["duplicated"] == 0 and report["unfinished"] == 0
    assert sorted(c["inputs"]["i"] for c in calls) == list(range(500))
    assert replayed > 0
    assert wal_files(cache_dir) == []  # all delivered: nothing left behind


async def test_wal_is_off_by_default_and_env_turns_it_on(
    upstream_url: str, entity: str, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    async with AsyncWeaveClient(
        entity, project, server_url=upstream_url, cache_dir=cache_dir
    ) as client:
        assert client._sender._wal is None
    monkeypatch.setenv("WEAVE_CLIENT_WAL", "1")
    async with AsyncWeaveClient(
        entity, project, server_url=upstream_url, cache_dir=cache_dir
    ) as client:
        assert client._sender._wal is not None
        await wal_op(1)
        await client.flush()
    # Delivered, so nothing stays on disk.
    assert len(stored_calls(upstream_url, f"{entity}/{project}")) == 1
    assert wal_files(cache_dir) == []


async def test_a_journaled_record_is_sent_as_its_log_line_not_encoded_again(
    upstream_url: str, entity: str, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a WAL the caller encodes each record for the log; the sender sends that line
    # rather than encoding the record a second time. Without one, the sender encodes.
    encoded_by_sender: list[str] = []
    encode = _sender_delivery.encode_record

    def counting_encode(record: tuple[object, ...]) -> bytes:
        encoded_by_sender.append(str(record[0]))
        return encode(record)

    monkeypatch.setattr(_sender_delivery, "encode_record", counting_encode)
    for wal in (True, False):
        encoded_by_sender.clear()
        async with AsyncWeaveClient(
            entity, f"{project}-{wal}", server_url=upstream_url, cache_dir=tmp_path, wal=wal
        ) as client:
            for i in range(50):
                await wal_op(i)
            await client.flush()
            assert not client._sender._journaled
        calls = stored_calls(upstream_url, f"{entity}/{project}-{wal}")
        assert sorted(c["inputs"]["i"] for c in calls) == list(range(50))
        assert all(c["output"] == c["inputs"]["i"] for c in calls)
        assert encoded_by_sender == ([] if wal else ["start", "end"] * 50)
