"""An import-linter contract type the built-in ones cannot express: no module imports a
private module (a `_name` component) of a package it is not inside.

`portwright.gateway.routes._jobs` may import `portwright.gateway._errors` (it is inside
`portwright.gateway`, the package that owns `_errors`); `portwright.delivery._routes`
may not — it goes through `portwright.gateway.kernel`, a public module. Declared in
pyproject.toml (`[tool.importlinter] contract_types`) and run by `lint-imports`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grimp
from importlinter import Contract, ContractCheck, output

__all__ = ["PrivateImport", "PrivateModulesContract", "private_imports"]


@dataclass(frozen=True)
class PrivateImport:
    importer: str
    imported: str
    owner: str  # the package the private module belongs to
    lines: tuple[int, ...]


def _owner_of_private(module: str) -> str | None:
    """The package that owns `module`'s first private component, or None (all public)."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def private_imports(graph: grimp.ImportGraph) -> list[PrivateImport]:
    """Every import of a private module from outside the package that owns it."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            owner = _owner_of_private(imported)
            if owner is None or importer == owner or importer.startswith(owner + "."):
                continue
            details = graph.get_import_details(importer=importer, imported=imported)
            lines = tuple(sorted({d["line_number"] for d in details}))
            found.append(PrivateImport(importer, imported, owner, lines))
    return found


class PrivateModulesContract(Contract):
    """Kept when no module imports another package's private module."""

    type_name = "private_modules"

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found = private_imports(graph)
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for bad in check.metadata["found"]:
            where = ", ".join(f"l.{n}" for n in bad.lines)
            output.print_error(
                f"{bad.importer} imports {bad.imported} ({where}): private to {bad.owner}; "
                f"import what {bad.owner} exports instead",
                bold=False,
            )
            output.new_line()
