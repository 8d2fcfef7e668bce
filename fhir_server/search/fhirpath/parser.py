"""Parser for the FHIRPath subset that SearchParameter expressions use.

Produces a small AST (frozen dataclasses). Operator precedence follows FHIRPath N1 §"Operator
precedence" (http://hl7.org/fhirpath/N1/#operator-precedence); operators outside the subset
(arithmetic, comparison of ordered values, ``in``/``contains``) are parsed but the compiler rejects
them, which sends the expression to the full engine (``fallback.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ParseError(ValueError):
    """The expression is not in the supported grammar."""


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Member:
    target: Node
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    target: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Index:
    target: Node
    index: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class TypeOp:
    op: str  # "is" | "as"
    target: Node
    type_name: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | bool | int | float


@dataclass(frozen=True, slots=True)
class Env:
    name: str  # "resource", "context", ...


Node = Ident | Member | Call | Index | Binary | TypeOp | Literal | Env

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)|(?P<env>%[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<bt>`[^`]*`)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|!~|[-+*/&|=~<>().,\[\]]))"
)
# Binary operators and their binding power (higher binds tighter).
_BINARY = {
    "implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4,
    "=": 5, "!=": 5, "~": 5, "!~": 5, "<": 6, ">": 6, "<=": 6, ">=": 6,
    "|": 7, "is": 8, "as": 8, "+": 9, "-": 9, "&": 9, "*": 10, "/": 10,
}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ParseError(f"unexpected character at {pos} in {text!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ParseError(f"expected {value or 'a token'}, got {tok}")
        self.pos += 1
        return tok

    def expression(self, min_power: int = 0) -> Node:
        left = self.postfix(self.primary())
        while (tok := self.peek()) is not None and tok[0] in ("op", "id") and tok[1] in _BINARY:
            power = _BINARY[tok[1]]
            if power <= min_power:
                break
            self.take()
            if tok[1] in ("is", "as"):
                left = TypeOp(tok[1], left, self.type_name())
            else:
                left = Binary(tok[1], left, self.expression(power))
        return left

    def type_name(self) -> str:
        name = self.take()[1].strip("`")
        while (tok := self.peek()) is not None and tok[1] == ".":
            self.take()
            name = self.take()[1]  # "System.String" / "FHIR.Patient" -> the last part
        return name

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "str":
            return Literal(bytes(value[1:-1], "utf-8").decode("unicode_escape"))
        if kind == "num":
            return Literal(float(value) if "." in value else int(value))
        if kind == "env":
            return Env(value[1:])
        if value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind in ("id", "bt"):
            name = value.strip("`")
            if name in ("true", "false"):
                return Literal(name == "true")
            if (tok := self.peek()) is not None and tok[1] == "(":
                return Call(None, name, self.arguments())
            return Ident(name)
        raise ParseError(f"unexpected token {value!r}")

    def arguments(self) -> tuple[Node, ...]:
        self.take("(")
        args: list[Node] = []
        if (tok := self.peek()) is not None and tok[1] == ")":
            self.take()
            return ()
        while True:
            if (tok := self.peek()) is not None and tok[0] == "id" and self._is_bare_type_arg():
                args.append(Ident(self.type_name()))
            else:
                args.append(self.expression())
            if self.take()[1] == ")":
                return tuple(args)

    def _is_bare_type_arg(self) -> bool:
        nxt = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        return nxt is not None and nxt[1] == ")"

    def postfix(self, node: Node) -> Node:
        while (tok := self.peek()) is not None and tok[1] in (".", "["):
            self.take()
            if tok[1] == "[":
                index = self.take()
                self.take("]")
                if index[0] != "num":
                    raise ParseError("only integer indexers are supported")
                node = Index(node, int(index[1]))
                continue
            name = self.take()[1].strip("`")
            if (nxt := self.peek()) is not None and nxt[1] == "(":
                node = Call(node, name, self.arguments())
            else:
                node = Member(node, name)
        return node


def parse(text: str) -> Node:
    """Parse one FHIRPath expression of the search subset into an AST."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek() is not None:
        raise ParseError(f"trailing input {parser.peek()} in {text!r}")
    return node
