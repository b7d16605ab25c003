"""kernels/ sits below the ops: it imports only the engine and Triton, and one module dispatches to it.

Read off the source with ``ast``, so nothing is imported (and no Triton is needed):

- nothing in kernels/ imports minigan.functional, minigan.nn, minigan.optim,
  minigan.models or benchmarks, and its modules import one another without a cycle;
- kernels/ installs as ``minigan.kernels``: no file in the repository imports a bare
  ``kernels`` (a package of that name exists on PyPI);
- in minigan/ only minigan/dispatch.py names the kernels, and only inside a function
  (``import minigan`` never imports Triton).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "kernels"
ABOVE_THE_KERNELS = ("minigan.functional", "minigan.nn", "minigan.optim", "minigan.models", "benchmarks")


def _module_name(path):
    """The installed name of a source file: kernels/x.py is minigan.kernels.x."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "kernels":
        parts.insert(0, "minigan")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """(absolute module name, top level?) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]  # a module, or a name in one
            found += [(name, id(node) in top_level) for name in names]
    return found


def _sources(*folders):
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("kernels"), ids=lambda p: p.name)
def test_kernels_import_nothing_above_the_engine(path):
    upward = sorted({name for name, _ in _imports(path) if name.startswith(ABOVE_THE_KERNELS)})
    assert not upward, f"{path.relative_to(ROOT)} imports {upward}: kernels/ may import only " \
                       "minigan.autograd, minigan.backend and Triton"


def test_kernel_modules_import_one_another_without_a_cycle():
    modules = {_module_name(p): p for p in _sources("kernels")}
    graph = {name: {m for m, _ in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(name):] + [name])}")
        if name not in done:
            path.append(name)
            for other in sorted(graph[name]):
                visit(other)
            path.pop()
            done.add(name)

    for name in sorted(graph):
        visit(name)


def test_nothing_imports_the_bare_kernels_name():
    bare = [f"{p.relative_to(ROOT)}: {name}" for p in _sources("minigan", "kernels", "tests", "benchmarks", "examples")
            for name, _ in _imports(p) if name == "kernels" or name.startswith("kernels.")]
    assert not bare, f"import minigan.kernels, not kernels: {bare}"


def test_only_the_dispatch_module_reaches_the_kernels_and_only_when_asked():
    reach = {p.relative_to(ROOT).as_posix(): top for p in _sources("minigan")
             for name, top in _imports(p) if name.startswith("minigan.kernels")}
    assert set(reach) <= {"minigan/dispatch.py"}, f"kernels reached around minigan/dispatch.py: {reach}"
    assert not any(reach.values()), "minigan/dispatch.py imports the kernels at import time"


def test_the_installed_name_is_minigan_kernels():
    import importlib.util
    spec = importlib.util.find_spec("minigan.kernels")
    assert spec is not None and Path(spec.origin).name == "__init__.py"
    assert (Path(spec.origin).parent / "conv.py").exists()
