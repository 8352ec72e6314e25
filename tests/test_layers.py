"""Imports only point down: a gfpo_bench module may import from its own layer or a lower one.

`LAYERS` below is the one place the allowed order is written, bottom -> top. Each layer is a list
of module or package prefixes (`gfpo_bench.tasks` covers the package and every module in it; the
longest matching prefix decides, so `gfpo_bench.eval.cli` can sit above `gfpo_bench.eval`; the bare
`gfpo_bench` names only the package's own `__init__.py`).
Modules in the same layer may import each other. A new module that matches no prefix fails until
it is added to LAYERS.

The source is parsed with `ast`, nothing is imported. Every import counts, including imports
inside functions (a lazy import is still a dependency) and `from . import x` forms; imports under
`if TYPE_CHECKING:` are skipped, as they never run and only name types for annotations.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = "gfpo_bench"
PKG = Path(__file__).resolve().parents[1] / ROOT

LAYERS: list[tuple[str, list[str]]] = [  # bottom -> top
    (
        "core",
        [
            "gfpo_bench.types",
            "gfpo_bench.errors",
            "gfpo_bench.registry",
            "gfpo_bench.config_schema",
            "gfpo_bench.distributed",
            "gfpo_bench.ledger",
            "gfpo_bench.csv_log",
            "gfpo_bench.checkpoint_io",
            "gfpo_bench.summary",
            "gfpo_bench.building",
            "gfpo_bench.conf",
            "gfpo_bench",
        ],
    ),
    ("checkers", ["gfpo_bench.checkers", "gfpo_bench.sandbox"]),
    ("tasks", ["gfpo_bench.tasks"]),
    ("models", ["gfpo_bench.models"]),
    ("rollouts", ["gfpo_bench.sampling", "gfpo_bench.rewards"]),
    (
        "methods",
        [
            "gfpo_bench.pairing",
            "gfpo_bench.analytics",
            "gfpo_bench.loss",
            "gfpo_bench.sft_mix",
            "gfpo_bench.grpo",
            "gfpo_bench.policies",
            "gfpo_bench.eval",
        ],
    ),
    ("wiring", ["gfpo_bench.schedule", "gfpo_bench.callbacks", "gfpo_bench.datamodule"]),
    ("module", ["gfpo_bench.module"]),
    (
        "run",
        ["gfpo_bench.loggers", "gfpo_bench.warmstart", "gfpo_bench.validation", "gfpo_bench.sft_stage"],
    ),
    ("train", ["gfpo_bench.train"]),
    ("entry", ["gfpo_bench.cli", "gfpo_bench.eval.cli", "gfpo_bench.compare"]),
]


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the longest prefix matching `module`; None if there is none."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            covers = module == p or (p != ROOT and module.startswith(p + "."))
            if covers and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def module_name(path: Path) -> str:
    """gfpo_bench/eval/cli.py -> gfpo_bench.eval.cli; a package's __init__.py is the package."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST):
    """Every Import/ImportFrom node at any depth, except in the body of `if TYPE_CHECKING:`."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    for child in node.orelse if _type_checking_only(node) else ast.iter_child_nodes(node):
        yield from _imports(child)


def imported_modules(importer: str, path: Path) -> set[str]:
    """gfpo_bench modules `path` imports; `from P import n` means P.n when that is a module."""
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from . import x, from .x import y
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base]) if base else ".".join(anchor)
        for a in node.names:
            sub = f"{base}.{a.name}"
            found.add(sub if sub in MODULES else base)
    return {m for m in found if m == ROOT or m.startswith(ROOT + ".")}


def test_layers_cover_the_package() -> None:
    assert len(MODULES) > 50  # the scan sees the package
    missing = sorted(m for m in MODULES if layer_of(m) is None)
    assert not missing, f"modules in no layer (add them to LAYERS in {__file__}): {missing}"


def upward_imports(modules: dict[str, Path]) -> list[str]:
    """One line per import that points up or at a module in no layer."""
    names = [name for name, _ in LAYERS]
    found = []
    for importer, path in modules.items():
        own = layer_of(importer)
        if own is None:
            continue  # reported by test_layers_cover_the_package
        for imported in sorted(imported_modules(importer, path)):
            theirs = layer_of(imported)
            if theirs is None:
                found.append(f"{importer} imports {imported}, which is in no layer (add it to LAYERS)")
            elif theirs > own:
                found.append(
                    f"{importer} (layer {names[own]}) imports {imported} (layer {names[theirs]}, above it)"
                )
    return found


def test_imports_only_point_down() -> None:
    violations = upward_imports(MODULES)
    assert not violations, "imports that point up:\n" + "\n".join(violations)


def test_an_upward_import_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "fake.py"
    fake.write_text(
        "import torch\nfrom gfpo_bench.types import Problem\n\n\ndef f():\n    from gfpo_bench import train\n"
    )
    assert upward_imports({"gfpo_bench.tasks.fake": fake}) == [
        "gfpo_bench.tasks.fake (layer tasks) imports gfpo_bench.train (layer train, above it)"
    ]
    assert upward_imports({"gfpo_bench.train": fake}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from gfpo_bench.eval import cli", {"gfpo_bench.eval.cli"}),
        ("from gfpo_bench.errors import ConfigError", {"gfpo_bench.errors"}),
        ("import gfpo_bench.cli", {"gfpo_bench.cli"}),
        ("def f():\n    from gfpo_bench.train import run", {"gfpo_bench.train"}),
        ("from .evaluate import evaluate_policy", {"gfpo_bench.eval.evaluate"}),
        ("from .. import analytics", {"gfpo_bench.analytics"}),
        (
            "if TYPE_CHECKING:\n    from gfpo_bench.module import M\nelse:\n    import gfpo_bench.loss",
            {"gfpo_bench.loss"},
        ),
        ("import torch\nfrom typing import Any", set()),
    ],
)
def test_the_scan_sees_every_kind_of_import(tmp_path: Path, source: str, expected: set[str]) -> None:
    path = tmp_path / "fake.py"
    path.write_text(source)
    assert imported_modules("gfpo_bench.eval.fake", path) == expected


def test_layer_of_takes_the_longest_prefix() -> None:
    core, checkers, tasks = 0, 1, 2
    assert layer_of("gfpo_bench.errors") == layer_of("gfpo_bench") == core
    assert layer_of("gfpo_bench.checkers.answers") == checkers
    assert layer_of("gfpo_bench.tasks.math_bench") == tasks
    assert layer_of("gfpo_bench.eval.cli") > layer_of("gfpo_bench.train") > layer_of("gfpo_bench.eval.passk")
    assert layer_of("gfpo_bench.nowhere") is None
