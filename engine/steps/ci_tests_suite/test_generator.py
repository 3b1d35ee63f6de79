"""The claims generator keeps its promises."""
import pandas.testing as pdt

from engine.ml.claims import CATEGORIES, COLUMNS, generate_claims


def test_same_seed_same_frame():
    pdt.assert_frame_equal(generate_claims(500, 7), generate_claims(500, 7))


def test_invariants():
    df = generate_claims(5000, 11)
    assert tuple(df.columns) == COLUMNS
    assert (df.allowed_amount <= df.billed_amount).all() and (df.billed_amount > 0).all()
    assert df.patient_age.between(0, 110).all() and df.claim_id.is_unique
    for col, cats in CATEGORIES.items():
        assert set(df[col].astype(str)) <= set(cats)
