"""The claims data contract: clean frames pass, each check catches its corruption, and no input makes it raise."""
from __future__ import annotations

import contextlib
import json
import warnings
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from engine.ml import claims
from engine.ml.validation import CHECK_NAMES, MAX_EXAMPLES, CheckResult, ValidationReport, validate

N = 40


@pytest.fixture
def frame() -> pd.DataFrame:
    return claims.generate_claims(N, seed=7)


def as_object(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The frame with `column` as a plain object column, so any value can be written into it."""
    frame[column] = frame[column].astype(object)
    return frame


def assert_well_formed(report: ValidationReport, n_rows: int | None = None) -> dict:
    """Shape every report must have, whatever the input; returns its to_dict()."""
    assert isinstance(report, ValidationReport)
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    for c in report.checks:
        assert isinstance(c, CheckResult) and isinstance(c.passed, bool)
        assert type(c.failing_rows) is int and 0 <= c.failing_rows <= max(report.n_rows, 0)
        assert len(c.examples) <= MAX_EXAMPLES
        assert all(type(e) in (str, float, int) for e in c.examples), c.examples
        assert isinstance(c.detail, str) and (c.detail == "") == c.passed, c
    assert report.passed == all(c.passed for c in report.checks)
    assert report.failed_checks == [c for c in report.checks if not c.passed]
    if n_rows is not None:
        assert report.n_rows == n_rows
    out = report.to_dict()
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)  # strict JSON, no NaN/Infinity tokens
    text.encode("utf-8")  # and no lone surrogates
    assert json.loads(text) == out
    return out


def only_failures(report: ValidationReport) -> set[str]:
    return {c.name for c in report.failed_checks}


# --- clean input -------------------------------------------------------------------------------------------------

def test_check_names_are_stable():
    # The dashboard and stored reports refer to checks by these names.
    assert CHECK_NAMES == ("required_columns", "dtypes", "allowed_categories", "billed_amount_positive",
                           "allowed_amount_positive", "allowed_within_billed", "patient_age_range", "no_nulls",
                           "unique_claim_id")


def test_clean_frame_passes_every_check(frame):
    report = validate(frame)
    out = assert_well_formed(report, N)
    assert report.passed and out["passed"] is True and out["n_rows"] == N
    assert all(c.failing_rows == 0 and c.examples == [] for c in report.checks)
    assert [c["name"] for c in out["checks"]] == list(CHECK_NAMES)
    assert set(out["checks"][0]) == {"name", "passed", "failing_rows", "examples", "detail"}


def test_equivalent_representations_pass(frame):
    # Plain text instead of categoricals, object-held numbers, Decimals, date objects and extra columns are fine.
    for column in claims.CATEGORICAL + (claims.TARGET,):
        frame[column] = frame[column].astype(str)
    frame["billed_amount"] = frame["billed_amount"].astype(object)
    frame["allowed_amount"] = [Decimal(str(v)) for v in frame["allowed_amount"]]
    frame["service_date"] = [d.date() for d in frame["service_date"]]
    frame["notes"] = "anything"
    frame[("multi", 1)] = 1
    report = validate(frame)
    assert_well_formed(report, N)
    assert report.passed, report.failed_checks


def test_empty_frame_with_the_schema_passes():
    assert validate(claims.generate_claims(0, 1)).passed
    assert validate(pd.DataFrame(columns=list(claims.COLUMNS))).passed


# --- targeted corruptions ----------------------------------------------------------------------------------------

def test_missing_column_is_named_and_dependents_fail(frame):
    report = validate(frame.drop(columns="diagnosis_group"))
    assert_well_formed(report, N)
    check = report.check("required_columns")
    assert not check.passed and check.failing_rows == N
    assert check.examples == ["missing column: diagnosis_group"]
    assert "missing column: diagnosis_group" in check.detail
    # Checks that need the column fail as not (fully) evaluated; unrelated ones still pass.
    assert only_failures(report) == {"required_columns", "dtypes", "allowed_categories", "no_nulls"}
    for name in ("dtypes", "allowed_categories", "no_nulls"):
        assert report.check(name).failing_rows == 0
        assert "diagnosis_group is missing" in report.check(name).detail


def test_allowed_above_billed(frame):
    rows = [0, 5, 9]
    frame.loc[rows, "allowed_amount"] = frame.loc[rows, "billed_amount"] * 2
    report = validate(frame)
    assert only_failures(report) == {"allowed_within_billed"}
    check = report.check("allowed_within_billed")
    assert check.failing_rows == 3 and len(check.examples) == 3
    first = frame.loc[0]
    assert check.examples[0] == f"allowed {first.allowed_amount} > billed {first.billed_amount}"
    assert "allowed_amount exceeds billed_amount" in check.detail


def test_age_out_of_range(frame):
    frame.loc[[2, 3], "patient_age"] = 150
    frame.loc[4, "patient_age"] = -1
    report = validate(frame)
    assert only_failures(report) == {"patient_age_range"}
    check = report.check("patient_age_range")
    assert check.failing_rows == 3 and check.examples == [150, -1]  # distinct values, original integer type
    assert "between 0 and 110" in check.detail


def test_negative_zero_and_infinite_billed(frame):
    frame.loc[1, "billed_amount"] = -100.0
    frame.loc[2, "billed_amount"] = 0.0
    frame.loc[3, "billed_amount"] = np.inf
    report = validate(frame)
    check = report.check("billed_amount_positive")
    assert not check.passed and check.failing_rows == 3
    assert check.examples == [-100.0, 0.0, "inf"]  # non-finite floats become text so the JSON stays strict
    assert report.check("allowed_amount_positive").passed
    # Rows 1 and 2 now also allow more than was billed; that is a second, genuine violation.
    assert report.check("allowed_within_billed").failing_rows == 2


def test_allowed_amount_must_be_positive(frame):
    frame.loc[[6, 7], "allowed_amount"] = [-5.0, -np.inf]
    check = validate(frame).check("allowed_amount_positive")
    assert check.failing_rows == 2 and check.examples == [-5.0, "-inf"]


@pytest.mark.parametrize("storage", ["categorical", "object"])
def test_unknown_categories(frame, storage):
    if storage == "categorical":
        frame["provider_type"] = frame["provider_type"].cat.add_categories(["Spaceship"])
        frame["outcome"] = frame["outcome"].cat.add_categories(["Maybe", "approved", "Unused"])
    else:
        frame = as_object(as_object(frame, "provider_type"), "outcome")
    frame.loc[[1, 2, 3], "provider_type"] = "Spaceship"
    frame.loc[3, "outcome"] = "Maybe"
    frame.loc[4, "outcome"] = "approved"
    report = validate(frame)
    assert only_failures(report) == {"allowed_categories"}
    check = report.check("allowed_categories")
    assert check.failing_rows == 4  # rows 1-4; row 3 has two bad cells but counts once
    assert check.examples == ["Spaceship", "Maybe", "approved"]
    assert "provider_type, outcome" in check.detail


def test_nulls_are_counted_once_and_only_by_no_nulls(frame):
    frame["patient_age"] = frame["patient_age"].astype(float)
    frame.loc[[4, 5], "patient_age"] = np.nan
    frame.loc[5, "diagnosis_group"] = None
    frame.loc[8, "service_date"] = pd.NaT
    report = validate(frame)
    assert only_failures(report) == {"no_nulls"}
    check = report.check("no_nulls")
    assert check.failing_rows == 3
    assert check.examples == ["service_date: 1 null", "diagnosis_group: 1 null", "patient_age: 2 null"]
    assert "service_date, diagnosis_group, patient_age" in check.detail


def test_duplicate_claim_ids(frame):
    ids = frame["claim_id"].to_numpy().copy()
    ids[[3, 7]] = ids[1]
    ids[20] = ids[10]
    frame["claim_id"] = ids
    report = validate(frame)
    assert only_failures(report) == {"unique_claim_id"}
    check = report.check("unique_claim_id")
    assert check.failing_rows == 5  # every row involved: three sharing one id, two sharing another
    assert check.examples == [int(ids[1]), int(ids[10])]
    assert "drop_duplicates" in check.detail


def test_text_amounts_fail_the_dtype_check(frame):
    formatted = [f"{v:,.2f}" for v in frame["billed_amount"]]
    frame["billed_amount"] = formatted
    report = validate(frame)
    check = report.check("dtypes")
    assert not check.passed and check.failing_rows == N
    assert check.examples == formatted[:MAX_EXAMPLES]
    assert "billed_amount" in check.detail and "pd.to_numeric" in check.detail
    # The value checks on that column cannot run, and say why instead of passing silently.
    for name in ("billed_amount_positive", "allowed_within_billed"):
        skipped = report.check(name)
        assert not skipped.passed and skipped.failing_rows == 0
        assert "billed_amount is of the wrong type" in skipped.detail
    assert report.check("allowed_amount_positive").passed


def test_mixed_types_count_only_the_bad_cells(frame):
    frame = as_object(frame, "patient_age")
    frame.loc[[3, 4], "patient_age"] = ["forty", True]
    frame = as_object(frame, "cpt_bucket")
    frame.loc[4, "cpt_bucket"] = 3
    frame["service_date"] = frame["service_date"].astype(str)
    report = validate(frame)
    check = report.check("dtypes")
    assert check.failing_rows == N  # every service_date is text
    assert check.examples[:2] == ["forty", "True"]
    assert "patient_age" in check.detail and "service_date" in check.detail and "pd.to_datetime" in check.detail


def test_duplicated_column_name(frame):
    doubled = pd.concat([frame, frame[["billed_amount"]] * -1], axis=1)
    report = validate(doubled)
    check = report.check("required_columns")
    assert not check.passed and check.examples == ["duplicate column: billed_amount"]
    assert report.check("billed_amount_positive").passed  # the first copy is the one checked


@pytest.mark.parametrize("value", [None, [1, 2], {"a": 1}, "claims.csv", 3.5, np.zeros((3, 3)), pd.Series([1])])
def test_non_dataframe_input(value):
    report = validate(value)
    assert_well_formed(report, 0)
    assert not report.passed and len(report.failed_checks) == len(CHECK_NAMES)
    assert "Expected a pandas DataFrame" in report.checks[0].detail


def test_frame_without_columns():
    report = validate(pd.DataFrame())
    assert_well_formed(report, 0)
    assert only_failures(report) == set(CHECK_NAMES)  # nothing to evaluate, so nothing may pass
    assert len(report.check("required_columns").examples) == MAX_EXAMPLES
    assert report.check("unique_claim_id").detail.startswith("Not evaluated because claim_id is missing")


def test_examples_are_short_and_json_safe(frame):
    frame = as_object(frame, "cpt_bucket")
    frame.loc[0, "cpt_bucket"] = "\ud800 lone surrogate"
    frame.loc[1, "cpt_bucket"] = "x" * 500
    frame["claim_id"] = frame["claim_id"].astype(object)
    frame.loc[[2, 3], "claim_id"] = 2**70  # above 2**53, so reported as text to keep JavaScript from rounding
    report = validate(frame)
    assert_well_formed(report, N)
    assert report.check("allowed_categories").examples == ["\\ud800 lone surrogate", "x" * 59 + "…"]
    assert report.check("unique_claim_id").examples == [str(2**70)]


def test_report_helpers(frame):
    report = validate(frame)
    assert report.check("dtypes").passed
    with pytest.raises(KeyError):
        report.check("no_such_check")


# --- fuzz --------------------------------------------------------------------------------------------------------

class _Hostile:
    """A cell value whose every dunder fails, as a stand-in for arbitrary objects from upstream code."""

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __hash__(self):
        raise RuntimeError("hash")

    def __str__(self):
        raise RuntimeError("str")

    __repr__ = __str__


JUNK = ["", " ", "\u200b", "\ud83d", "\U0001f4a9", "Surgery ", "surgery", "ｓｕｒｇｅｒｙ", "\x00", "\u202eevil",
        "1,234.50", "$12", "NaN", "nan", "None", "inf", "-0", "1e400", "٣", "2025-13-45"]
ODD = [None, np.nan, np.inf, -np.inf, 1e308, -1e308, 2**70, -(2**63), 0, -1, True, b"\xff\xfe", Decimal("NaN"),
       Decimal("1e999"), 1 + 2j, [1, 2], {"a": 1}, (1,), {1}, pd.NaT, pd.Timestamp("2025-01-01", tz="UTC"),
       np.datetime64("NaT"), pd.Timedelta("1D"), date(2025, 1, 1), object(), _Hostile(), np.float32(3.5)]


def _mutate(frame: pd.DataFrame, rng: np.random.Generator) -> object:
    """Apply a few random corruptions; sometimes replace the frame with something else entirely."""
    roll = rng.random()
    if roll < 0.03:
        return [None, [], {}, "frame", 0, pd.Series(dtype=float), pd.DataFrame()][rng.integers(7)]
    if roll < 0.08:
        frame = frame.iloc[:0]
    for _ in range(rng.integers(1, 5)):
        n, width = frame.shape
        if width == 0:
            break
        j = int(rng.integers(width))  # positional, because names may be duplicated by an earlier step
        column, action = frame.iloc[:, j], rng.integers(10)
        if action == 0:
            frame = frame.iloc[:, [k for k in range(width) if k != j]]
        elif action == 1:
            with contextlib.suppress(ValueError, TypeError, RuntimeError):  # astype(str) chokes on bytes/_Hostile
                frame.isetitem(j, column.astype(str))
        elif action == 2:
            frame.isetitem(j, pd.Series([JUNK[i] for i in rng.integers(len(JUNK), size=n)], dtype=object))
        elif action == 3:
            frame.isetitem(j, pd.Series([ODD[i] for i in rng.integers(len(ODD), size=n)], dtype=object))
        elif action == 4:
            try:
                with warnings.catch_warnings():  # complex cells warn as they lose their imaginary part
                    warnings.simplefilter("ignore")
                    values = pd.to_numeric(column, errors="coerce").to_numpy(float, na_value=np.nan, copy=True)
            except (ValueError, TypeError, RuntimeError, OverflowError):  # _Hostile and friends are not numbers
                values = rng.random(n)
            values[rng.random(n) < 0.3] = [np.nan, np.inf, -np.inf, 1e300, -1e300, -5.0][rng.integers(6)]
            frame.isetitem(j, values)
        elif action == 5:
            frame = pd.concat([frame, frame.iloc[:, [j]]], axis=1)  # duplicated column name
        elif action == 6:
            frame[["extra", 17, ("a", "b"), None][rng.integers(4)]] = rng.random(n)
        elif action == 7:
            frame = frame.sample(frac=1.0, replace=True, random_state=int(rng.integers(1000)))  # dup index/ids
        elif action == 8:
            dtype = ["int8", "uint64", "bool", "float16"][rng.integers(4)]
            frame.isetitem(j, rng.integers(-5, 5, size=n).astype(dtype))
        else:
            frame.isetitem(j, pd.Categorical(rng.integers(0, 3, size=n)))
    return frame


def test_fuzz_never_raises_and_always_reports():
    rng = np.random.default_rng(20250101)
    base = claims.generate_claims(30, seed=3)
    outcomes = set()
    for _ in range(400):  # ~1 s; pytest --durations shows it if it ever creeps towards the 5 s budget
        candidate = _mutate(base.copy(), rng)
        report = validate(candidate)
        assert_well_formed(report, len(candidate) if isinstance(candidate, pd.DataFrame) else 0)
        outcomes.update(c.name for c in report.failed_checks)
    assert set(CHECK_NAMES) <= outcomes  # the corruptions reached every check
