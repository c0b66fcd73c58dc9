"""The package's layers point one way (``shared/DESIGN.md``), imports inside functions included.

Every ``import`` and ``from ... import`` in ``sofgan_lab/`` and ``widgets/`` (installed as
``sofgan_lab.widgets``), at any depth of the code, is an arrow from the importing unit to the
imported one; a unit is a subpackage or a top-level module (``sofgan_lab.io.official``, the official
importer, is a unit of its own). Bottom to top:

1. ``_validate`` (shared argument checks), ``labels``, ``cameras``, ``images``, ``confusion``, ``io`` (the native format), ``demo``
2. ``synthetic``, ``geometry``, ``texture``
3. ``io.official``
4. ``pipeline``
5. ``applications``, ``metrics``, ``datasets``, ``parsing``
6. ``train``
7. ``cli``
8. ``widgets``

An arrow may point down or sideways within a level, never up, and the units' graph has no cycle.
The checker is also run on a copy of the tree with a bad import planted, and must catch it.
"""
from __future__ import annotations

import ast
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LEVELS = {
    "_validate": 1, "labels": 1, "cameras": 1, "images": 1, "confusion": 1, "io": 1, "demo": 1,
    "synthetic": 2, "geometry": 2, "texture": 2,
    "io.official": 3,
    "pipeline": 4,
    "applications": 5, "metrics": 5, "datasets": 5, "parsing": 5,
    "train": 6,
    "cli": 7,
    "widgets": 8,
}


def _unit(module: str) -> str | None:
    """The unit of a dotted module name (``None`` outside the package or for the package root)."""
    parts = module.split(".")
    if parts[0] != "sofgan_lab" or len(parts) == 1:
        return None
    if parts[1] == "io" and len(parts) > 2 and parts[2] == "official":
        return "io.official"
    return parts[1]


def _module_of(path: Path, root: Path) -> tuple[str, str]:
    """(dotted module name, dotted package its relative imports start from) of a source file."""
    rel = path.relative_to(root)
    parts = ["sofgan_lab", "widgets", *rel.parts[1:]] if rel.parts[0] == "widgets" else list(rel.parts)
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _imports(root: Path, dirs=("sofgan_lab", "widgets")):
    """Every import ``(importing module, imported dotted name, file, line)`` in ``dirs`` of ``root``."""
    files = [p for d in dirs for p in sorted((root / d).rglob("*.py"))]
    for path in files:
        module, package = _module_of(path, root)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                yield module, t, str(path.relative_to(root)), node.lineno


def import_arrows(root: Path) -> list[tuple[str, str, str, int]]:
    """Every arrow ``(from unit, to unit, file, line)`` between two units of the tree at ``root``."""
    arrows = []
    for module, target, file, line in _imports(root):
        src, dst = _unit(module), _unit(target)
        if src in LEVELS and dst in LEVELS and src != dst:
            arrows.append((src, dst, file, line))
    return sorted(set(arrows))


def widget_module_arrows(root: Path) -> list[tuple[str, str, str, int]]:
    """Arrows between the modules of the widgets package (``sofgan_lab.widgets.<module>``)."""
    modules = {f"sofgan_lab.widgets.{p.stem}" for p in (root / "widgets").glob("*.py") if p.stem != "__init__"}
    arrows = []
    for module, target, file, line in _imports(root, ("widgets",)):
        dst = next((m for m in modules if target == m or target.startswith(m + ".")), None)
        if module in modules and dst is not None and dst != module:
            arrows.append((module, dst, file, line))
    return sorted(set(arrows))


def _cycles(arrows) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    graph = defaultdict(set)
    for a, b, *_ in arrows:
        graph[a].add(b)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_problems(root: Path) -> list[str]:
    """What breaks the layering in the tree at ``root``: arrows up a level, and cycles of units."""
    arrows = import_arrows(root)
    up = [f"{f}:{line}: {a} (level {LEVELS[a]}) imports {b} (level {LEVELS[b]})"
          for a, b, f, line in arrows if LEVELS[b] > LEVELS[a]]
    return up + [f"cycle between {' <-> '.join(c)}" for c in _cycles(arrows)]


def test_every_source_unit_has_a_level():
    units = {p.stem if p.is_file() else p.name for p in (REPO / "sofgan_lab").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert units <= set(LEVELS), f"units without a level in tests/test_layers.py: {sorted(units - set(LEVELS))}"


def test_imports_point_down_the_layers_and_form_no_cycle():
    assert len(import_arrows(REPO)) > 50  # the parser sees the package's imports
    problems = layer_problems(REPO)
    assert not problems, "the layers are broken:\n" + "\n".join(problems)


@pytest.mark.parametrize("plant, expect", [
    # a model importing a trainer inside a function: an arrow up, and a cycle (train imports geometry)
    ("geometry/sof.py", "geometry (level 2) imports train (level 6)"),
    # the native format importing the official importer at module level
    ("io/checkpoints.py", "io (level 1) imports io.official (level 3)"),
])
def test_the_check_catches_a_planted_bad_import(tmp_path, plant, expect):
    for name in ("sofgan_lab", "widgets"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "sofgan_lab" / plant
    line = ("\n\ndef _planted():\n    from ..train import common\n    return common\n" if "geometry" in plant
            else "\nfrom .official import load_official_sof  # planted\n")
    target.write_text(target.read_text() + line)
    problems = layer_problems(tmp_path)
    assert any(expect in p for p in problems), problems
    assert any(p.startswith("cycle between") for p in problems), problems


def test_widget_modules_form_no_cycle(tmp_path):
    """The widgets' own modules import one way too (a base class never imports its subclasses'
    module, even inside a function); checked on the tree and on a copy with a cycle planted."""
    arrows = widget_module_arrows(REPO)
    assert any(a == "sofgan_lab.widgets.camera" and b == "sofgan_lab.widgets.portrait" for a, b, *_ in arrows)
    assert not _cycles(arrows), _cycles(arrows)
    shutil.copytree(REPO / "widgets", tmp_path / "widgets", ignore=shutil.ignore_patterns("__pycache__"))
    base = tmp_path / "widgets" / "_base.py"
    base.write_text(base.read_text() + "\n\ndef _planted():\n    from .portrait import PortraitView\n    return PortraitView\n")
    assert ["sofgan_lab.widgets._base", "sofgan_lab.widgets.portrait"] in _cycles(widget_module_arrows(tmp_path))
