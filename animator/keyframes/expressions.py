"""Safe arithmetic expressions for schedules and prompts.

Keyframe and settings files are shared publicly, so an expression must never run code. Expressions are parsed with
:mod:`ast`, checked node by node against a whitelist *before anything is evaluated*, and then evaluated by a small
tree walker over numpy arrays (one call covers every frame of a schedule segment). There is no ``eval``.

Work is bounded: an expression is at most :data:`MAX_EXPRESSION_CHARS` characters, :data:`MAX_NODES` AST nodes and
:data:`MAX_DEPTH` levels deep; numeric constants become floats (so ``9**9**9`` cannot build a huge int) and a
constant exponent larger than :data:`MAX_EXPONENT` is refused.

Example:
    >>> float(safe_eval("1 + 0.5*sin(t/8)", {"t": 0.0}))
    1.0
    >>> safe_eval("max(t, 2)", {"t": np.arange(4.0)})
    array([2., 2., 2., 3.])
"""

from __future__ import annotations

import ast
import difflib
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from animator.errors import AnimatorError

MAX_EXPRESSION_CHARS = 4096  # one expression; a whole schedule string may be much longer
MAX_NODES = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 10_000.0  # |exponent| of a constant power; cos(x)**220 appears in real Deforum files


def _nary(reduce: Callable) -> Callable:
    def call(*args):
        if len(args) == 1:
            return args[0]
        return reduce(args)

    return call


def _round(x, ndigits=0):
    return np.round(x, int(np.asarray(ndigits).flat[0]))


# name -> (function, min args, max args)
FUNCTIONS: dict[str, tuple[Callable, int, int]] = {
    "sin": (np.sin, 1, 1),
    "cos": (np.cos, 1, 1),
    "tan": (np.tan, 1, 1),
    "asin": (np.arcsin, 1, 1),
    "acos": (np.arccos, 1, 1),
    "atan": (np.arctan, 1, 1),
    "arcsin": (np.arcsin, 1, 1),
    "arccos": (np.arccos, 1, 1),
    "arctan": (np.arctan, 1, 1),
    "atan2": (np.arctan2, 2, 2),
    "arctan2": (np.arctan2, 2, 2),
    "sinh": (np.sinh, 1, 1),
    "cosh": (np.cosh, 1, 1),
    "tanh": (np.tanh, 1, 1),
    "sqrt": (np.sqrt, 1, 1),
    "exp": (np.exp, 1, 1),
    "log": (np.log, 1, 1),
    "log2": (np.log2, 1, 1),
    "log10": (np.log10, 1, 1),
    "abs": (np.abs, 1, 1),
    "min": (_nary(lambda a: np.minimum.reduce(np.broadcast_arrays(*a))), 1, 64),
    "max": (_nary(lambda a: np.maximum.reduce(np.broadcast_arrays(*a))), 1, 64),
    "floor": (np.floor, 1, 1),
    "ceil": (np.ceil, 1, 1),
    "round": (_round, 1, 2),
    "clip": (np.clip, 3, 3),
    "where": (np.where, 3, 3),
    "sign": (np.sign, 1, 1),
    "pow": (np.power, 2, 2),
    "fmod": (np.fmod, 2, 2),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_UNARY = {ast.UAdd: np.positive, ast.USub: np.negative, ast.Not: np.logical_not}
_COMPARE = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_ALLOWED = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Name, ast.Constant,
    ast.Load, ast.And, ast.Or, *_BINARY, *_UNARY, *_COMPARE,
)  # fmt: skip
_DESCRIBE = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.NamedExpr: "assignments (:=)",
    ast.JoinedStr: "strings",
    ast.Starred: "star arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.Slice: "slices",
}


@dataclass(frozen=True)
class Expression:
    """A checked expression: parsed once, evaluated many times (vectorised over frames).

    Attributes:
        text: the source text as the user wrote it.
        names: the variable names it reads (functions and ``pi``/``e`` excluded).
    """

    text: str
    tree: ast.Expression = field(compare=False, repr=False)  # equal text means an equal tree
    names: frozenset[str] = field(compare=False)

    def __call__(self, variables: Mapping[str, float | np.ndarray]) -> float | np.ndarray:
        return evaluate_expression(self, variables)

    def __str__(self) -> str:
        return self.text


def _fail(text: str, message: str, node: ast.AST | None = None, hint: str | None = None) -> AnimatorError:
    where = ""
    if node is not None and hasattr(node, "col_offset"):
        try:
            part = ast.get_source_segment(text, node) or ""
        except Exception:  # pragma: no cover - positions can be off for odd input
            part = ""
        if part:
            where = f" in `{part[:80]}`"
    shown = text if len(text) <= 120 else text[:117] + "..."
    return AnimatorError(f"{message}{where} (expression `{shown}`)", hint=hint)


def compile_expression(text: str, allowed_names: frozenset[str] | set[str] | None = None) -> Expression:
    """Parse and check ``text`` without evaluating anything.

    Args:
        text: the expression, e.g. ``"1 + 0.5*sin(t/8)"``.
        allowed_names: variable names the expression may read; ``None`` allows any plain (non-dunder) name and
            leaves the check to evaluation time.

    Raises:
        AnimatorError: for syntax errors, anything outside the whitelist, or an expression over the size limits.
    """
    if not isinstance(text, str):
        raise AnimatorError(f"an expression must be a string, got {type(text).__name__}")
    source = check_expression_length(text).strip()
    if not source:
        raise AnimatorError("empty expression", hint="write a number or an expression such as 0.5*sin(t/8)")
    if "\n" in source or "\r" in source:
        source = " ".join(source.split())  # a value wrapped across lines in a settings file
    try:
        with warnings.catch_warnings():  # "1if" parses with a SyntaxWarning; users get our message instead
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise AnimatorError(
            f"cannot parse expression `{source[:120]}`: {getattr(exc, 'msg', exc)}",
            hint="expressions use numbers, t, max_f, fps, s, + - * / % // **, and functions like sin(), max(a, b)",
        ) from None
    except (RecursionError, MemoryError):
        raise AnimatorError(f"expression nested too deeply (limit {MAX_DEPTH} levels)") from None
    names = _check(tree, source, allowed_names)
    return Expression(text=source, tree=tree, names=frozenset(names))


def check_expression_length(text: str) -> str:
    """``text`` when it is at most :data:`MAX_EXPRESSION_CHARS` long, counted as written (before quotes, spaces or
    redundant parentheses are stripped, so that stripping is bounded too); :class:`AnimatorError` otherwise."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise AnimatorError(
            f"expression is {len(text):,} characters long; the limit is {MAX_EXPRESSION_CHARS:,}",
            hint="split it across keyframes or simplify it",
        )
    return text


def _check(tree: ast.Expression, text: str, allowed_names) -> set[str]:
    names: set[str] = set()
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _fail(text, f"expression too large (more than {MAX_NODES} parts)")
        if depth > MAX_DEPTH:
            raise _fail(text, f"expression nested too deeply (limit {MAX_DEPTH} levels)")
        if not isinstance(node, _ALLOWED):
            what = _DESCRIBE.get(type(node), type(node).__name__)
            raise _fail(text, f"not allowed: {what}", node, hint="only arithmetic, comparisons and math functions")
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)):  # bool is an int: True/False are 1/0
                kind = "strings" if isinstance(node.value, (str, bytes)) else f"{type(node.value).__name__} constants"
                raise _fail(text, f"only numbers are allowed, not {kind}", node)
        elif isinstance(node, ast.Name):
            _check_name(node, text, allowed_names)
            if node.id not in CONSTANTS:
                names.add(node.id)
        elif isinstance(node, ast.Call):
            _check_call(node, text)
            # The function name was checked; walk only the arguments.
            stack.extend((arg, depth + 1) for arg in node.args)
            continue
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_exponent(node, text)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return names


def _check_name(node: ast.Name, text: str, allowed_names) -> None:
    name = node.id
    if name.startswith("_"):
        raise _fail(text, f"name `{name}` is not allowed (names starting with _ are refused)", node)
    if name in FUNCTIONS:
        raise _fail(text, f"`{name}` is a function; call it like {name}(x)", node)
    if name in CONSTANTS or allowed_names is None or name in allowed_names:
        return
    raise _unknown_name(name, text, allowed_names, node)


def _unknown_name(name: str, text: str, allowed_names, node=None) -> AnimatorError:
    choices = sorted(set(allowed_names or ()) | set(CONSTANTS))
    close = difflib.get_close_matches(name, choices + sorted(FUNCTIONS), n=1)
    hint = f"did you mean `{close[0]}`? " if close else ""
    hint += "available: " + ", ".join(choices)
    return _fail(text, f"unknown name `{name}`", node, hint=hint)


def _check_call(node: ast.Call, text: str) -> None:
    if not isinstance(node.func, ast.Name):
        what = "attribute access" if isinstance(node.func, ast.Attribute) else "calling anything but a named function"
        raise _fail(text, f"not allowed: {what}", node.func, hint="call math functions by name: sin(x), max(a, b)")
    name = node.func.id
    if name not in FUNCTIONS:
        close = difflib.get_close_matches(name, sorted(FUNCTIONS), n=1)
        hint = (f"did you mean `{close[0]}`? " if close else "") + "functions: " + ", ".join(sorted(FUNCTIONS))
        raise _fail(text, f"function `{name}` is not allowed", node.func, hint=hint)
    if node.keywords:
        raise _fail(text, f"`{name}()` takes no keyword arguments", node)
    _, low, high = FUNCTIONS[name]
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise _fail(text, "star arguments are not allowed", node)
    if not low <= len(node.args) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise _fail(text, f"`{name}()` takes {want} arguments, got {len(node.args)}", node)


def _constant_value(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        inner = _constant_value(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exp = _constant_value(node.left), _constant_value(node.right)
        if base is None or exp is None or abs(exp) > MAX_EXPONENT:
            return None if base is None or exp is None else math.inf
        try:
            return float(base**exp) if not (base < 0 and exp != int(exp)) else None
        except (OverflowError, ZeroDivisionError):
            return math.inf
    return None


def _check_exponent(node: ast.BinOp, text: str) -> None:
    exponent = _constant_value(node.right)
    if exponent is not None and (not math.isfinite(exponent) or abs(exponent) > MAX_EXPONENT):
        raise _fail(
            text,
            f"exponent too large (limit {MAX_EXPONENT:g})",
            node,
            hint="a power like 9**9**9 overflows; keep exponents small",
        )


def evaluate_expression(
    expr: Expression, variables: Mapping[str, float | np.ndarray], *, allow_nan: bool = False
) -> float | np.ndarray:
    """Evaluate a checked :class:`Expression` with ``variables`` (floats or equal-length 1-D arrays).

    Args:
        expr: from :func:`compile_expression`.
        variables: name -> float or 1-D array.
        allow_nan: let undefined results through as NaN (schedules treat them as gaps to interpolate over, as
            Deforum does for e.g. ``cos(x)**0.9`` where ``cos(x) < 0``); infinities are always an error.

    Returns a float when every input is a scalar, else a float64 array broadcast over the inputs.

    Raises:
        AnimatorError: for a name missing from ``variables`` or a result that is infinite (or NaN, unless allowed).
    """
    missing = [n for n in expr.names if n not in variables]
    if missing:
        raise _unknown_name(missing[0], expr.text, set(variables))
    with np.errstate(all="ignore"):  # a where() may compute 1/t at t=0 in the branch it discards
        result = _eval(expr.tree.body, variables)
    result = np.asarray(result, dtype=np.float64)
    invalid = np.isinf(result) if allow_nan else ~np.isfinite(result)
    if np.any(invalid):
        bad = np.flatnonzero(np.atleast_1d(invalid))
        where = ""
        t = variables.get("t")
        if t is not None and np.ndim(t) == 1 and bad.size:
            where = f" at t={np.atleast_1d(t)[bad[0]]:g}"
        raise AnimatorError(
            f"expression `{expr.text[:120]}` gives {np.atleast_1d(result)[bad[0]]}{where}",
            hint="check for division by zero, log of <= 0, sqrt of negatives or overflowing powers",
        )
    return float(result) if result.ndim == 0 else result


def _eval(node: ast.AST, variables):
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        value = variables[node.id]
        return value if isinstance(value, np.ndarray) else float(value)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, variables), _eval(node.right, variables))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, variables))
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, variables) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result
    if isinstance(node, ast.Compare):
        left = _eval(node.left, variables)
        result = True
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, variables)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.IfExp):
        return np.where(_eval(node.test, variables), _eval(node.body, variables), _eval(node.orelse, variables))
    if isinstance(node, ast.Call):
        function = FUNCTIONS[node.func.id][0]
        return function(*[_eval(a, variables) for a in node.args])
    raise AssertionError(f"unchecked node {type(node).__name__}")  # _check refuses everything else


def safe_eval(expression: str, variables: Mapping[str, float | np.ndarray]) -> float | np.ndarray:
    """Check and evaluate an arithmetic expression; never runs code.

    Args:
        expression: e.g. ``"0.5 + 0.5*sin(t/8)"``, ``"where(t < 10, 1, 2)"``.
        variables: name -> float or 1-D array (``t`` as an array evaluates every frame at once).

    Returns:
        A float, or a float64 array shaped like the array variables.

    Raises:
        AnimatorError: naming the offending part, before anything runs.
    """
    if not isinstance(variables, Mapping):
        raise AnimatorError(f"variables must be a dict of name -> number or array, got {type(variables).__name__}")
    return evaluate_expression(compile_expression(expression, frozenset(variables)), variables)
