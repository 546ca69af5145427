"""Solution code in a text: the code half of the course's leak policy (:mod:`dnn_course.leak_policy`).

Reads the code cells' solution regions of the nbgrader source notebooks (``solutions/<assignment>/*.ipynb``,
through :mod:`dnn_course.nbgrader_regions`) into :class:`Secrets`, and finds them in the code of any
text (a MyST page, a notebook's cells, a Python module): :func:`code_leaks` returns one
``(kind, notebook, detail)`` per finding.

Every expression of a solution region is *normalised* by :func:`normalise`: parsed with :mod:`ast`,
``self.`` dropped, ``numpy`` spelled ``np``, method reductions written as functions
(``d.sum(axis=0)`` as ``np.sum(d, axis=0)``), operands of ``+`` and ``*`` and arguments of
``np.maximum``/``np.minimum`` sorted, ``a * a`` and ``np.vdot(a, a)`` written with ``** 2``, constants
``0.0`` as ``0``, and every variable renamed in order of appearance (``d_prev``, ``dout`` and ``grad``
all become ``v0``); then unparsed, so whitespace and redundant parentheses vanish too. A text's code
(:func:`code_snippets`: its fenced blocks, code cells and inline code spans; math and MyST roles are
not code) is normalised the same way, and any sub-expression (or augmented assignment,
``W -= lr * dW``) equal to a solution's is a leak. A solution statement's whole right-hand side counts
from :data:`MIN_STATEMENT_SIZE` nodes (``np.maximum(z, 0)`` is 4), any part of it that computes
something from :data:`MIN_PART_SIZE`; an expression the notebooks also show outside their solution
regions (the given code, the visible tests), with the same names, is public and never a leak (a
visible test's wrong ``d_prev * z * (1 - z)`` does not make ``d_prev * out * (1 - out)`` public, but
is itself never a leak). A solution line that does not parse alone (a statement's first line) is
compared as text (:func:`normalise_text`): the secret lines of the code cells' solution regions
(:mod:`dnn_course.secret_lines`, the policy every line check shares) are looked for in the text's code.
"""

from __future__ import annotations

import ast
import builtins
import copy
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from dnn_course import nbgrader_regions, secret_lines
from dnn_course.nbgrader_regions import SOLUTION

__all__ = ["normalise", "normalise_text", "fields_of", "Secrets", "solution_expressions", "code_snippets", "code_leaks"]

#: A solution statement's right-hand side of at least this many nodes is an answer (``x.T @ d_prev``: 4).
MIN_STATEMENT_SIZE = 4
#: A part of a solution expression that computes something (an operator or a call) counts alone from
#: this many nodes (``d_prev @ W.T`` inside ``(d_prev @ W.T).reshape(shape)``: 4).
MIN_PART_SIZE = 4

#: Names that are the language's or NumPy's, not the student's: kept as they are.
_KEEP = {"np", "self", *dir(builtins)}
#: Method reductions written as NumPy functions.
_REDUCTIONS = {"sum", "max", "min", "mean", "prod", "argmax", "argmin", "any", "all"}
_COMMUTATIVE = (ast.Add, ast.Mult)
#: ``x.shape[0]`` and ``len(x)`` are the batch size, a variable like ``n``.
_BATCH = "n_batch_"
_MIRROR = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def _is_np(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "np"


def _np(attr: str, args, keywords=()) -> ast.Call:
    return ast.Call(
        func=ast.Attribute(value=ast.Name("np", ast.Load()), attr=attr, ctx=ast.Load()),
        args=list(args),
        keywords=list(keywords),
    )


def _frobenius(node) -> bool:
    """``np.linalg.norm(a)``, ``np.linalg.norm(a, "fro")`` or ``np.linalg.norm(a, ord="fro")``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "norm"):
        return False
    orders = node.args[1:] + [k.value for k in node.keywords if k.arg == "ord"]
    others = [k for k in node.keywords if k.arg != "ord"]
    return len(node.args) >= 1 and not others and all(isinstance(o, ast.Constant) and o.value == "fro" for o in orders)


def _np_call(node, *names) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in names
        and _is_np(node.func.value)
    )


def _same(a, b) -> bool:
    return ast.dump(a) == ast.dump(b)


def _square(node) -> ast.BinOp:
    return ast.BinOp(left=node, op=ast.Pow(), right=ast.Constant(2))


def _shape_key(node) -> str:
    """The node's text with every variable written ``_``: orders operands independently of their names."""

    class Blank(ast.NodeTransformer):
        def visit_Name(self, name):
            return ast.Name("_" if name.id not in _KEEP else name.id, ast.Load())

    return ast.unparse(Blank().visit(copy.deepcopy(node)))


class _Canonical(ast.NodeTransformer):
    """Rewrites equivalent spellings into one (bottom-up); see the module docstring."""

    def __init__(self, fields=frozenset()):
        self.fields = fields

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and (
            node.value.id == "self" or (node.attr in self.fields and node.value.id not in _KEEP)
        ):
            return ast.Name(node.attr, ast.Load())
        if isinstance(node.value, ast.Name) and node.value.id == "numpy":
            node.value = ast.Name("np", ast.Load())
        return node

    def visit_Name(self, node):
        return ast.Name("np" if node.id == "numpy" else node.id, ast.Load())

    def visit_Subscript(self, node):
        self.generic_visit(node)
        if (
            isinstance(node.value, ast.Attribute)
            and node.value.attr == "shape"
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == 0
        ):
            return ast.Name(_BATCH, ast.Load())  # x.shape[0]: the batch size, whatever it is called
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, float) and node.value.is_integer() and abs(node.value) < 1e15:
            return ast.Constant(int(node.value))
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id == "len" and len(node.args) == 1:
            return ast.Name(_BATCH, ast.Load())
        if (
            isinstance(func, ast.Attribute)
            and not _is_np(func.value)
            and func.attr in _REDUCTIONS
            and not (isinstance(func.value, ast.Name) and func.value.id in ("np", "builtins"))
        ):
            node = _np(func.attr, [func.value, *node.args], node.keywords)
        if _np_call(node, "vdot") and len(node.args) == 2 and _same(*node.args):
            return _np("sum", [_square(node.args[0])])
        if _np_call(node, "square") and len(node.args) == 1 and not node.keywords:
            return _square(node.args[0])
        if _np_call(node, "dot", "matmul") and len(node.args) == 2 and not node.keywords:
            return self.visit_BinOp(ast.BinOp(left=node.args[0], op=ast.MatMult(), right=node.args[1]))
        if _np_call(node, "transpose") and len(node.args) == 1 and not node.keywords:
            return ast.Attribute(value=node.args[0], attr="T", ctx=ast.Load())
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Mult) and _same(node.left, node.right):
            return _square(node.left)
        if (
            isinstance(node.op, ast.Pow)
            and isinstance(node.right, ast.Constant)
            and node.right.value == 2
            and _frobenius(node.left)
        ):
            return _np("sum", [_square(node.left.args[0])])  # np.linalg.norm(a) ** 2
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if (
            len(node.ops) == 1
            and isinstance(node.left, ast.Constant)
            and not isinstance(node.comparators[0], ast.Constant)
            and type(node.ops[0]) in _MIRROR
        ):
            return ast.Compare(left=node.comparators[0], ops=[_MIRROR[type(node.ops[0])]()], comparators=[node.left])
        return node


class _Rename(ast.NodeTransformer):
    """Every variable renamed ``v0``, ``v1``, ... in order of appearance."""

    def __init__(self):
        self.names = {}

    def visit_Name(self, node):
        if node.id in _KEEP:
            return node
        return ast.Name(self.names.setdefault(node.id, f"v{len(self.names)}"), ast.Load())

    def visit_arg(self, node):
        if node.arg not in _KEEP:
            node.arg = self.names.setdefault(node.arg, f"v{len(self.names)}")
        return node


class _Resort(ast.NodeTransformer):
    """Operands of ``+``/``*`` chains and ``np.maximum``/``np.minimum`` arguments sorted by their full text."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, _COMMUTATIVE):
            return node
        operands = []

        def flatten(part):
            if isinstance(part, ast.BinOp) and type(part.op) is type(node.op):
                flatten(part.left)
                flatten(part.right)
            else:
                operands.append(part)

        flatten(node)
        operands.sort(key=lambda operand: (_shape_key(operand), ast.unparse(operand)))
        result = operands[0]
        for operand in operands[1:]:
            result = ast.BinOp(left=result, op=type(node.op)(), right=operand)
        return result

    def visit_Call(self, node):
        self.generic_visit(node)
        if _np_call(node, "maximum", "minimum") and len(node.args) == 2:
            node.args = sorted(node.args, key=lambda arg: (_shape_key(arg), ast.unparse(arg)))
        return node


def _canonical(node, fields=frozenset(), rename: bool = True) -> ast.AST:
    node = _Resort().visit(_Canonical(fields).visit(copy.deepcopy(node)))
    if not rename:
        return node
    # Operands of the same shape (``d_prev * out``) are ordered by name only after renaming, which
    # depends on the order: rename and re-sort until nothing moves (two or three rounds).
    text = None
    for _ in range(4):
        node = _Resort().visit(_Rename().visit(node))
        if ast.unparse(node) == text:
            break
        text = ast.unparse(node)
    return _Rename().visit(node)


def _code_cells(folders) -> list[nbgrader_regions.Cell]:
    return [
        cell
        for folder in folders
        for path in nbgrader_regions.notebook_paths(folder)
        for cell in nbgrader_regions.read_cells(path)
        if cell.cell_type == "code"
    ]


def fields_of(solutions_dir: Path) -> frozenset[str]:
    """The attributes the notebooks' classes set on ``self`` (``W``, ``out``, ...): ``layer.W`` reads one, as ``self.W`` does."""
    fields = set()
    for cell in _code_cells([solutions_dir]):
        fields |= set(re.findall(r"\bself\.(\w+)\s*(?:[-+*/@]?=(?!=))", cell.source))
    return frozenset(fields)


def _size(node) -> int:
    """Nodes of the canonical form that carry meaning (``np``, builtins, contexts and operators not counted)."""
    return sum(
        1
        for part in ast.walk(_canonical(node))
        if isinstance(part, (ast.expr, ast.keyword, ast.comprehension, ast.AugAssign))
        and not (isinstance(part, ast.Name) and part.id in _KEEP)
    )


def _computes(node) -> bool:
    """Whether an expression computes something (an operator or a call), not only reads (``y.shape[0]``)."""
    return any(
        isinstance(part, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.BoolOp, ast.AugAssign))
        for part in ast.walk(node)
    )


def normalise(code: str, fields: frozenset[str] = frozenset()) -> str | None:
    """The canonical text of a piece of Python (an expression or statements), or None if it does not parse.

    >>> normalise("d_prev * (self.out > 0)") == normalise("(out>0)*dout")
    True
    """
    tree = _parse(code)
    return None if tree is None else ast.unparse(_canonical(tree, fields))


def normalise_text(code: str) -> str:
    """The textual fallback: no spaces, no ``self.``, ``numpy.`` written ``np.``."""
    return re.sub(r"\bself\.", "", re.sub(r"\bnumpy\.", "np.", "".join(code.split())))


def _parse(code: str) -> ast.AST | None:
    code = textwrap.dedent(code).strip()
    if not code:
        return None
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        pass
    try:  # a continuation line or a fragment such as ``x @ W + b`` (+ L2 term)
        return ast.parse(f"({code})", mode="eval")
    except (SyntaxError, ValueError):
        return None


def _expressions(tree) -> list[ast.AST]:
    """Every expression of a tree, and every augmented assignment (``W -= lr * dW``: an update step)."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.expr, ast.AugAssign))]


def _statement_values(tree) -> list[ast.expr]:
    values = []
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr))
            and node.value is not None
        ):
            values.append(node.value)
    return values


def _parse_region(body: str) -> list[ast.AST]:
    """The region as one tree, or line by line when the region alone does not parse."""
    tree = _parse(body)
    if tree is not None:
        return [tree]
    trees = [_parse(line.split("#")[0]) for line in body.splitlines()]
    return [tree for tree in trees if tree is not None]


@dataclass(frozen=True)
class Secrets:
    """What the solution regions' code gives away: canonical expression -> (notebook, original text)."""

    expressions: dict[str, tuple[str, str]]
    lines: dict[str, tuple[str, str]]  # normalise_text(line) -> (notebook, line), for the textual fallback
    fields: frozenset[str] = frozenset()  # see fields_of
    public: frozenset[str] = frozenset()  # canonical forms, names kept, of the notebooks' public code


def solution_expressions(solutions_dir: Path) -> Secrets:
    """Every answer expression of the code cells' solution regions of ``solutions_dir/*.ipynb``."""
    public_expressions, public_lines = set(), set()
    fields = fields_of(solutions_dir)
    source_cells = _code_cells([solutions_dir])
    for cell in _code_cells([solutions_dir, secret_lines.released_dir(solutions_dir)]):
        for line in nbgrader_regions.outside_regions(cell.source).splitlines():
            public_lines.add(normalise_text(line))
            tree = _parse(line.split("#")[0])
            if tree is not None:
                public_expressions |= {ast.unparse(_canonical(e, fields, rename=False)) for e in _expressions(tree)}
    public_flat = "\n".join(public_lines)
    expressions = {}
    for cell in source_cells:
        for region in nbgrader_regions.regions(cell.source):
            if region.kind != SOLUTION:
                continue
            for tree in _parse_region(region.body):
                whole = {id(v) for v in _statement_values(tree)}
                for node in _expressions(tree):
                    size = _size(node)
                    if size >= (MIN_STATEMENT_SIZE if id(node) in whole else MIN_PART_SIZE) and _computes(node):
                        key = ast.unparse(_canonical(node, fields))
                        if ast.unparse(_canonical(node, fields, rename=False)) not in public_expressions:
                            expressions.setdefault(key, (cell.notebook, ast.unparse(node)))
    lines = {}
    for line in secret_lines.secret_lines_of(
        source_cells, _code_cells([secret_lines.released_dir(solutions_dir)]), kinds=(SOLUTION,)
    ):
        code = line.text.split("#")[0].strip()
        text = normalise_text(code)
        if secret_lines.counts(code) and text not in public_flat and _parse(code) is None:
            lines.setdefault(text, (line.notebook, code))
    return Secrets(expressions, lines, fields, frozenset(public_expressions))


# --- the code of a text --------------------------------------------------------------------------

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.S | re.M,
)
#: Fences whose body is prose (MyST directives other than code), searched again for code.
_PROSE_DIRECTIVE = re.compile(
    r"\{(admonition|note|warning|tip|important|caution|attention|hint|seealso|"
    r"dropdown|figure|margin|sidebar|epigraph|topic|div|card|tab-item)\}"
)
_MATH_FENCE = re.compile(
    r"\{(math|eval-rst|glossary|bibliography|toctree|raw|list-table|csv-table)\}|^\s*(math|text|"
    r"console|bash|shell|yaml|json|html|latex)\b"
)
_INLINE = re.compile(r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_ROLE = re.compile(r"\{[\w:-]+\}$")
_DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)


def code_snippets(text: str) -> list[str]:
    """The code of a MyST/Markdown text: fenced blocks and code cells, and the inline code spans of the
    prose (a span right after a role such as ``{ref}`` is not code, and math is not code)."""
    snippets = []
    prose = []
    position = 0
    for match in _FENCE.finditer(text):
        prose.append(text[position : match.start()])
        position = match.end()
        info = match["info"].strip()
        body = _DIRECTIVE_OPTION.sub("", match["body"])
        if _PROSE_DIRECTIVE.search(info):
            snippets += code_snippets(textwrap.dedent(body))
        elif not _MATH_FENCE.search(info):
            snippets.append(body)
    prose.append(text[position:])
    prose_text = "".join(prose)
    prose_text = re.sub(r"\$\$.*?\$\$", " ", prose_text, flags=re.S)
    for match in _INLINE.finditer(prose_text):
        if _ROLE.search(prose_text[max(0, match.start() - 40) : match.start()]):
            continue
        snippets.append(match.group(2).strip())
    return snippets


def code_leaks(text: str, secrets: Secrets) -> list[tuple[str, str, str]]:
    """The solution code in ``text``'s code (:func:`code_snippets`): ``(kind, notebook, detail)`` each,
    kind "solution code" (an expression, normalised) or "solution line" (a line that does not parse alone)."""
    leaks = []
    for snippet in code_snippets(text):
        trees = [tree for tree in [_parse(snippet)] if tree is not None] or [
            tree for tree in (_parse(line) for line in snippet.splitlines()) if tree is not None
        ]
        found = set()
        for tree in trees:
            for node in _expressions(tree):
                key = ast.unparse(_canonical(node, secrets.fields))
                if (
                    key in secrets.expressions
                    and key not in found
                    and ast.unparse(_canonical(node, secrets.fields, rename=False)) not in secrets.public
                ):
                    found.add(key)
                    notebook, original = secrets.expressions[key]
                    leaks.append(("solution code", notebook, f"{ast.unparse(node)!r} is {original!r}"))
        flat = normalise_text(snippet)
        for line, (notebook, original) in secrets.lines.items():
            if line in flat and not any(original in detail for _, _, detail in leaks):
                leaks.append(("solution line", notebook, repr(original)))
    return leaks
