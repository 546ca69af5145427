"""Checks used by the exercise notebooks' tests: short, specific, teaching messages.

A failing check raises :class:`CheckFailed`, which Jupyter shows as one or two
sentences (what is wrong and the likely cause) instead of a traceback. Each
check that compares numbers can be given the *typical wrong answers* for that
step (for example the right gradient times the batch size); when the
student's array matches one of them, the message names that mistake.

Tamper resistance: the functions below use references to NumPy taken when this
module is first imported (in the notebooks' read-only first cell, before any
student code runs), so a student cell that rebinds ``np.allclose`` or
``np.testing`` cannot change their verdict, and this module refuses attribute
assignment. The autograder additionally verifies, after running a notebook,
that nothing here or in NumPy was replaced (see ``autograder``).
"""

from __future__ import annotations

import sys
import traceback
import types
import warnings
from pathlib import Path

import numpy as np

from .gradcheck import BUG_ABOVE, PASS_BELOW
from .notebook_import import parse_cell_filename

__all__ = [
    "CheckFailed",
    "call",
    "check_close",
    "check_dtype",
    "check_finite",
    "check_gradient",
    "check_no_warnings",
    "check_probabilities",
    "check_shape",
    "check_unchanged",
    "fixture",
    "is_finite",
    "passed",
]

# Pristine references, captured before any student code can run.
_asarray = np.asarray
_isfinite = np.isfinite
_isnan = np.isnan
_abs = np.abs
_array_equal = np.array_equal
_float64 = np.float64
_errstate = np.errstate
_load = np.load
_catch_warnings = warnings.catch_warnings
_simplefilter = warnings.simplefilter
# The instructors' full set of reference values if present, else the students' kit's subset
# (only the values the visible tests use; see scripts/make_fixtures.py).
_FIXTURE_FILE = next(
    (
        path
        for path in (
            Path(__file__).resolve().parent / "fixtures" / name
            for name in ("reference_values.npz", "visible_values.npz")
        )
        if path.is_file()
    ),
    Path(__file__).resolve().parent / "fixtures" / "visible_values.npz",
)


class CheckFailed(AssertionError):
    """A failed check. Jupyter shows only its message, not the traceback noise."""

    def _render_traceback_(self) -> list[str]:  # used by IPython to display the error
        return [f"\u2717 {self.args[0]}"]


def passed(message: str) -> None:
    """Print a one-line success message, e.g. ``passed("ReLU forward values")``."""
    print(f"\u2713 {message}")


def _fail(message: str) -> None:
    raise CheckFailed(message)


# ---------------------------------------------------------------------------
# Calling student code
# ---------------------------------------------------------------------------


def _student_frame(error: BaseException) -> str:
    """Where in the student's own code an exception came from, as 'cell In[3], line 12'."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if (
            "site-packages" not in frame.filename
            and not frame.filename.startswith(sys.prefix)
            and Path(frame.filename).name != Path(__file__).name
        ):
            return f" (in {frame.filename}, line {frame.lineno}: `{(frame.line or '').strip()}`)"
    return ""


def _not_written_yet(what: str, error: NotImplementedError) -> str:
    """Name the stub that raised: a method of this notebook, or one imported from an earlier notebook."""
    innermost = error.__traceback__
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    if innermost is None:
        return f"{what} is not written yet: fill in its EDIT HERE region and run that cell again."
    code = innermost.tb_frame.f_code
    method = getattr(code, "co_qualname", code.co_name).split("<locals>.")[-1]
    earlier = parse_cell_filename(code.co_filename)
    if earlier is not None:
        notebook, _ = earlier
        return (
            f"{method} in {notebook} is not written yet (this notebook uses your code from {notebook}): "
            f"fill in its EDIT HERE region there, save {notebook}, then restart this notebook's kernel "
            "and run it again."
        )
    if method in ("<module>", "<lambda>"):
        method = what
    return f"{method} is not written yet: fill in its EDIT HERE region and run that cell again."


def call(what: str, function, *args, **kwargs):
    """Call student code and return ``(result, warning_messages)``.

    Floating-point problems (overflow, invalid values, division by zero) are
    collected as warnings. An exception becomes a :class:`CheckFailed` that
    says which method failed and where, e.g. an untouched ``EDIT HERE``.

    what: a human name for the call, e.g. ``"ReLU.forward"``.
    """
    with _catch_warnings(record=True) as caught, _errstate(over="warn", invalid="warn", divide="warn"):
        _simplefilter("always")
        try:
            result = function(*args, **kwargs)
        except NotImplementedError as error:
            _fail(_not_written_yet(what, error))
        except CheckFailed:
            raise
        except Exception as error:  # noqa: BLE001 - the student's code failed; say where, briefly
            _fail(f"{what} raised {type(error).__name__}: {error}{_student_frame(error)}.")
    return result, [str(w.message) for w in caught]


# ---------------------------------------------------------------------------
# Checks on arrays
# ---------------------------------------------------------------------------


def _as_float_array(value, what: str) -> np.ndarray:
    if value is None:
        _fail(f"{what} is None: did you forget to `return` it (or to store it on `self`)?")
    try:
        array = _asarray(value)
    except Exception:  # noqa: BLE001 - any unconvertible value is the student's
        _fail(f"{what} should be a NumPy array, but it is a {type(value).__name__}.")
    if array.dtype.kind not in "fiu":
        _fail(f"{what} should hold numbers, but its dtype is {array.dtype}.")
    return array


def check_shape(value, expected_shape: tuple, what: str, hint: str = "") -> None:
    """Fail unless ``value`` has exactly ``expected_shape``."""
    array = _as_float_array(value, what)
    if tuple(array.shape) != tuple(expected_shape):
        extra = f" {hint}" if hint else ""
        if tuple(array.shape) == tuple(expected_shape)[::-1] and len(expected_shape) == 2:
            extra = extra or " It looks transposed: check the order of the factors in your matrix product."
        _fail(f"{what} has shape {tuple(array.shape)}, expected {tuple(expected_shape)}.{extra}")


def check_dtype(value, expected_dtype, what: str) -> None:
    """Fail unless ``value`` has ``expected_dtype`` (float32 in must give float32 out)."""
    array = _as_float_array(value, what)
    if array.dtype != np.dtype(expected_dtype):
        _fail(
            f"{what} has dtype {array.dtype}, expected {np.dtype(expected_dtype)} (the dtype of the input). "
            "Something mixes in another precision, e.g. an array made without `dtype=` or `.astype`."
        )


def check_finite(value, what: str, hint: str = "") -> None:
    """Fail if ``value`` holds NaN or infinity (typically an overflow)."""
    array = _as_float_array(value, what)
    if not _isfinite(array).all():
        kind = "NaN" if _isnan(array).any() else "infinity"
        _fail(
            f"{what} contains {kind} for large inputs. {hint or 'Something overflows: use a numerically stable formula.'}"
        )


def is_finite(value) -> bool:
    """True if ``value`` is a numeric array (or number) without NaN or infinity; never raises."""
    try:
        array = _asarray(value)
        return array.dtype.kind in "fiu" and bool(_isfinite(array).all())
    except Exception:  # noqa: BLE001 - anything that is not a numeric array is simply "not finite"
        return False


def check_no_warnings(warning_messages: list[str], what: str, hint: str = "") -> None:
    """Fail if the call produced floating-point or other warnings."""
    if warning_messages:
        _fail(f"{what} warned: '{warning_messages[0]}'. {hint or 'Use a formulation that cannot overflow.'}")


def _tolerances(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    low_precision = actual.dtype == np.float32 or expected.dtype == np.float32
    return (2e-4, 1e-6) if low_precision else (1e-6, 1e-9)


def _matches(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    if actual.shape != expected.shape:
        return False
    actual64 = actual.astype(_float64)
    expected64 = expected.astype(_float64)
    if not (_isfinite(actual64) == _isfinite(expected64)).all():
        return False
    finite = _isfinite(expected64)
    difference = _abs(actual64[finite] - expected64[finite])
    return bool((difference <= atol + rtol * _abs(expected64[finite])).all())


def check_close(
    actual, expected, what: str, *, mistakes=(), rtol: float | None = None, atol: float | None = None, hint: str = ""
) -> None:
    """Fail unless ``actual`` equals ``expected`` within tolerance.

    actual, expected: arrays of the same shape (a flattened ``actual`` of the
        same size is accepted where the expected array is an input gradient of
        a flattened input).
    mistakes: pairs ``(wrong_array, message)``: what a typical mistake would
        produce and how to explain it. The first match is reported.
    rtol, atol: default to 2e-4 / 1e-6 when either side is float32, else 1e-6 / 1e-9.
    """
    actual = _as_float_array(actual, what)
    expected = _asarray(expected)
    default_rtol, default_atol = _tolerances(actual, expected)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    if actual.shape != expected.shape:
        check_shape(actual, expected.shape, what)
    if _matches(actual, expected, rtol, atol):
        return
    for wrong, message in mistakes:
        wrong = _asarray(wrong)
        if wrong.shape == actual.shape and _matches(actual, wrong, max(rtol, 1e-4), max(atol, 1e-6)):
            _fail(f"{what} is wrong: {message}")
    if not _isfinite(actual.astype(_float64)).all():
        check_finite(actual, what)
    worst = int(_abs(actual.astype(_float64) - expected.astype(_float64)).argmax())
    index = np.unravel_index(worst, expected.shape)
    _fail(
        f"{what} does not match the expected values: at index {tuple(int(i) for i in index)} you have "
        f"{actual[index]:.6g}, expected {expected[index]:.6g}. {hint}".rstrip()
    )


def check_probabilities(value, what: str) -> None:
    """Fail unless every row of ``value`` (n, k) is a probability distribution."""
    array = _as_float_array(value, what).astype(_float64)
    check_finite(
        array,
        what,
        "Softmax overflowed: exp of a large score (1000, say) is inf, and inf / inf is NaN. "
        "Chapter 3's section 'Overflow, and the shift that prevents it' shows how to keep every exponent "
        "small without changing the result.",
    )
    if (array < 0).any() or (array > 1 + 1e-6).any():
        _fail(
            f"{what} should hold probabilities in [0, 1], but has values from {array.min():.4g} to {array.max():.4g}."
        )
    sums = array.reshape(array.shape[0], -1).sum(axis=1)
    if (_abs(sums - 1) > 1e-5).any():
        bad = int(_abs(sums - 1).argmax())
        _fail(
            f"{what}: row {bad} sums to {sums[bad]:.6g}, not 1. Normalise each row by its own sum "
            "(axis=1, keepdims=True), not by the sum over the whole batch."
        )


def check_unchanged(before, after, what: str) -> None:
    """Fail if an input array was modified in place (``before`` is a copy taken before the call)."""
    if not _array_equal(_asarray(before), _asarray(after)):
        _fail(
            f"{what} modified its input array in place. Work on a new array "
            "(e.g. `np.maximum(z, 0)` or `z.copy()`) instead of assigning into the input."
        )


def check_gradient(analytic, numerical, what: str, *, tolerance: float = PASS_BELOW, mistakes=()) -> None:
    """Fail unless an analytic gradient agrees with a numerical one.

    The relative error is :func:`dnn_course.gradcheck.relative_error`'s (computed here with
    pristine NumPy functions); it must be below ``tolerance``, by default the course's rule
    ``gradcheck.PASS_BELOW``.
    """
    analytic = _as_float_array(analytic, what).astype(_float64)
    numerical = _asarray(numerical).astype(_float64)
    if analytic.shape != numerical.shape:
        if analytic.size == numerical.size:
            analytic = analytic.reshape(numerical.shape)
        else:
            check_shape(analytic, numerical.shape, what)
    scale = (_abs(analytic) + _abs(numerical)).max() if analytic.size else 0.0
    error = float(_abs(analytic - numerical).max() / scale) if scale > 0 else 0.0
    if error < tolerance:
        return
    for wrong, message in mistakes:
        wrong = _asarray(wrong).astype(_float64)
        if wrong.shape == analytic.shape and _matches(analytic, wrong, 1e-4, 1e-8):
            _fail(f"{what} disagrees with the numerical gradient: {message}")
    rule = f"below {PASS_BELOW:.0e} passes, above {BUG_ABOVE:.0e} is a bug"
    _fail(
        f"{what} disagrees with the numerical gradient (relative error {error:.1e}; {rule}). "
        "Re-derive it with the chain rule and check each factor's shape."
    )


# ---------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------


def fixture(name: str) -> dict[str, np.ndarray]:
    """Reference inputs and outputs for one component, e.g. ``fixture("relu")``.

    The values come from ``dnn_course/fixtures/reference_values.npz`` (instructors) or
    ``visible_values.npz`` (the students' kit, visible tests' values only), made by
    ``scripts/make_fixtures.py`` from the reference solution. Keys are
    ``"<name>/<array>"`` in the file; the returned dict drops the prefix.
    """
    with _load(_FIXTURE_FILE, allow_pickle=False) as data:
        prefix = f"{name}/"
        arrays = {key[len(prefix) :]: data[key].copy() for key in data.files if key.startswith(prefix)}
    if not arrays:
        raise KeyError(f"No reference values named {name!r} in {_FIXTURE_FILE.name}.")
    return arrays


class _ReadOnlyModule(types.ModuleType):
    """Refuses attribute assignment, so a notebook cannot quietly replace a check."""

    def __setattr__(self, name, value):
        raise AttributeError(
            f"dnn_course.checks.{name} is read-only: the tests' checks cannot be replaced from a notebook."
        )

    def __delattr__(self, name):
        raise AttributeError(f"dnn_course.checks.{name} is read-only.")


sys.modules[__name__].__class__ = _ReadOnlyModule
