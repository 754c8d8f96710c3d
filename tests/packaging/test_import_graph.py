"""What a deployed function can import: the static import graph of every handler the template names.

`sam build` packages src/ (CodeUri) with src/requirements.txt; Lambda's python3.13 runtime adds boto3 and
botocore. A module that a handler reaches and that imports a dev-only package (moto, pytest, ...) or the
emulator / operator CLI fails in Lambda on the first event that takes that path, while every in-process
test passes because the dev venv has it all. This walks every `import` and `from ... import` statement,
at module level and inside functions (a lazy import still runs in Lambda), from each handler through
every keyguard module it reaches. The fresh-environment test (test_fresh_environment.py) then proves it
by running the handlers where only the package exists.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pytest

from tests.organization.cfn import REPO, load

pytestmark = pytest.mark.packaging

SRC = REPO / "src"
DEV_ONLY = ("moto", "pytest", "hypothesis", "rich", "yaml", "jsonschema", "shtab")
NOT_SHIPPED_TO_FUNCTIONS = ("keyguard.local", "keyguard.operator", "keyguard.cli")
# The scheduled audit is the operator's `keyguard audit` run on a schedule (one implementation, two ways to
# start it), so the audit function alone ships keyguard.operator's audit modules; they are held to the same
# rule as every other module (no dev-only or unpackaged import), which the walk checks.
ALLOWED = {"AuditFunction": ("keyguard.operator",)}
RUNTIME = ("boto3", "botocore")  # what Lambda's python3.13 runtime provides besides the standard library


def packaged_distributions() -> set[str]:
    """The distributions a function has in Lambda: src/requirements.txt, the runtime's boto3/botocore,
    and everything they require (as installed in this venv)."""
    wanted = list(RUNTIME)
    for line in (SRC / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            wanted.append(re.split(r"[<>=!~\[; ]", line)[0])
    seen: set[str] = set()
    while wanted:
        name = wanted.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            if "extra ==" not in req:
                wanted.append(re.split(r"[<>=!~\[; (]", req)[0])
    return seen


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def unpackaged(top: str, packaged: set[str]) -> bool:
    """True if a top-level module is neither standard library nor provided by a packaged distribution."""
    if top in sys.stdlib_module_names or top == "__future__":
        return False
    dists = _distributions().get(top, [])
    return not any(d.lower().replace("_", "-") in packaged for d in dists)


def template_handlers() -> dict[str, str]:
    """Function logical id -> handler module, for every AWS::Serverless::Function in template.yaml."""
    out = {}
    for lid, res in load("template.yaml")["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            out[lid] = res["Properties"]["Handler"].rsplit(".", 1)[0]
    return out


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(module name, line) for every import statement anywhere in the file; `from keyguard.a import b`
    names `keyguard.a.b` too, since b may be a submodule."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.append((base, node.lineno))
            if base.split(".")[0] in ("keyguard", "handlers"):
                out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return out


def reachable(start: str) -> dict[str, list[str]]:
    """Every module the start module reaches (keyguard and handlers modules followed), each with the
    import chain that reaches it."""
    chains: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if path is None:
            continue
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        found = [(p, 0) for p in parents] + _imports(path, module)
        for name, line in found:
            top = name.split(".")[0]
            if name in chains:
                continue
            if top in ("keyguard", "handlers"):
                if _module_file(name) is None:
                    continue  # `from keyguard.x import some_function`: not a module
                chains[name] = [*chains[module], f"{name} (line {line} of {module})"]
                todo.append(name)
            else:
                chains[name] = [*chains[module], f"{name} (line {line} of {module})"]
    return chains


def forbidden(
    chains: dict[str, list[str]], allowed: tuple[str, ...] = (), packaged: set[str] | None = None
) -> list[str]:
    packaged = packaged_distributions() if packaged is None else packaged
    bad = []
    for name, chain in sorted(chains.items()):
        top = name.split(".")[0]
        inside = [m for m in NOT_SHIPPED_TO_FUNCTIONS if m not in allowed]
        if top in ("keyguard", "handlers"):
            if any(name == m or name.startswith(m + ".") for m in inside):
                bad.append(" -> ".join(chain))
        elif top in DEV_ONLY or unpackaged(top, packaged):
            bad.append(" -> ".join(chain))
    return bad


def test_the_template_names_every_handler_module() -> None:
    handlers = template_handlers()
    assert len(handlers) >= 9
    for lid, module in handlers.items():
        assert _module_file(module) is not None, f"{lid}: {module} is not in src/"


PACKAGED = packaged_distributions()


@pytest.mark.parametrize(("function", "module"), sorted(template_handlers().items()))
def test_no_handler_reaches_a_dev_only_package_or_the_emulator(function: str, module: str) -> None:
    chains = reachable(module)
    assert "keyguard.app" in chains or "keyguard.tamper.app" in chains or len(chains) > 5  # the walk ran
    bad = forbidden(chains, ALLOWED.get(function, ()), PACKAGED)
    assert not bad, f"{function} would fail in Lambda; it reaches:\n" + "\n".join(bad)


def test_the_walk_sees_lazy_imports_inside_functions(tmp_path: Path) -> None:
    """The check itself: an import inside a function body is found (a lazy import still runs in Lambda)."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from keyguard.local.patterns import matches\n    import moto\n")
    names = {n for n, _ in _imports(path, "keyguard.m")}
    assert {"keyguard.local.patterns", "moto"} <= names
    assert forbidden({"moto": ["x", "moto"]}) == ["x -> moto"]
    assert forbidden({"keyguard.local.emulator": ["h", "keyguard.local.emulator"]}) == ["h -> keyguard.local.emulator"]


def test_only_what_the_package_holds_counts_as_available() -> None:
    """rich is installed here (the operator CLI) but not packaged: a function importing it fails in Lambda."""
    packaged = packaged_distributions()
    assert {"aws-lambda-powertools", "boto3", "botocore", "jmespath"} <= packaged
    assert not {"moto", "rich", "pyyaml", "pytest"} & packaged
    assert unpackaged("rich", packaged) and unpackaged("yaml", packaged)
    assert not unpackaged("aws_lambda_powertools", packaged) and not unpackaged("json", packaged)
