"""No two modules of the project import each other (issue 14).

Every import counts, including the ones inside a function body or under `if TYPE_CHECKING:`, as grimp
(the graph import-linter checks its contracts on) reads them. A pair that needs both directions is fixed
by moving code to the module below (a function both need, a constant, a dataclass), not by hiding one
of the two imports in a function.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
# the project's packages; `transfer` (import/export, split out of features) where the checkout has it
PACKAGES = ("inference_worker", "inference", "features", "transfer", "autointerp", "steering", "graphs",
            "neuronpedia")


def mutual_imports(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Pairs (a, b), a < b, where a imports b and b imports a."""
    pairs = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if module < imported and graph.direct_import_exists(importer=imported, imported=module):
                pairs.add((module, imported))
    return sorted(pairs)


def _describe(graph: grimp.ImportGraph, a: str, b: str) -> str:
    lines = []
    for importer, imported in ((a, b), (b, a)):
        where = ", ".join(f"line {d['line_number']}: {d['line_contents']}"
                          for d in graph.get_import_details(importer=importer, imported=imported))
        lines.append(f"  {importer} -> {imported} ({where})")
    return "\n".join(lines)


def test_no_two_project_modules_import_each_other() -> None:
    packages = [name for name in PACKAGES if (ROOT / name / "__init__.py").exists()]
    graph = grimp.build_graph(*packages, cache_dir=None)
    pairs = mutual_imports(graph)
    report = "\n".join(_describe(graph, a, b) for a, b in pairs)
    assert not pairs, f"{len(pairs)} module pairs import each other:\n{report}"


def test_an_import_inside_a_function_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def use():\n    from cyclepkg import high\n    return high\n")
    (package / "high.py").write_text("from cyclepkg import low\n")
    (package / "other.py").write_text("from cyclepkg import low\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclepkg", cache_dir=None)
    assert mutual_imports(graph) == [("cyclepkg.high", "cyclepkg.low")]
