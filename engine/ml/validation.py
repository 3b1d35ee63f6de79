"""The claims data contract: what a frame must look like before the lab trains on it or scores it.

`validate(frame)` runs every check in CHECK_NAMES, in that order, and never raises, whatever it is given (None, a
list, an empty frame, junk text, NaN/inf, duplicated column names): anything unforeseen becomes a failed check.
Each CheckResult gives passed, failing_rows, up to five JSON-safe examples and one sentence on how to fix it.

- Required columns are claims.COLUMNS; extra columns are ignored; a duplicated name fails required_columns and
  only its first copy is checked. Missing or duplicated columns count every row as failing.
- A column has the right type if its dtype is right or every non-null value is the right kind: a number for the
  amounts and age, a date for service_date, a str for the categories. Text like "1,234.50" is not a number.
- Only no_nulls reports nulls; other checks skip null cells so one bad cell is not counted twice. Infinite
  amounts or ages are out of range, not null. unique_claim_id counts every row whose id appears more than once.
- Skipped-as-failed: a check needing a column that is missing or of the wrong type still appears, with
  passed=False, failing_rows=0 and a detail naming the column to fix first, so the checks are always the same.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import partial
from itertools import islice

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from engine.ml import claims
from engine.ml.contract import AGE_MAX, AGE_MIN  # one range for training data and for scored claims

MAX_EXAMPLES = 5
ALLOWED = {**claims.CATEGORIES, claims.TARGET: (claims.APPROVED, claims.DENIED)}
_KINDS = {**dict.fromkeys(claims.NUMERIC, "number"), "service_date": "date",
          **dict.fromkeys(claims.CATEGORICAL + (claims.TARGET,), "text")}
# infer_dtype answers per column in C, so clean frames never reach the per-value loop below.
_INFERRED_OK = {"number": {"integer", "floating", "mixed-integer-float", "decimal", "empty"},
                "date": {"datetime64", "datetime", "date", "empty"}, "text": {"string", "empty"}}
_VALUE_OK = {"number": lambda v: isinstance(v, (int, float, np.integer, np.floating, Decimal))
             and not isinstance(v, (bool, np.bool_)),  # bool is an int subclass, but True is not an amount
             "date": lambda v: isinstance(v, (date, np.datetime64)), "text": lambda v: isinstance(v, str)}
_FIX = {"number": "convert it with pd.to_numeric after stripping currency symbols and thousands separators",
        "date": "parse it with pd.to_datetime", "text": "store the labels as text"}
_LONGEST = 60  # characters per example: enough to recognise a value, short enough for a table cell
_SCAN = 500  # failing values scanned for distinct examples; bounds the cost on huge broken frames


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check."""
    name: str
    passed: bool
    failing_rows: int = 0
    examples: list[str | float | int] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class ValidationReport:
    """Every check run on one frame, in CHECK_NAMES order."""
    checks: list[CheckResult]
    n_rows: int = 0

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> list[CheckResult]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        """The result of the check called `name` (KeyError if there is none)."""
        return {c.name: c for c in self.checks}[name]

    def to_dict(self) -> dict:
        """A JSON-serialisable summary: {"passed", "n_rows", "checks": [...]}."""
        return {"passed": self.passed, "n_rows": self.n_rows, "checks": [asdict(c) for c in self.checks]}


@dataclass(frozen=True)
class _Frame:
    n_rows: int
    columns: dict[str, pd.Series]  # first copy of each required column that is present
    duplicated: list[str]
    bad_kind: dict[str, np.ndarray]  # per typed column: True where a non-null value has the wrong kind
    usable: set[str]  # present and of the right kind, so value checks can run on it


def validate(frame: object) -> ValidationReport:
    """Check `frame` against the claims contract; never raises."""
    why = f"Expected a pandas DataFrame but got {type(frame).__name__}; load the claims into a DataFrame first."
    try:
        if isinstance(frame, pd.DataFrame):
            ctx = _prepare(frame)
            return ValidationReport([_run(name, check, ctx) for name, check in _CHECKS.items()], ctx.n_rows)
    except Exception as exc:  # noqa: BLE001 -- a frame pandas cannot even index still gets a report
        why = f"The frame could not be read ({type(exc).__name__}); rebuild it as a plain DataFrame."
    return ValidationReport([CheckResult(name, False, 0, [], why) for name in CHECK_NAMES])


def _prepare(frame: pd.DataFrame) -> _Frame:
    columns: dict[str, pd.Series] = {}
    duplicated: list[str] = []
    for i, name in enumerate(frame.columns):
        if isinstance(name, str) and name in claims.COLUMNS:
            if name not in columns:
                columns[name] = frame.iloc[:, i]  # positional, so a duplicated name still gives one Series
            elif name not in duplicated:
                duplicated.append(name)
    bad = {c: _bad_kind(columns[c], kind) for c, kind in _KINDS.items() if c in columns}
    return _Frame(len(frame), columns, duplicated, bad, {c for c in columns if c not in bad or not bad[c].any()})


def _bad_kind(col: pd.Series, kind: str) -> np.ndarray:
    ok = _VALUE_OK[kind]
    if isinstance(col.dtype, pd.CategoricalDtype):  # judge the few categories, then map them onto rows by code
        good = np.array([ok(v) for v in col.cat.categories] + [True], bool)  # the extra True is for code -1
        return ~good[col.cat.codes.to_numpy()]
    if infer_dtype(col, skipna=True) in _INFERRED_OK[kind]:
        return np.zeros(len(col), bool)
    values = col.to_numpy(dtype=object)
    return ~np.fromiter(map(ok, values), bool, len(values)) & ~pd.isna(values)


def _run(name: str, check, ctx: _Frame) -> CheckResult:
    try:
        return check(name, ctx)
    except Exception as exc:  # noqa: BLE001 -- an unforeseen input fails this one check, not the report
        why = f"This check could not be evaluated ({type(exc).__name__}); use plain numbers, dates and text."
        return CheckResult(name, False, 0, [], why)


def _json_safe(value: object) -> str | float | int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and abs(value) <= 2**53:
        return int(value)  # above 2**53 JavaScript would round the id, so bigger ints fall through to text
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return float(value)
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates break JSON consumers
    return text if len(text) <= _LONGEST else text[:_LONGEST - 1] + "…"


def _examples(values) -> list[str | float | int]:
    return list(dict.fromkeys(map(_json_safe, islice(values, _SCAN))))[:MAX_EXAMPLES]  # distinct, in order


def _result(name: str, ctx: _Frame, masks: dict, detail, examples=None, skipped=()) -> CheckResult:
    """Fold per-column failure masks into one CheckResult; `skipped` columns make it fail as not evaluated."""
    bad = [c for c, m in masks.items() if m.any()]
    rows = np.logical_or.reduce([masks[c] for c in bad] + [np.zeros(ctx.n_rows, bool)])
    if examples is None:
        examples = (v for c in bad for v in ctx.columns[c].iloc[np.flatnonzero(masks[c])[:_SCAN]])
    text = (detail if isinstance(detail, str) else detail(bad)) if bad else ""
    result = CheckResult(name, not bad, int(rows.sum()), _examples(examples) if bad else [], text)
    if not skipped:
        return result
    missing = [c for c in skipped if c not in ctx.columns]
    groups = ((missing, "missing"), ([c for c in skipped if c in ctx.columns], "of the wrong type"))
    why = " and ".join(f"{', '.join(cs)} {'is' if len(cs) == 1 else 'are'} {state}" for cs, state in groups if cs)
    why = f"{'fully ' if masks else ''}evaluated because {why}; fix required_columns and dtypes first"
    return replace(result, passed=False, detail=f"{text.rstrip('.')}; also not {why}." if bad else f"Not {why}.")


def _required_columns(name: str, ctx: _Frame) -> CheckResult:
    problems = [f"missing column: {c}" for c in claims.COLUMNS if c not in ctx.columns]
    problems += [f"duplicate column: {c}" for c in ctx.duplicated]
    if not problems:  # not via _result: a column-level failure must fail even when there are no rows
        return CheckResult(name, True)
    return CheckResult(name, False, ctx.n_rows, problems[:MAX_EXAMPLES],
                       f"Fix the column layout ({'; '.join(problems)}): each of {', '.join(claims.COLUMNS)} "
                       "must appear exactly once; extra columns are ignored.")


def _dtypes(name: str, ctx: _Frame) -> CheckResult:
    return _result(name, ctx, ctx.bad_kind, lambda cols: "Values of the wrong type: " + "; ".join(
        f"{c} is {ctx.columns[c].dtype}, {_FIX[_KINDS[c]]}" for c in cols) + ".",
        skipped=[c for c in _KINDS if c not in ctx.columns])


def _outside(col: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    if isinstance(col.dtype, pd.CategoricalDtype):  # judge the categories once, then map them onto rows by code
        return np.append(~col.cat.categories.isin(allowed), False)[col.cat.codes.to_numpy()]  # False: code -1
    return ~col.isin(allowed).to_numpy(dtype=bool) & col.notna().to_numpy(dtype=bool)


def _allowed_categories(name: str, ctx: _Frame) -> CheckResult:
    usable = [c for c in ALLOWED if c in ctx.usable]
    masks = {c: _outside(ctx.columns[c], ALLOWED[c]) for c in usable}
    return _result(name, ctx, masks, lambda cols: f"Unknown labels in {', '.join(cols)}; map them onto the labels "
                   "declared in engine.ml.claims, checking spelling, case and stray whitespace.",
                   skipped=[c for c in ALLOWED if c not in usable])


def _range(name: str, ctx: _Frame, cols: tuple[str, ...], bad, fix: str) -> CheckResult:
    if skipped := [c for c in cols if c not in ctx.usable]:
        return _result(name, ctx, {}, fix, skipped=skipped)
    # to_numeric is a no-op on numeric dtypes and reads the object numbers, Decimals and categories dtypes accepts
    values = [pd.to_numeric(ctx.columns[c], errors="coerce").to_numpy(float, na_value=np.nan) for c in cols]
    with np.errstate(invalid="ignore"):
        mask = bad(*values) & ~np.isnan(values).any(axis=0)  # null cells belong to no_nulls, not here
    pairs = zip(*(v[mask] for v in values))  # a two-column rule shows both sides; one column shows its raw value
    shown = (f"allowed {x} > billed {y}" for x, y in pairs) if len(cols) == 2 else None
    return _result(name, ctx, {cols[0]: mask}, fix, shown)


def _no_nulls(name: str, ctx: _Frame) -> CheckResult:
    masks = {c: ctx.columns[c].isna().to_numpy(dtype=bool) for c in claims.COLUMNS if c in ctx.columns}
    return _result(name, ctx, masks, lambda cols: f"Missing values in {', '.join(cols)}; fill them from the source "
                   "system or drop those rows before training or scoring.",
                   [f"{c}: {int(m.sum())} null" for c, m in masks.items() if m.any()],
                   [c for c in claims.COLUMNS if c not in ctx.columns])


def _unique_claim_id(name: str, ctx: _Frame) -> CheckResult:
    if "claim_id" not in ctx.columns:
        return _result(name, ctx, {}, "", skipped=["claim_id"])
    ids = ctx.columns["claim_id"]
    try:
        dup = ids.duplicated(keep=False).to_numpy(dtype=bool)
    except TypeError:  # unhashable cells (lists, dicts) cannot be hashed, so compare their reprs instead
        dup = ids.map(repr).duplicated(keep=False).to_numpy(dtype=bool)
    return _result(name, ctx, {"claim_id": dup & ids.notna().to_numpy(dtype=bool)}, "Some claim_id values appear "
                   "on more than one row; keep one row per claim (e.g. drop_duplicates('claim_id')) after checking "
                   "which copy is right.")


_RANGES = {  # name: (columns, rule flagging a bad row, how to fix it); `~(ok)` so NaN/inf comparisons flag too
    **{f"{c}_positive": ((c,), lambda v: ~(np.isfinite(v) & (v > 0)), f"{c} must be a finite amount above 0; "
                         "correct or drop rows with zero, negative or infinite amounts.")
       for c in ("billed_amount", "allowed_amount")},
    "allowed_within_billed": (("allowed_amount", "billed_amount"), lambda a, b: ~(a <= b),
                              "allowed_amount exceeds billed_amount on these rows; a payer cannot allow more than "
                              "was billed, so check for swapped or mis-scaled columns."),
    "patient_age_range": (("patient_age",), lambda g: ~((g >= AGE_MIN) & (g <= AGE_MAX)),
                          f"patient_age must be between {AGE_MIN} and {AGE_MAX} years; fix data-entry errors or "
                          "drop those rows."),
}
_CHECKS = {"required_columns": _required_columns, "dtypes": _dtypes, "allowed_categories": _allowed_categories,
           **{name: partial(_range, cols=cols, bad=bad, fix=fix) for name, (cols, bad, fix) in _RANGES.items()},
           "no_nulls": _no_nulls, "unique_claim_id": _unique_claim_id}
CHECK_NAMES = tuple(_CHECKS)
