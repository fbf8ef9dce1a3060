"""The architecture holds (issue 10, item 4): the import-linter contracts of pyproject.toml
([tool.importlinter]) pass, so entry points call services, services the engine, the engine
never the tasks or the services, and no package has an import cycle."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_the_import_contracts_are_kept():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def graph():
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph("clusters", cache_dir=None)


# The cycles of issue 10, each checked on its own so a regression names itself.
@pytest.mark.parametrize(
    "importer, imported",
    [
        ("clusters.push", "clusters.tasks"),
        ("clusters.drill", "clusters.tasks"),
        ("clusters.history", "clusters.push"),
        ("clusters.preview", "clusters.services"),
        ("clusters.health", "clusters.web"),
    ],
)
def test_the_engine_never_imports_upwards(graph, importer, imported):
    chains = graph.find_shortest_chains(importer=importer, imported=imported)
    assert not chains, chains


def test_the_web_pages_change_nothing_but_through_the_services(graph):
    # The pages may read models, but write through services: no page imports the engine's
    # writers (push, drill, remote) directly.
    for page in graph.find_children("clusters.web"):
        for writer in ("clusters.push", "clusters.drill", "clusters.remote"):
            assert not graph.direct_import_exists(importer=page, imported=writer), (page, writer)


def test_clusters_never_imports_alerts():
    # alerts builds on clusters; the engine tells it things through clusters.signals and the
    # metrics registry, so the dependency runs one way (the "clusters never imports alerts"
    # contract; this names the chain if it ever breaks).
    sys.path.insert(0, str(ROOT))
    both = grimp.build_graph("clusters", "alerts", cache_dir=None)
    assert both.find_shortest_chains(importer="alerts", imported="clusters")  # it does build on it
    chains = both.find_shortest_chains(importer="clusters", imported="alerts")
    assert not chains, chains


def test_every_import_inside_a_function_says_why():
    """An import inside a function hides a dependency from the contracts' readers: each says,
    on its line or the line above, which cycle it breaks or what it saves."""
    silent = []
    for package in ("clusters", "alerts", "vipanel"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            lines = path.read_text().splitlines()
            for node in ast.walk(ast.parse("\n".join(lines), str(path))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        here, above = lines[inner.lineno - 1], lines[inner.lineno - 2]
                        if "#" not in here and not above.strip().startswith("#"):
                            silent.append(
                                f"{path.relative_to(ROOT)}:{inner.lineno}: {here.strip()}"
                            )
    assert silent == [], "\n".join(silent)
