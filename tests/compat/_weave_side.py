"""Running code under weave's own pinned venv (``.venv-compat``), for the compat tier."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"


def compat_python(python: Path = COMPAT_PYTHON) -> Path:
    """The compat venv's interpreter, or a test failure saying how to create it."""
    if not python.exists():
        pytest.fail(
            f"{python} is missing: the compat tier needs weave==0.51.59 in .venv-compat; "
            "run ./scripts/bootstrap to create it (tests/compat/requirements.txt)",
            pytrace=False,
        )
    return python


def run_weave_side(code: str, request: Any, *, what: str, timeout: float) -> dict[str, Any]:
    """Run ``code`` under the compat venv with ``request`` as JSON on stdin; its JSON output.

    ``what`` says what the code does, for the failure message (``"computing weave's digests"``).
    """
    python = compat_python()
    proc = subprocess.run(
        [str(python), "-c", code],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{what} under {python} failed (exit {proc.returncode}); "
            f"if weave is missing, run ./scripts/bootstrap.\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
