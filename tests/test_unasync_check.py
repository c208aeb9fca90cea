"""``scripts/unasync --check`` passes on the committed tree and names the file and line of drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "unasync"), "--check"],
        capture_output=True, text=True,
    )


def copy_project(dst: Path) -> None:
    for name in ("scripts", "weave_client", "tests"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))


def test_committed_twin_is_fresh() -> None:
    result = run_check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_drift_is_reported_with_file_and_line(tmp_path: Path) -> None:
    copy_project(tmp_path)
    target = tmp_path / "weave_client" / "_sync" / "__init__.py"
    lines = target.read_text().splitlines(keepends=True)
    lines.append("# edited by hand\n")
    target.write_text("".join(lines))
    result = run_check(tmp_path)
    assert result.returncode == 1
    assert f"weave_client/_sync/__init__.py:{len(lines)}:" in result.stdout


def test_missing_and_orphan_twins_are_reported(tmp_path: Path) -> None:
    copy_project(tmp_path)
    (tmp_path / "tests" / "_sync" / "__init__.py").unlink()
    (tmp_path / "weave_client" / "_sync" / "_orphan.py").write_text("x = 1\n")
    result = run_check(tmp_path)
    assert result.returncode == 1
    assert "tests/_sync/__init__.py: missing" in result.stdout
    assert "weave_client/_sync/_orphan.py: has no _async source" in result.stdout
