"""The claim contract: what each claim must hold before a model scores it, judged by one function for both doors.

`claim_problems` is what `engine score` and the dashboard's form refuse (through `engine.lab.claim_errors`) and
what the registered pyfunc refuses when MLflow serves it (`serving_pyfunc.py`, also behind `mlflow models
serve`): known categories; numbers written as plain decimals, finite and within what the forest reads (float32);
amounts above 0; allowed at most billed; an age from AGE_MIN to AGE_MAX. It judges columns (one claim is a
one-row table), vectorised where the values are already numbers, so the live stream pays microseconds per claim.

It imports only numpy, pandas and the standard library: it is logged beside the pyfunc as model code
(`code_paths`), so it loads wherever MLflow loads the model. The frame-level data contract a training set must
pass (`validation.py`) takes its ranges from here.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

AMOUNTS = ("billed_amount", "allowed_amount")
NUMERIC = AMOUNTS + ("patient_age",)  # the model's numbers (engine.ml.claims.NUMERIC, checked by the tests)
AGE_MIN, AGE_MAX = 0, 110
# The forest reads its input as float32: beyond this, scikit-learn raises deep inside prediction instead.
FLOAT32_MAX = 3.4028234663852886e38
# A number as typed: ASCII digits with an optional point and exponent. float() alone also takes "nan", "1_000",
# other scripts' digits and thousands of characters.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
MAX_NUMBER_CHARS = 40
SHOWN_CHARS = 40  # of a bad value quoted in a message: enough to recognise it, never a whole pasted page


def shown(value, limit: int = SHOWN_CHARS) -> str:
    """`value` quoted for a message, cut to `limit` characters (a message never echoes a whole pasted page)."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python will print
        return f"(a whole number of about {int(value.bit_length() * 0.30103):,} digits)"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def number_text(number: float) -> str:
    """A number as it really is (110.0000001, not 110; 4200, not 4200.0)."""
    text = repr(float(number))
    return text[:-2] if text.endswith(".0") else text


def number_problem(value) -> str | None:
    """What is wrong with `value` as one of the model's numbers (with the fix), or None when it is fine."""
    plain = "is not a number; give it like 1234.5 (digits, no currency signs)"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, str, np.integer, np.floating)):
        return plain
    if isinstance(value, str) and (len(value) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(value.strip())):
        return plain
    try:
        number = float(value)
    except OverflowError:  # an int too large for any float
        number = math.inf
    if not math.isfinite(number):  # the forest refuses inf and nan: say so as bad input
        return "is not a finite number; give it like 1234.5"
    if abs(number) > FLOAT32_MAX:
        return f"is beyond what the model can read (at most {FLOAT32_MAX:.4g}); give it like 1234.5"
    return None


def claim_problems(columns: Mapping[str, Sequence], n: int, categories: Mapping[str, Sequence[str]],
                   names: Mapping[str, str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(the numbers as float64 columns, {field: message}) for `n` claims given as columns by field name.

    A field absent from `columns` counts as missing. `categories` are the labels each categorical field accepts
    (the lab's, or the model's own). Each field with a problem gets one message, on its first bad claim
    ("claim 3 of 5: ..." when there are several), saying what was wrong and what is allowed; `names` says each
    field as the caller shows it (a form's labels). A bad number is NaN in the returned columns."""
    name = {**{f: f for f in (*categories, *NUMERIC)}, **(names or {})}
    errors: dict[str, str] = {}

    def refuse(field: str, bad: np.ndarray, message) -> None:
        hits = np.flatnonzero(bad)
        if field not in errors and len(hits):
            where = f"claim {hits[0] + 1} of {n}: " if n > 1 else ""
            errors[field] = where + message(hits[0])

    for col, allowed in categories.items():
        values, labels = _column(columns, col, n), ", ".join(sorted(allowed))
        refuse(col, ~_known(values, allowed), lambda i: (
            f"{name[col]} is missing; choose one of: {labels}" if _blank(values[i]) else
            f"{name[col]} {shown(values[i])} is not a known category; use one of: {labels}"))
    numbers = {}
    for col in NUMERIC:
        values = _column(columns, col, n)
        numbers[col], problems = _numbers(values)
        refuse(col, problems.astype(bool), lambda i: (
            f"{name[col]} is missing; give a number like 1234.5" if _blank(values[i]) else
            f"{name[col]} {shown(values[i])} {problems[i]}"))
    billed, allowed, age = (numbers[c] for c in NUMERIC)
    with np.errstate(invalid="ignore"):  # NaN (already refused) compares False everywhere below
        for col in AMOUNTS:
            refuse(col, numbers[col] <= 0, lambda i: f"{name[col]} {number_text(numbers[col][i])} must be more than 0")
        refuse("allowed_amount", (allowed > billed) & (billed > 0), lambda i: (
            f"{name['allowed_amount']} {number_text(allowed[i])} is more than {name['billed_amount']} "
            f"{number_text(billed[i])}; the payer cannot allow more than was billed"))
        refuse("patient_age", (age < AGE_MIN) | (age > AGE_MAX), lambda i: (
            f"{name['patient_age']} {number_text(age[i])} is outside {AGE_MIN}..{AGE_MAX}; give the age in years"))
    return numbers, errors


def _column(columns: Mapping[str, Sequence], col: str, n: int) -> np.ndarray:
    values = columns.get(col)
    if values is not None and not isinstance(values, (list, tuple)):
        return np.asarray(values)  # a pandas column or an array
    out = np.full(n, None, dtype=object)
    for i, v in enumerate(values or ()):  # cell by cell: a cell may itself be a list
        out[i] = v
    return out


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _known(values: np.ndarray, allowed: Sequence[str]) -> np.ndarray:
    """True where a value is one of the labels `allowed` (a str; a pandas categorical arrives as its labels)."""
    import pandas as pd  # here, not at import: the CLI reads this module's constants without paying for pandas
    try:
        return pd.Series(values, dtype=object).isin(list(allowed)).to_numpy(dtype=bool)
    except TypeError:  # unhashable cells (lists, dicts from JSON) are never a category
        return np.fromiter((isinstance(v, str) and v in allowed for v in values), bool, len(values))


def _numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, the problem of each as number_problem says it, None where it is fine)."""
    if values.dtype.kind in "iuf":  # already numbers (the lab's frames, MLflow's doubles): judge them at once
        numbers = values.astype(np.float64)
        problems = np.full(len(values), None, dtype=object)
        with np.errstate(invalid="ignore"):
            problems[np.abs(numbers) > FLOAT32_MAX] = number_problem(2 * FLOAT32_MAX)
        problems[~np.isfinite(numbers)] = number_problem(math.nan)
    else:  # text, objects, bools: one by one, as a person typed them
        problems = np.array([number_problem(v) for v in values] + [None], dtype=object)[:-1]
        numbers = np.array([math.nan if p else float(v) for v, p in zip(values, problems)], dtype=np.float64)
    numbers[problems.astype(bool)] = math.nan
    return numbers, problems
