"""The house's layering: data flows one way, and no two modules import each other.

examples -> models -> nn -> functional -> autograd -> backend. Every module of
``minigan/`` is parsed (not imported), and every import in it is read: at the
top of the file and inside functions (a lazy import is still a dependency).
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

ABOVE_THE_ENGINE = ["minigan.functional", "minigan.nn", "minigan.optim", "minigan.models",
                    "minigan.utils", "minigan.data", "minigan.eval"]

# each layer, and the layers it must never import
FORBIDDEN = {
    "minigan.autograd": ABOVE_THE_ENGINE,
    "minigan.backend": ABOVE_THE_ENGINE,
    "minigan.functional": ["minigan.nn", "minigan.optim", "minigan.models", "minigan.utils", "minigan.data"],
    "minigan.nn": ["minigan.optim", "minigan.models", "minigan.utils"],
    "minigan.models": ["examples"],
}


def modules(package):
    """{dotted name: (path, is a package)} for every .py file under ROOT/package."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imported_names(name, path, is_package):
    """Every dotted name ``name``'s module imports, relative imports resolved,
    with the line it is on. ``from a import b`` yields ``a.b`` (b may be a module)."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def import_graph(package="minigan"):
    """{module: {imported module of the package: line}}: each name is cut back to the
    longest prefix that is a module here; names from outside the package are dropped."""
    found = modules(package)
    graph = {}
    for name, (path, is_package) in found.items():
        graph[name] = {}
        for target, line in imported_names(name, path, is_package):
            while target and target not in found:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].setdefault(target, line)
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None. Iterative DFS."""
    state = {}  # module -> "open" while on the current path, "done" after
    for start in graph:
        if start in state:
            continue
        path, stack = [], [(start, iter(graph[start]))]
        state[start] = "open"
        path.append(start)
        while stack:
            module, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                path.pop()
                state[module] = "done"
            elif state.get(target) == "open":
                return path[path.index(target):] + [target]
            elif target not in state:
                state[target] = "open"
                path.append(target)
                stack.append((target, iter(graph.get(target, ()))))
    return None


def within(module, layer):
    return module == layer or module.startswith(layer + ".")


def test_no_import_cycle_in_minigan():
    cycle = find_cycle(import_graph("minigan"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer):
    found = modules("minigan")
    upward = []
    for module, (path, is_package) in found.items():
        if not within(module, layer):
            continue
        for target, line in imported_names(module, path, is_package):
            if any(within(target, above) for above in FORBIDDEN[layer]):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not upward, f"{layer} imports from a layer above it:\n" + "\n".join(upward)


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"b": 2}}) is None


def test_the_checker_reads_imports_inside_functions_and_resolves_relative_ones(tmp_path):
    # the import inside Tensor.to once made autograd -> functional.elementwise -> autograd
    path = tmp_path / "autograd.py"
    path.write_text("from . import backend\n\ndef to(self):\n    from .functional.elementwise import Cast\n")
    assert list(imported_names("minigan.autograd", path, False)) == [
        ("minigan.backend", 1), ("minigan.functional.elementwise.Cast", 4)]
