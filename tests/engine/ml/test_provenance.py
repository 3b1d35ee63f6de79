"""Provenance: the frame digest sees every cell (where MLflow's own does not), and the seeded splits."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from engine.ml.claims import APPROVED, DENIED, TARGET, generate_claims
from engine.ml.provenance import DIGEST_CHARS, carve, described, frame_digest, quick_parts

ROWS = 12_000  # beyond the 10,000 rows MLflow's own digest looks at


@pytest.fixture(scope="module")
def frame():
    return generate_claims(ROWS, seed=5)


def _changed(frame: pd.DataFrame, column: str, row: int) -> pd.DataFrame:
    """`frame` with one cell of `column` changed to another valid value of its type."""
    out = frame.copy()
    value = out[column].iloc[row]
    if column == TARGET:
        new = DENIED if value == APPROVED else APPROVED
    elif isinstance(out[column].dtype, pd.CategoricalDtype):
        new = next(c for c in out[column].cat.categories if c != value)
    elif column == "service_date":
        new = value + pd.Timedelta(days=1)
    else:
        new = value + 1
    out.iloc[row, out.columns.get_loc(column)] = new
    assert out[column].iloc[row] != frame[column].iloc[row] and out.dtypes.equals(frame.dtypes)
    return out


def test_the_same_frame_gives_the_same_digest(frame):
    assert frame_digest(frame) == frame_digest(frame.copy()) == frame_digest(generate_claims(ROWS, seed=5))
    assert len(frame_digest(frame)) == DIGEST_CHARS and int(frame_digest(frame), 16) >= 0
    assert frame_digest(frame) != frame_digest(generate_claims(ROWS, seed=6))


@pytest.mark.parametrize("row", [0, ROWS // 2, ROWS - 1])
@pytest.mark.parametrize("column", list(generate_claims(1, seed=0).columns))
def test_any_single_cell_changes_the_digest(frame, column, row):
    assert frame_digest(_changed(frame, column, row)) != frame_digest(frame)


def test_mlflow_alone_misses_what_the_digest_sees(frame):
    """Why the lab passes its own digest: MLflow's ignores the last rows and the dates."""
    def mlflow_digest(f):
        return mlflow.data.from_pandas(f, targets=TARGET).digest
    for changed in (_changed(frame, "billed_amount", ROWS - 1), _changed(frame, "service_date", 0)):
        assert mlflow_digest(changed) == mlflow_digest(frame)
        assert frame_digest(changed) != frame_digest(frame)


def test_row_order_counts_column_order_and_index_do_not(frame):
    assert frame_digest(frame[list(reversed(frame.columns))]) == frame_digest(frame)
    assert frame_digest(frame.set_axis(np.arange(ROWS) + 7)) == frame_digest(frame)
    assert frame_digest(frame.iloc[::-1]) != frame_digest(frame)
    assert frame_digest(frame.head(ROWS - 1)) != frame_digest(frame)
    assert frame_digest(frame.rename(columns={"patient_age": "age"})) != frame_digest(frame)


def test_categories_digest_as_their_labels(frame):
    as_text = frame.astype({"cpt_bucket": object})
    assert frame_digest(as_text) == frame_digest(frame)


def test_carve_splits_every_row_once_keeping_order(frame):
    kept, carved = carve(frame, 0.2, seed=3)
    assert (len(kept), len(carved)) == (ROWS - round(0.2 * ROWS), round(0.2 * ROWS))
    assert sorted(kept.index.tolist() + carved.index.tolist()) == frame.index.tolist()
    assert kept.index.is_monotonic_increasing and carved.index.is_monotonic_increasing
    again_kept, again_carved = carve(frame, 0.2, seed=3)
    assert again_carved.index.equals(carved.index)
    assert not carve(frame, 0.2, seed=4)[1].index.equals(carved.index)


@pytest.mark.parametrize("share", [0, 1, -0.1, 1.5])
def test_carve_refuses_a_share_outside_zero_to_one(frame, share):
    with pytest.raises(ValueError, match="between 0 and 1"):
        carve(frame, share, seed=1)


def test_quick_parts_are_disjoint_seeded_and_described(frame):
    parts = quick_parts(frame, sample_rows=8000, holdout_share=0.25, validation_share=0.2, seed=9)
    assert {k: len(v) for k, v in parts.items()} == {"training": 4800, "validation": 1200, "evaluation": 2000}
    ids = [set(p["claim_id"]) for p in parts.values()]
    assert sum(map(len, ids)) == len(set().union(*ids)) == 8000
    again = quick_parts(frame, sample_rows=8000, holdout_share=0.25, validation_share=0.2, seed=9)
    assert described(again) == described(parts)
    assert described(parts)["training"] == {"rows": 4800, "digest": frame_digest(parts["training"])}
