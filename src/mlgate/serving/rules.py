"""Routing rules: a tiny declarative matcher over request attributes.

An endpoint's ``rules`` policy sends a request to a version when an expression
such as ``country in ["DE", "FR"] and tier == "gold"`` holds for it. The text
comes from users, so it is parsed by a hand-written tokenizer and a
recursive-descent parser, never by ``eval`` or :mod:`ast`: nothing a user writes
can execute code or reach Python objects, the grammar is exactly what is
documented below, and every error names the column where the text went wrong.

Grammar::

    expr  := or
    or    := and ('or' and)*
    and   := not ('and' not)*
    not   := 'not' not | cmp
    cmp   := IDENT op value
           | IDENT 'in' list | IDENT 'not' 'in' list
           | '(' expr ')'
    list  := '[' value (',' value)* ']'
    op    := '==' | '!=' | '<' | '<=' | '>' | '>='
    value := "string" | 'string' | number | true | false | null

Identifiers are letters, digits, ``_``, ``.`` and ``-`` (not first), so header
names such as ``x-tier`` work. Keywords are lower case and reserved.

Semantics, chosen so that a rule never raises while routing:

* A comparison on an attribute the request does not carry is False, whatever
  its operator (``x != 1`` and ``x not in [...]`` included). ``not`` then
  negates that False, so ``not x == 1`` holds for a request without ``x``.
* ``==`` holds when both sides are of the same kind (string, number, boolean,
  null) and equal; numbers compare by value (``1 == 1.0``) but booleans are not
  numbers. ``!=`` is its negation for a present attribute. ``in`` is ``==``
  against any listed value.
* ``<``, ``<=``, ``>``, ``>=`` hold only between two numbers or two strings;
  any other pairing (a string against a number, null, booleans) is False.

Columns in errors count from 1.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from mlgate.errors import PolicyError

__all__ = ["Rule", "compile_rule"]

Predicate = Callable[[Mapping[str, Any]], bool]

_MAX_LENGTH: Final = 4096
_MAX_DEPTH: Final = 64
_MISSING: Final = object()
_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_LITERALS: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}
_ESCAPES: Final = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<punct>[()\[\],])
    | (?P<quote>["'])
    """,
    re.VERBOSE,
)
_ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "keyword", "number", "string", "op", "punct", "end"
    text: str
    value: Any
    column: int


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule: call :meth:`matches` on the hot path, nothing is parsed there."""

    text: str
    attributes: frozenset[str]
    # Two rules are equal when their text is; closures never compare equal.
    _predicate: Predicate = field(compare=False, repr=False)

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        return self._predicate(attributes)


def compile_rule(text: str) -> Rule:
    """Parse ``text`` into a :class:`Rule`, or raise :class:`PolicyError` naming the column."""
    if len(text) > _MAX_LENGTH:
        raise PolicyError(f"rule is {len(text)} characters long; keep it under {_MAX_LENGTH}")
    parser = _Parser(text, _tokenize(text))
    predicate = parser.parse()
    return Rule(text, frozenset(parser.names), predicate)


def _fail(text: str, column: int, message: str, detail: str = "") -> PolicyError:
    return PolicyError(f"rule {text!r}: {message} at column {column}{detail}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            hint = "; compare with '=='" if text[pos] == "=" else ""
            raise _fail(text, pos + 1, f"unexpected character {text[pos]!r}", hint)
        kind = match.lastgroup or ""
        lexeme = match.group()
        column = pos + 1
        pos = match.end()
        if kind == "space":
            continue
        if kind == "quote":
            value, pos = _read_string(text, pos, lexeme, column)
            tokens.append(_Token("string", text[column - 1 : pos], value, column))
        elif kind == "number":
            number = float(lexeme) if any(c in lexeme for c in ".eE") else int(lexeme)
            if isinstance(number, float) and not math.isfinite(number):
                raise _fail(text, column, f"number {lexeme} is out of range")
            tokens.append(_Token("number", lexeme, number, column))
        elif kind == "ident" and lexeme in _KEYWORDS:
            tokens.append(_Token("keyword", lexeme, _LITERALS.get(lexeme), column))
        else:
            tokens.append(_Token(kind, lexeme, lexeme, column))
    tokens.append(_Token("end", "end of rule", None, len(text) + 1))
    return tokens


def _read_string(text: str, pos: int, quote: str, column: int) -> tuple[str, int]:
    chars: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return "".join(chars), pos + 1
        if char == "\\":
            escaped = text[pos + 1 : pos + 2]
            if escaped not in _ESCAPES:
                raise _fail(text, pos + 1, "unknown escape; use \\\\, \\n, \\t or an escaped quote")
            chars.append(_ESCAPES[escaped])
            pos += 2
            continue
        chars.append(char)
        pos += 1
    raise _fail(text, column, f"string is never closed; add the closing {quote}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, numbers.Real):
        return "number"
    return "other"


def _equals(value: Any, literal: Any, literal_kind: str) -> bool:
    return _kind(value) == literal_kind and bool(value == literal)


class _Parser:
    """Recursive descent over the token list, building closures as it goes."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.names: set[str] = set()

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, kind: str, text: str) -> bool:
        return self.current.kind == kind and self.current.text == text

    def expect(self, kind: str, text: str) -> None:
        if not self.at(kind, text):
            self.error(f"expected {text!r}")
        self.advance()

    def error(self, expected: str) -> NoReturn:
        token = self.current
        detail = "; found the end of the rule" if token.kind == "end" else f"; found {token.text!r}"
        if token.kind == "ident" and expected == "expected a value":
            detail += f', write strings in quotes: "{token.text}"'
        raise _fail(self.text, token.column, expected, detail)

    def parse(self) -> Predicate:
        predicate = self.parse_or()
        if self.current.kind != "end":
            self.error("expected 'and', 'or' or the end of the rule")
        return predicate

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.at("keyword", "or"):
            self.advance()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:  # the common case, without a generator per call
            left, right = parts
            return lambda attrs: left(attrs) or right(attrs)
        return lambda attrs: any(part(attrs) for part in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self.at("keyword", "and"):
            self.advance()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            left, right = parts
            return lambda attrs: left(attrs) and right(attrs)
        return lambda attrs: all(part(attrs) for part in parts)

    def parse_not(self) -> Predicate:
        if self.at("keyword", "not"):
            self.advance()
            inner = self.nested(self.parse_not)
            return lambda attrs: not inner(attrs)
        return self.parse_cmp()

    def nested(self, parse: Callable[[], Predicate]) -> Predicate:
        # Bounded depth keeps a hostile rule from exhausting the Python stack.
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.error(f"rule nests deeper than {_MAX_DEPTH} levels; simplify it")
        predicate = parse()
        self.depth -= 1
        return predicate

    def parse_cmp(self) -> Predicate:
        if self.at("punct", "("):
            self.advance()
            inner = self.nested(self.parse_or)
            self.expect("punct", ")")
            return inner
        if self.current.kind != "ident":
            self.error("expected an attribute name, 'not' or '('")
        name = self.advance().text
        self.names.add(name)
        if self.at("keyword", "in"):
            self.advance()
            return _membership(name, self.parse_list(), negate=False)
        if self.at("keyword", "not"):
            self.advance()
            self.expect("keyword", "in")
            return _membership(name, self.parse_list(), negate=True)
        if self.current.kind != "op":
            self.error("expected a comparison (==, !=, <, <=, >, >=), 'in' or 'not in'")
        op = self.advance().text
        return _comparison(name, op, self.parse_value())

    def parse_list(self) -> list[Any]:
        self.expect("punct", "[")
        values = [self.parse_value()]
        while self.at("punct", ","):
            self.advance()
            values.append(self.parse_value())
        self.expect("punct", "]")
        return values

    def parse_value(self) -> Any:
        token = self.current
        if token.kind in ("string", "number") or (
            token.kind == "keyword" and token.text in _LITERALS
        ):
            self.advance()
            return token.value
        self.error("expected a value")


def _comparison(name: str, op: str, literal: Any) -> Predicate:
    literal_kind = _kind(literal)
    if op == "==":
        return lambda attrs: _equals(attrs.get(name, _MISSING), literal, literal_kind)
    if op == "!=":

        def differs(attrs: Mapping[str, Any]) -> bool:
            value = attrs.get(name, _MISSING)
            return value is not _MISSING and not _equals(value, literal, literal_kind)

        return differs
    compare = _ORDERING[op]
    if literal_kind not in ("number", "string"):
        return lambda attrs: False

    def ordered(attrs: Mapping[str, Any]) -> bool:
        value = attrs.get(name, _MISSING)
        return _kind(value) == literal_kind and bool(compare(value, literal))

    return ordered


def _membership(name: str, literals: list[Any], *, negate: bool) -> Predicate:
    # Keyed by kind so that True and 1, equal in Python sets, stay apart.
    members = frozenset((_kind(literal), literal) for literal in literals)

    def contains(attrs: Mapping[str, Any]) -> bool:
        value = attrs.get(name, _MISSING)
        if value is _MISSING:
            return False
        kind = _kind(value)
        found = kind != "other" and (kind, value) in members
        return found != negate

    return contains
