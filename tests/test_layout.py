"""The package's shape: docs/architecture.md names every package there is, nothing imports another module's
private names, the model does not import the file format, and no modules or packages import each other in a
cycle (imports inside functions count; those under `if TYPE_CHECKING:` do not, they never run)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "audiocodec"


def test_the_architecture_page_names_every_package_and_no_other():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^[│ ]*[├└]── ([a-z_]+)/", text, flags=re.MULTILINE))
    present = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert named, "docs/architecture.md has no layout tree"
    assert named - present == set(), "named in docs/architecture.md but not in audiocodec/"
    assert present - named == set(), "in audiocodec/ but not named in docs/architecture.md"


def _modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _runtime_imports(tree: ast.AST):
    """Every import statement of `tree` but those under `if TYPE_CHECKING:`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _imports() -> dict[str, list[tuple[str, str]]]:
    """module -> [(imported module, imported name or "")] within the package."""
    modules = _modules()
    found = {}
    for module, (path, is_package) in modules.items():
        edges = []
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges += [(alias.name, "") for alias in node.names if alias.name in modules]
                continue
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source not in modules:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                edges.append((submodule, "") if submodule in modules else (source, alias.name))
        found[module] = edges
    return found


def test_no_module_imports_another_modules_private_names():
    private = [f"{module} imports {source}.{name}" for module, edges in _imports().items()
               for source, name in edges if name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_the_model_does_not_import_the_file_format():
    reaching = [f"{module} imports {source}" for module, edges in _imports().items()
                if module.startswith("audiocodec.model") for source, _ in edges
                if source.startswith("audiocodec.format")]
    assert reaching == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules_or_between_packages():
    imports = _imports()
    modules = {module: {source for source, _ in edges if source != module} for module, edges in imports.items()}
    assert _cycles(modules) == []

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, sources in modules.items():
        for source in sources:
            if package(source) != package(module) and source != "audiocodec":  # the top level only re-exports
                packages.setdefault(package(module), set()).add(package(source))
    assert _cycles(packages) == []
