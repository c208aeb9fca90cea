"""A built wheel carries a freshly generated sync twin, never a stale committed one."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import unasync_rules  # noqa: E402


def _copy_tree(dst: Path) -> None:
    """Copy the project's tracked and new files (not venvs, caches or builds)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def test_wheel_regenerates_a_stale_twin(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    _copy_tree(tree)
    # Make every committed twin stale: the build must not ship these.
    stale = "# STALE: must never reach a wheel\n"
    sync_files = sorted((tree / "weave_client" / "_sync").rglob("*.py"))
    assert sync_files, "weave_client/_sync has no files"
    for path in sync_files:
        path.write_text(stale)

    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(tree)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = out.glob("*.whl")

    expected = unasync_rules.expected(str(ROOT), [unasync_rules.PACKAGE_TREE])
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith("weave_client/_sync/") and n.endswith(".py")]
        assert sorted(names) == sorted(expected)
        for rel, text in expected.items():
            shipped = zf.read(rel).decode()
            assert "STALE" not in shipped, rel
            assert shipped == text, f"wheel's {rel} differs from a fresh transform"
