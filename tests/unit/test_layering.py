"""The parts import only downward: the agent knows nothing of the control plane, nothing below the wire
layer knows `fargo.api`. Checked on the source with `ast`, function bodies and TYPE_CHECKING blocks included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

FARGO = Path(__file__).resolve().parents[2] / "fargo"


def _package_of(path: Path) -> str:
    """The package a module's relative imports start from."""
    parts = path.relative_to(FARGO.parent).parts
    return ".".join(parts[:-1])


def imports_in(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import anywhere in `source`, relative ones resolved against `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            found.append((node.lineno, module))
            # `from fargo import api` imports fargo.api as surely as `import fargo.api` does
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _offences(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    out = set()
    for path in files:
        for line, module in imports_in(path.read_text(), _package_of(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.add(f"{path.relative_to(FARGO.parent)}:{line} imports {module}")
    return sorted(out)


def _modules_under(*parts: str) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        target = FARGO / part
        files.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return files


@pytest.mark.parametrize(("layer", "forbidden"), [
    (("agent",), ("fargo.control", "fargo.store", "fargo.api")),
    (("control", "store", "platform.py"), ("fargo.api",)),
], ids=["agent", "control-store-platform"])
def test_layers_import_only_downward(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    files = _modules_under(*layer)
    assert files, f"no modules found under {layer}"
    offences = _offences(files, forbidden)
    assert not offences, f"{len(offences)} import(s) across the layering:\n" + "\n".join(offences)


def test_the_check_sees_imports_in_functions_type_checking_blocks_and_relative_forms() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from fargo.api.server import EdgeServer\n"
              "def later():\n    import fargo.store.database\n    from ..api import ecs\n    from .. import api\n")
    found = {module for _, module in imports_in(source, "fargo.control")}
    assert {"fargo.api.server", "fargo.store.database", "fargo.api.ecs", "fargo.api"} <= found
