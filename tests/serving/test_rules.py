"""Routing rules: a reference evaluator in this file is the oracle for the compiled matcher."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import PolicyError
from mlgate.serving.rules import compile_rule

# --- a reference implementation over an explicit syntax tree -------------------------------


@dataclass(frozen=True)
class Cmp:
    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class In:
    name: str
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    parts: tuple[Node, ...]


Node = Cmp | In | Not | BoolOp
ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "bool"
    if type(value) in (int, float):
        return "number"
    if type(value) is str:
        return "string"
    return "other"


def same(a: Any, b: Any) -> bool:
    return kind(a) == kind(b) and a == b


def evaluate(node: Node, attrs: Mapping[str, Any]) -> bool:
    if isinstance(node, BoolOp):
        results = [evaluate(part, attrs) for part in node.parts]
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not evaluate(node.inner, attrs)
    if node.name not in attrs:
        return False
    value = attrs[node.name]
    if isinstance(node, In):
        return any(same(value, v) for v in node.values) != node.negate
    if node.op == "==":
        return same(value, node.value)
    if node.op == "!=":
        return not same(value, node.value)
    if kind(value) != kind(node.value) or kind(value) not in ("number", "string"):
        return False
    return ORDER[node.op](value, node.value)


def render_value(value: Any, quote: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    return quote + escaped.replace(quote, "\\" + quote) + quote


PRECEDENCE = {"or": 1, "and": 2}


def render(node: Node, draw_paren: Callable[[], bool], quote: str = '"') -> str:
    """Text for ``node`` with only the parentheses precedence needs, plus random extras."""

    def wrap(child: Node, needed: bool) -> str:
        text = render(child, draw_paren, quote)
        return f"({text})" if needed or draw_paren() else text

    if isinstance(node, BoolOp):
        level = PRECEDENCE[node.op]
        return f" {node.op} ".join(
            wrap(p, isinstance(p, BoolOp) and PRECEDENCE[p.op] < level) for p in node.parts
        )
    if isinstance(node, Not):
        return "not " + wrap(node.inner, isinstance(node.inner, BoolOp))
    if isinstance(node, In):
        values = ", ".join(render_value(v, quote) for v in node.values)
        return f"{node.name} {'not in' if node.negate else 'in'} [{values}]"
    return f"{node.name} {node.op} {render_value(node.value, quote)}"


NAMES = ["a", "b", "tier", "x-user", "geo.country"]
names = st.sampled_from(NAMES)
literals = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["", "gold", "DE", 'it\'s "q"', "a\\b\n"]),
)
leaves = st.one_of(
    st.builds(Cmp, names, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), literals),
    st.builds(In, names, st.lists(literals, min_size=1, max_size=4).map(tuple), st.booleans()),
)
trees: st.SearchStrategy[Node] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(
            BoolOp,
            st.sampled_from(["and", "or"]),
            st.lists(inner, min_size=2, max_size=3).map(tuple),
        ),
    ),
    max_leaves=8,
)
attribute_values = st.one_of(literals, st.lists(st.integers(), max_size=2), st.just({"k": 1}))
attribute_dicts = st.dictionaries(names, attribute_values, max_size=len(NAMES))


@settings(max_examples=400)
@given(trees, st.lists(attribute_dicts, min_size=1, max_size=5), st.data())
def test_compiled_rules_agree_with_the_reference(
    tree: Node, attributes: list[dict[str, Any]], data: st.DataObject
) -> None:
    quote = data.draw(st.sampled_from(['"', "'"]))
    text = render(tree, lambda: data.draw(st.booleans()), quote)
    rule = compile_rule(text)
    for attrs in attributes:
        assert rule.matches(attrs) == evaluate(tree, attrs), (text, attrs)


@given(st.text(max_size=40))
def test_any_text_compiles_or_fails_with_a_policy_error(text: str) -> None:
    try:
        rule = compile_rule(text)
    except PolicyError as exc:
        assert "at column" in str(exc)
    else:
        rule.matches({"a": 1})


def test_the_documented_example() -> None:
    rule = compile_rule('country in ["DE", "FR"] and tier == "gold"')
    assert rule.attributes == {"country", "tier"}
    assert rule.matches({"country": "FR", "tier": "gold"})
    assert not rule.matches({"country": "US", "tier": "gold"})
    assert not rule.matches({"country": "DE"})


@pytest.mark.parametrize(
    ("text", "attrs", "expected"),
    [
        ("x != 1", {}, False),  # a missing attribute makes every comparison False
        ("x not in [1]", {}, False),
        ("not x == 1", {}, True),  # ... which 'not' then negates
        ("x < 3", {"x": "2"}, False),  # string against number: False, not an exception
        ("x > 'a'", {"x": 5}, False),
        ("x < null", {"x": None}, False),
        ("x == 1", {"x": 1.0}, True),
        ("x == 1", {"x": True}, False),  # booleans are not numbers
        ("x in [1, 2]", {"x": True}, False),
        ("x in [true]", {"x": 1}, False),
        ("x != 1", {"x": "1"}, True),
        ("x == null", {"x": None}, True),
        ("x != null", {"x": "set"}, True),
        ("x == 'a'", {"x": ["a"]}, False),
        ("x in ['a']", {"x": {"a": 1}}, False),
        ("x >= -1.5e0", {"x": -1}, True),
        ("a == 1 or b == 2 and c == 3", {"a": 1}, True),  # 'and' binds tighter
        ("(a == 1 or b == 2) and c == 3", {"a": 1}, False),
        ("not not a == 1", {"a": 1}, True),
        ("x-tier == 'gold'", {"x-tier": "gold"}, True),
        (r"s == 'it\'s'", {"s": "it's"}, True),
    ],
)
def test_semantics(text: str, attrs: dict[str, Any], expected: bool) -> None:
    assert compile_rule(text).matches(attrs) is expected


def test_nan_is_equal_to_nothing() -> None:
    assert not compile_rule("x == 1").matches({"x": math.nan})
    assert compile_rule("x != 1").matches({"x": math.nan})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("country in [DE", "rule 'country in [DE': expected a value at column 13"),
        ("x ==", "expected a value at column 5; found the end of the rule"),
        ("(a == 1", "expected ')' at column 8"),
        ("a == 1 b", "expected 'and', 'or' or the end of the rule at column 8"),
        ("a = 1", "unexpected character '=' at column 3; compare with '=='"),
        ("'x' == a", "expected an attribute name, 'not' or '(' at column 1"),
        ("a == 'abc", "string is never closed; add the closing ' at column 6"),
        ("a in []", "expected a value at column 7"),
        ("a in [1,]", "expected a value at column 9"),
        ("in == 1", "expected an attribute name"),
        ("a == 1e999", "out of range at column 6"),
        ("a == 'b\\q'", "unknown escape"),
        ("a not == 1", "expected 'in' at column 7"),
        ("a", "expected a comparison"),
        ("", "at column 1"),
        ("__import__('os').system('x')", "unexpected character '.' at column 17"),
    ],
)
def test_errors_name_the_column(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match="at column") as caught:
        compile_rule(text)
    assert message in str(caught.value)


def test_unquoted_strings_get_a_hint() -> None:
    with pytest.raises(PolicyError, match='write strings in quotes: "DE"'):
        compile_rule("country == DE")


def test_deep_nesting_and_long_rules_are_refused() -> None:
    with pytest.raises(PolicyError, match="nests deeper"):
        compile_rule("(" * 100 + "a == 1" + ")" * 100)
    with pytest.raises(PolicyError, match="nests deeper"):
        compile_rule("not " * 100 + "a == 1")
    with pytest.raises(PolicyError, match="characters long"):
        compile_rule("a == 1 or " * 1000 + "a == 2")
