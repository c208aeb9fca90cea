"""The layers: shared modules never import a flavour (only the package root wires them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "weave_client"
FLAVOURS = ("_async", "_sync")


def flavour_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """The imports of ``_async``/``_sync`` modules in one file (module level or not)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [alias.name for alias in node.names if node.module is None]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if any(part in FLAVOURS for part in name.split(".")):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    return found


def shared_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if not any(part in FLAVOURS for part in path.relative_to(PACKAGE).parts)
        and path != PACKAGE / "__init__.py"
    )


def test_shared_modules_import_no_flavour() -> None:
    found = [line for path in shared_modules() for line in flavour_imports(path)]
    assert not found, "shared modules importing a flavour:\n" + "\n".join(found)


def test_a_flavour_import_is_found(tmp_path: Path) -> None:
    probe = tmp_path / "_probe.py"
    probe.write_text("def f():\n    from ._sync._op import op\n    return op\n")
    assert flavour_imports(probe, tmp_path) == ["_probe.py:2: _sync._op"]
