"""A run's data: the claims its steps train and judge on.

A commit's run replays its seed, window and data shift through the generator (engine/ml/claims.py); a retrain on
production data reads the labelled production claims copied for it when it was committed (engine/store.py
run_claims). Below the runner and the stream, so both (and Lab) read a run's data the same way.
"""
from __future__ import annotations

from engine import failures
from engine.records import Run
from engine.store import Store


def production_of(run: Run) -> dict | None:
    """What a retrain on production data was committed with (its claim ranges), or None for any other run."""
    return (run.origin or {}).get("production")


def run_feed(run: Run, rows: int, store: Store | None = None):
    """A run's claims: the first `rows` of its seed, window and data shift, or for a retrain on production data
    the labelled production claims it was committed with (read from `store`); the schema failure mode drops a
    column."""
    from engine.ml.claims import Shift, generate_claims
    if production_of(run):
        frame = production_claims(store, run, "training", rows)
    else:
        frame = generate_claims(rows, run.seed, run.dataset_window, Shift(**(run.shift or {})))
    if "schema_validation" in (run.failure_modes or ()):
        frame = failures.drop_schema_column(frame)
    return frame


def production_claims(store: Store, run: Run, part: str, rows: int | None = None):
    """The first `rows` of a production retrain's copied claims of `part` ("training": the older ones it trains on,
    "evaluation": the newest, which it never trains on), oldest first."""
    from engine.ml.claims import stored_frame
    return stored_frame(store.run_claims(run.id, part, rows))
