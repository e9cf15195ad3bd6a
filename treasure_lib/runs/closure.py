"""The library code a stage's result depends on, found by reading the source: the import closure of its entry point.

A stage names its entry point, a function of treasure_lib (`study.stages:tokenizers`). Its code is

- that function's syntax tree, and those of the functions, classes and constants of the study layer that it names
  (followed the same way), but not other stages' entry points (what those built is an input by its content) nor the
  names given as `skip` (the hashing helpers: they say what a stage is, not what it computes);
- every treasure_lib module those import, anywhere in their bodies, as a whole module, with every treasure_lib
  module it imports in turn (at any level: a function-local import counts), and the packages' `__init__` files;
- except the plumbing modules (`PLUMBING`), which shape no number: run folders, locks and records, error
  classes, progress bars, and the params schema (defaults reach a result only as params, which are hashed).

Syntax trees, not bytes: an edited comment or blank line changes nothing, an edited docstring or line of code does.
Everything is read from the files, never from what this process imported, so a classifier worker and its parent
compute the same hash, and a copy of the package (`lib_dir`) can be hashed beside the installed one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from ..hashing import parts_sha256, tree_stamp

PACKAGE = "treasure_lib"
LIB_DIR = Path(__file__).resolve().parents[1]
#: Modules (and packages) whose code never shapes a stage's result.
PLUMBING = (
    "treasure_lib.runs",
    "treasure_lib.errors",
    "treasure_lib.progress",
    "treasure_lib.quiet",
    "treasure_lib.config.schema",
    "treasure_lib.config.sections",
    "treasure_lib.book",
    "treasure_lib.scan",
)

#: Packages followed function by function (the study layer imports every other part lazily, inside the function that
#: needs it); every other module counts whole.
FUNCTION_LEVEL = ("treasure_lib.study",)

_PARSED: dict = {}  # (path, mtime_ns, size) -> ast.Module


def _plumbing(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PLUMBING)


class _Library:
    """treasure_lib's files under `lib_dir`, parsed on demand."""

    def __init__(self, lib_dir: Path):
        self.dir = Path(lib_dir)

    def file(self, module: str) -> Path | None:
        parts = module.split(".")[1:]
        base = self.dir.joinpath(*parts)
        for path in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
            if path is not None and path.is_file():
                return path
        return None

    def is_package(self, module: str) -> bool:
        path = self.file(module)
        return path is not None and path.name == "__init__.py"

    def tree(self, module: str) -> ast.Module:
        path = self.file(module)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in _PARSED:
            _PARSED[key] = ast.parse(path.read_text(), filename=str(path))
        return _PARSED[key]

    def resolve(self, module: str, node: ast.Import | ast.ImportFrom) -> dict[str, tuple[str, str | None]]:
        """{bound name: (treasure_lib module, attribute or None)} of one import statement in `module`."""
        out: dict[str, tuple[str, str | None]] = {}
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    out[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
            return out
        if node.level:
            base = module.split(".") if self.is_package(module) else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if source.split(".")[0] != PACKAGE:
            return out
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            out[alias.asname or alias.name] = (sub, None) if self.file(sub) else (source, alias.name)
        return out


def _top_level(tree: ast.Module) -> dict[str, ast.AST]:
    """A module's functions, classes and assigned names."""
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out[name.id] = node
    return out


def _bindings(lib: _Library, module: str, nodes: Iterable[ast.AST]) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                out.update(lib.resolve(module, sub))
    return out


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _modules(lib: _Library, roots: Iterable[str]) -> set[str]:
    """Every treasure_lib module the `roots` import, transitively (whole modules; plumbing left out)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or _plumbing(module) or lib.file(module) is None:
            continue
        seen.add(module)
        todo += _parents(module)
        todo += [target for target, _ in _bindings(lib, module, [lib.tree(module)]).values()]
    return seen


def _function_level(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in FUNCTION_LEVEL)


def _function_parts(lib: _Library, module: str, name: str, stop: set[tuple[str, str]]) -> tuple[dict, set[str]]:
    """({(module, name): syntax tree dump} of the entry and the names it reaches in function-level modules,
    {modules it imports, counted whole})."""
    parts: dict = {}
    imported: set[str] = set()
    todo = [(module, name)]
    while todo:
        mod, current = todo.pop()
        if (mod, current) in parts or (mod, current) in stop:
            continue
        tree = lib.tree(mod)
        top = _top_level(tree)
        if current not in top:
            if (mod, current) == (module, name):
                raise ValueError(f"{module} has no top-level {name!r} (a stage's entry point)")
            imported.add(mod)  # a name its package's __init__ provides, or a dynamic one: the whole module
            continue
        node = top[current]
        parts[(mod, current)] = ast.dump(node)
        bound = {
            **_bindings(lib, mod, [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]),
            **_bindings(lib, mod, [node]),
        }

        def follow(target: str, attr: str | None) -> None:
            if attr is not None and (target, attr) in stop:
                return  # another stage's entry point or a hashing helper
            if attr is not None and _function_level(target):
                todo.append((target, attr))
            else:
                imported.add(target)

        via_attribute = set()
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name)
                and sub.value.id in bound
                and bound[sub.value.id][1] is None
                and _function_level(bound[sub.value.id][0])
            ):
                via_attribute.add(id(sub.value))  # `stages.tokens`: the function, not the whole module
                follow(bound[sub.value.id][0], sub.attr)
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Name) or id(sub) in via_attribute:
                continue
            if sub.id in bound:
                follow(*bound[sub.id])
            elif sub.id in top and sub.id != current:
                todo.append((mod, sub.id))
    return parts, imported


_HASHES: dict = {}  # (entry, stops, stamp of every library file) -> hash


def code_hash(entry: str, stop: Iterable[str] = (), lib_dir: Path = LIB_DIR) -> str:
    """sha256 of the code a stage's entry point (`"study.stages:tokenizers"`) depends on (see the module docstring).
    `stop`: entry points of other stages and hashing helpers, as `"module:name"` (module relative to treasure_lib).
    Cached while no library file changes its time or size."""
    key = (entry, tuple(sorted(stop)), str(lib_dir), tree_stamp(lib_dir))
    if key not in _HASHES:
        _HASHES[key] = _code_hash(entry, stop, lib_dir)
    return _HASHES[key]


def _code_hash(entry: str, stop: Iterable[str], lib_dir: Path) -> str:
    lib = _Library(lib_dir)
    module, name = _split(entry)
    stops = {_split(s) for s in stop} - {(module, name)}
    parts, imported = _function_parts(lib, module, name, stops)
    modules = _modules(lib, [m for m in imported if m != module])
    functions = [(f"{mod}:{fn}", dump) for (mod, fn), dump in sorted(parts.items())]
    return parts_sha256(functions + [(mod, ast.dump(lib.tree(mod))) for mod in sorted(modules)])


def modules_of(entry: str, stop: Iterable[str] = (), lib_dir: Path = LIB_DIR) -> list[str]:
    """The modules (and the entry's own functions, as `module:name`) `code_hash` covers: to see what counts."""
    lib = _Library(lib_dir)
    module, name = _split(entry)
    parts, imported = _function_parts(lib, module, name, {_split(s) for s in stop} - {(module, name)})
    return sorted(f"{m}:{f}" for m, f in parts) + sorted(_modules(lib, [m for m in imported if m != module]))


def _split(entry: str) -> tuple[str, str]:
    module, _, name = entry.partition(":")
    return f"{PACKAGE}.{module}" if not module.startswith(PACKAGE) else module, name
