"""Issue 10 §1 by construction: interactions and operations reach data only through the access session.

The session (fhir_server/security/session.py) is the one enforced path; these checks read the code
itself, so a new interaction or operation that takes the store directly, or makes the session
optional, fails here before any behaviour test could miss it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "fhir_server"
GUARDED = [ROOT / "interactions", ROOT / "operations"]
# The compiled read by id takes the store itself, behind security/read_gate.py: the same decision
# function and audit as the session, with cached verdicts (docs/security.md §7).
ALLOWED_STORE_USE = {("interactions/read.py", "compiled")}


def _modules() -> list[Path]:
    return sorted(p for folder in GUARDED for p in folder.rglob("*.py"))


def _functions(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                owner.setdefault(inner, node.name)
    return owner


def test_no_interaction_or_operation_holds_the_store() -> None:
    offences = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = _functions(tree)
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "store" and \
                    (rel, owner.get(node, "<module>")) not in ALLOWED_STORE_USE:
                offences.append(f"{rel}:{node.lineno} .store")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fhir_server.storage.sqlite"):
                offences.append(f"{rel}:{node.lineno} imports {node.module}")
    assert not offences, "data is reached only through the access session: " + ", ".join(offences)


def _optional(annotation: ast.expr | None) -> bool:
    text = ast.unparse(annotation) if annotation is not None else ""
    return "None" in text or "Optional" in text


def test_the_access_session_is_never_optional() -> None:
    offences = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            defaults = dict(zip([a.arg for a in node.args.args][::-1], node.args.defaults[::-1], strict=False))
            defaults.update({a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                             if d is not None})
            for arg in args:
                if arg.arg not in ("access", "session"):
                    continue
                if _optional(arg.annotation) or arg.arg in defaults:
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({arg.arg})")
    assert not offences, "an interaction cannot run without the access session: " + ", ".join(offences)


def test_the_guard_sees_the_modules() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert {"interactions/executor.py", "interactions/search.py", "operations/dispatch.py"} <= names
