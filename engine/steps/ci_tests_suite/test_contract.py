"""The data contract accepts good data and names what is wrong with bad data."""
from engine.ml.claims import generate_claims
from engine.ml.validation import validate


def test_generated_claims_pass_the_contract():
    assert validate(generate_claims(2000, 3)).passed


def test_missing_column_is_named():
    report = validate(generate_claims(200, 3).drop(columns=["patient_age"]))
    assert not report.passed
    assert any("patient_age" in c.detail for c in report.failed_checks)


def test_allowed_above_billed_is_caught():
    df = generate_claims(200, 3)
    df.loc[:9, "allowed_amount"] = df.loc[:9, "billed_amount"] + 1
    failed = {c.name: c for c in validate(df).failed_checks}
    assert any(c.failing_rows == 10 for c in failed.values())
