"""A small evaluator of GitHub Actions expressions, for job and step `if:` conditions.

The grader plays a push to main through the candidate's workflow, so it must decide
which jobs and steps GitHub would run: `github.event_name == 'push'`, `success()`,
`always()`, `needs.train.result == 'success'`, `contains(...)`, `!`, `&&`, `||`.
Anything it cannot parse is reported, never guessed.
"""

from __future__ import annotations

import re
from typing import Any, Callable

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|&&|\|\||[!<>(),\[\]])"
    r"|(?P<name>[A-Za-z_][\w-]*(?:\.[A-Za-z_*][\w-]*)*))"
)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class ExpressionError(ValueError):
    pass


def strip_wrapper(text: str) -> str:
    text = str(text).strip()
    match = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    return match.group(1).strip() if match else text


def uses_status_function(text: str) -> bool:
    return bool(re.search(r"\b(" + "|".join(STATUS_FUNCTIONS) + r")\s*\(", strip_wrapper(text)))


def evaluate_condition(text: Any, context: dict[str, Any], status: dict[str, bool]) -> bool:
    """Whether an `if:` holds. Without a status function, GitHub implies `success() && (...)`."""
    if isinstance(text, bool):
        return text and status["success"]
    source = strip_wrapper(text)
    value = _truthy(evaluate(source, context, status))
    return value if uses_status_function(source) else (value and status["success"])


def evaluate(source: str, context: dict[str, Any], status: dict[str, bool]) -> Any:
    tokens = _tokenize(source)
    parser = _Parser(tokens, lambda name: _lookup(context, name), status)
    value = parser.expression()
    if parser.position != len(tokens):
        raise ExpressionError(f"cannot read {source!r}")
    return value


def substitute(text: str, context: dict[str, Any]) -> str:
    """Replace every ${{ ... }} in a string (run scripts, env values) by its value."""
    status = {"success": True, "failure": False, "always": True, "cancelled": False}

    def one(match: re.Match) -> str:
        try:
            value = evaluate(match.group(1).strip(), context, status)
        except ExpressionError:
            return ""
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(text), flags=re.S)


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    source = source.rstrip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot read {source!r} at {source[position:position + 12]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _lookup(context: dict[str, Any], name: str) -> Any:
    value: Any = context
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        lowered = {str(k).lower(): v for k, v in value.items()}
        value = lowered.get(part.lower())
    return value


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


def _compare(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    return left == right


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], lookup: Callable[[str], Any], status: dict[str, bool]):
        self.tokens, self.position, self.lookup, self.status = tokens, 0, lookup, status

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens) or (expected and self.tokens[self.position][1] != expected):
            raise ExpressionError(f"expected {expected or 'more'}")
        self.position += 1
        return self.tokens[self.position - 1]

    def expression(self) -> Any:
        left = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            left = left if _truthy(left) else right
        return left

    def conjunction(self) -> Any:
        left = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            left = right if _truthy(left) else left
        return left

    def comparison(self) -> Any:
        left = self.unary()
        while self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.unary()
            if op in ("==", "!="):
                left = _compare(left, right) == (op == "==")
            else:
                try:
                    left = {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
                except TypeError:
                    left = False
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.expression()
            self.take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "name":
            if self.peek() == "(":
                return self.call(text)
            return {"true": True, "false": False, "null": None}.get(text, None) if text in (
                "true", "false", "null") else self.lookup(text)
        raise ExpressionError(f"unexpected {text!r}")

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.expression())
            if self.peek() == ",":
                self.take()
        self.take(")")
        fn = name.lower()
        if fn in STATUS_FUNCTIONS:
            return self.status[fn]
        text = [("" if a is None else str(a)).lower() for a in args]
        if fn == "contains" and len(args) == 2:
            return any(_compare(x, args[1]) for x in args[0]) if isinstance(args[0], list) else text[1] in text[0]
        if fn == "startswith" and len(args) == 2:
            return text[0].startswith(text[1])
        if fn == "endswith" and len(args) == 2:
            return text[0].endswith(text[1])
        if fn == "format" and args:
            return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m.group(1)) + 1]), str(args[0]))
        raise ExpressionError(f"the function {name}() is not supported by the grader")
