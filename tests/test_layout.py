"""The tree shows the layers: no module imports a layer above its own, and the top of `benchmark/` stays small."""

import ast
import re
from pathlib import Path

import pytest

from benchmark.run.executors._common import bounded_run
from benchmark.run.worker import CellStatus

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a module may import its own layer and the layers before it, never one after it.
LAYERS = (
    "errors",
    "paths",
    "registry",
    "world",
    "backbone",
    "data",
    "captions",
    "plan",
    "core",
    "testing",  # the method contract, importable by plugin authors as `benchmark.testing`
    "results",
    "run",
    "cli",
)
TOP_MODULES = {"__init__.py", "__main__.py", "errors.py", "paths.py", "registry.py", "testing.py"}
# The world's generator sources are hashed into WORLD_VERSION (benchmark/world/version.py): editing them, even a
# comment, regenerates the world. Their comments still cite the design notes they were written from.
HASHED_WORLD_SOURCES = {"benchmark/world/datasets.py", "benchmark/world/build.py"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "benchmark" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_every_package_module_belongs_to_a_layer_and_the_top_stays_small():
    top = {p.name for p in (ROOT / "benchmark").glob("*.py")}
    assert top == TOP_MODULES
    packages = {p.name for p in (ROOT / "benchmark").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS) - {"errors", "paths", "registry", "testing"}


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted((ROOT / "benchmark").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        own = layer_of(module)
        if own is None:
            continue
        for name in imports(path):
            if name.split(".")[0] in ("methods", "protocols"):
                upward.append(f"{module} -> {name} (plugins sit above the harness)")
                continue
            target = layer_of(name)
            if target is not None and LAYERS.index(target) > LAYERS.index(own):
                upward.append(f"{module} -> {name}")
    assert upward == []


@pytest.mark.parametrize("folder", ["benchmark", "methods", "protocols"])
def test_comments_cite_only_files_the_repository_ships(folder):
    cited = re.compile(r"\b(DESIGN\.md|DESIGN section|METHODS\.md|LAYOUT\.md|WORLD_NOTES\.md)")
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in HASHED_WORLD_SOURCES:
            continue
        offenders += [
            f"{relative}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1) if cited.search(line)
        ]
    assert offenders == []
    for reference in re.findall(
        r"methods/REFERENCES\.md §(\d)", "".join(p.read_text() for p in (ROOT / folder).rglob("*.py"))
    ):
        assert f"## {reference}." in (ROOT / "methods" / "REFERENCES.md").read_text()


def test_the_executors_share_one_bounded_loop_that_never_exceeds_its_workers():
    started, in_flight, peak = [], set(), [0]

    def start(task, slot):
        assert slot not in {s for _, s in in_flight}
        in_flight.add((task[1], slot))
        peak[0] = max(peak[0], len(in_flight))
        started.append((task[1], slot))
        return task[1]

    def wait_ended(handles):
        first = sorted(handles)[0]  # one cell ends per wait, the lexically first
        in_flight.difference_update({(h, s) for h, s in in_flight if h == first})
        return [first]

    tasks = [("{}", f"cell{i}") for i in range(7)]
    running = {}
    statuses = list(
        bounded_run(
            tasks, 3, running, start=start, wait_ended=wait_ended, status=lambda h, t: CellStatus(h, t[1], ok=True)
        )
    )
    assert sorted(s.label for s in statuses) == sorted(t[1] for t in tasks) and running == {}
    assert peak[0] == 3 and {slot for _, slot in started} == {0, 1, 2}
