"""The import graph of mlcore and labeling, read from the source (every import, including those inside functions):
no cycles, mlcore never reaches Django or labeling, and the layers point one way (api and views -> selectors and
services -> models; labeling -> mlcore). docs/architecture.md draws the same arrows."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mlcore", "labeling")
DJANGO_WORLD = ("django", "rest_framework", "django_q", "drf_spectacular", "django_filters", "labeling")

# (importing layer, imported layer) pairs that would point an arrow backwards.
BACKWARDS = {
    ("models", "services"), ("models", "selectors"), ("models", "views"), ("models", "api"),
    ("services", "views"), ("services", "api"), ("selectors", "views"), ("selectors", "api"),
    ("selectors", "services"),
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(name: str, path: Path, known: set[str] | None = None) -> set[str]:
    """The modules the file's import statements name, relative imports resolved. ``from a import b`` names the
    module ``a.b`` when ``known`` holds it, else ``a`` (b is then a name defined in a); with ``known`` None it
    names ``a``. Only modules in ``known`` are kept when it is given."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if known and f"{base}.{alias.name}" in known else base)
    return found if known is None else found & known


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports anywhere in its source (itself left out)."""
    files = {module_name(root, path): path for package in packages for path in sorted((root / package).rglob("*.py"))}
    return {name: imported_modules(name, path, set(files)) - {name} for name, path in files.items()}


def a_cycle(graph: dict[str, set[str]]) -> set[str]:
    """The modules of one import cycle (graphlib finds it), or an empty set when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return set(error.args[1])
    return set()


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if parts[0] == "labeling" and len(parts) > 1 else parts[0]


def backward_arrows(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if (layer(a), layer(b)) in BACKWARDS or (a.startswith("mlcore") and b.startswith("labeling")))


def django_imports_in_mlcore(root: Path) -> list[str]:
    return sorted(f"{module_name(root, path)} imports {imported}"
                  for path in sorted((root / "mlcore").rglob("*.py"))
                  for imported in imported_modules(module_name(root, path), path)
                  if imported.split(".")[0] in DJANGO_WORLD)


def test_no_module_of_mlcore_or_labeling_imports_in_a_cycle():
    assert a_cycle(import_graph(REPO_ROOT)) == set()


def test_mlcore_never_imports_django_or_labeling_not_even_inside_a_function():
    assert django_imports_in_mlcore(REPO_ROOT) == []


def test_the_layers_point_one_way():
    assert backward_arrows(import_graph(REPO_ROOT)) == []


def test_the_graph_sees_the_stage_packages():
    graph = import_graph(REPO_ROOT)

    assert "mlcore.features.backbone" in graph["mlcore.training.galaxy_model"]
    assert "labeling.services.jobs.base" in graph["labeling.services.jobs.chunks"]


def _package(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    root = _package(tmp_path, {
        "labeling/__init__.py": "",
        "labeling/services/__init__.py": "",
        "labeling/services/jobs.py": "def f():\n    from labeling.services.chunks import g\n",
        "labeling/services/chunks.py": "from labeling.services.jobs import f\n",
        "mlcore/__init__.py": "",
    })

    assert a_cycle(import_graph(root)) == {"labeling.services.chunks", "labeling.services.jobs"}


def test_a_cycle_through_a_relative_import_is_found(tmp_path):
    root = _package(tmp_path, {
        "labeling/__init__.py": "",
        "mlcore/__init__.py": "",
        "mlcore/votes/__init__.py": "",
        "mlcore/votes/tree.py": "from . import weighting\n",
        "mlcore/votes/weighting.py": "from mlcore.votes.tree import x\n",
    })

    assert a_cycle(import_graph(root)) == {"mlcore.votes.tree", "mlcore.votes.weighting"}


def test_a_cycle_through_a_package_that_gathers_its_modules_names_is_found(tmp_path):
    root = _package(tmp_path, {
        "labeling/__init__.py": "",
        "mlcore/__init__.py": "",
        "mlcore/active/__init__.py": "from .query import choose\n",
        "mlcore/active/query.py": "import mlcore.active.scores\n",
        "mlcore/active/scores.py": "from mlcore.active import choose\n",
    })

    assert a_cycle(import_graph(root)) == {"mlcore.active", "mlcore.active.query", "mlcore.active.scores"}


def test_django_hidden_in_an_mlcore_function_and_a_backward_arrow_are_found(tmp_path):
    root = _package(tmp_path, {
        "mlcore/__init__.py": "",
        "mlcore/store.py": "def f():\n    from django.conf import settings\n",
        "labeling/__init__.py": "",
        "labeling/models/__init__.py": "",
        "labeling/models/jobs.py": "from labeling.services.jobs import job_run\n",
        "labeling/services/__init__.py": "",
        "labeling/services/jobs.py": "from labeling.models.jobs import Job\n",
    })
    graph = import_graph(root)

    assert django_imports_in_mlcore(root) == ["mlcore.store imports django.conf"]
    assert backward_arrows(graph) == ["labeling.models.jobs -> labeling.services.jobs"]


@pytest.mark.parametrize("folder", ["mlcore", "labeling/services"])
def test_no_module_sits_outside_a_stage_package(folder):
    loose = sorted(path.name for path in (REPO_ROOT / folder).glob("*.py") if path.name != "__init__.py")

    assert loose == []
