"""``scripts/unasync --check`` passes on the committed tree and names the file and line of drift."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import unasync_rules  # noqa: E402


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


def _generated_files() -> list[Path]:
    return sorted(
        path
        for _src, dst in unasync_rules.TREES
        for path in (ROOT / dst).rglob("*.py")
    )


def test_generated_files_do_not_name_the_async_api() -> None:
    """Outside ``# unasync: keep`` lines, a twin reads as written for the sync flavour."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _generated_files()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if number > 1 and unasync_rules.KEEP not in line and unasync_rules.ASYNC_API.search(line)
    ]
    assert not found, "generated files name the async API:\n" + "\n".join(found)


def _leftovers(source: str) -> list[tuple[int, str]]:
    """Shapes the transform leaves behind that no one writes by hand.

    ``(x.f()).attr`` (parentheses only an ``await`` needed) and the two-argument
    ``Generator[Y, S]`` (``AsyncGenerator``'s arity; ``Generator`` takes three).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute | ast.Subscript)
            and isinstance(node.value, ast.Call)
            and (node.lineno, node.col_offset) < (node.value.lineno, node.value.col_offset)
        ):
            found.append((node.lineno, "parentheses around a call"))
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Generator"
            and isinstance(node.slice, ast.Tuple)
            and len(node.slice.elts) == 2
        ):
            found.append((node.lineno, "Generator with two type arguments"))
    return found


def test_generated_files_have_no_transform_leftovers() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _generated_files()
        for line, what in _leftovers(path.read_text())
    ]
    assert not found, "leftovers of the transform:\n" + "\n".join(found)


def test_leftover_shapes_are_recognised() -> None:
    assert _leftovers("(table.row_at(1)).val\n") == [(1, "parentheses around a call")]
    assert _leftovers("x: Generator[int, None]\n") == [(1, "Generator with two type arguments")]
    assert _leftovers("table.row_at(1).val\nx: Generator[int, None, None]\n") == []


def test_a_replacement_that_never_applies_fails_the_check(tmp_path: Path) -> None:
    copy_project(tmp_path)
    rules = tmp_path / "scripts" / "unasync_rules.py"
    text = rules.read_text()
    rules.write_text(text.replace('"aclose": "close",', '"aclose": "close",\n    "AsyncNowhere": "Nowhere",'))
    result = run_check(tmp_path)
    assert result.returncode == 1
    assert "replacement 'AsyncNowhere' never applies" in result.stdout


def test_async_api_in_a_generated_file_is_found(tmp_path: Path) -> None:
    source = "def f() -> None:\n    \"\"\"Close with ``aclose()``.\"\"\"\n"
    assert unasync_rules.ASYNC_API.search(unasync_rules.prose("``await client.aclose()``")) is None
    assert unasync_rules.ASYNC_API.search(source)
