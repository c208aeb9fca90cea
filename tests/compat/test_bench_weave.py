"""scripts/benchmarks/bench_weave.py: weave's own client logs its calls to a server we name, offline.

Runs the weave side of one small figure against weave's reference server and checks that
every call weave made is stored there: the bench's weave column measures real work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import COMPAT_PYTHON

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks"
sys.path.insert(0, str(SCRIPTS))

import _bench_figures as figs  # noqa: E402


def test_weave_worker_stores_every_call(
    reference_server_url: str, entity: str, project: str, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            str(COMPAT_PYTHON),
            str(SCRIPTS / "bench_weave.py"),
            "calls_flush",
            *("--side", "weave", "--server-url", reference_server_url),
            *("--entity", entity, "--project", project, "--n", "20"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout
    result = figs.Result(**json.loads(lines[0][len("RESULT ") :]))
    assert (result.figure, result.side, result.n, result.calls_made) == (
        "calls_flush",
        "weave",
        20,
        20,
    )
    assert result.value > 0
    assert figs.stored_calls(reference_server_url, f"{entity}/{project}") == 20
