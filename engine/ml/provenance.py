"""Which rows each part of a run is, and a digest that identifies them.

MLflow's own pandas digest hashes only the first 10,000 rows and the row count, and skips datetime columns, so
two training sets that differ after row 10,000, or only in their dates, get the same digest. `frame_digest`
hashes every cell instead:

    SHA-256( n_rows, then for each column in name order: its name, pd.util.hash_pandas_object(column) )

`hash_pandas_object` gives one 64-bit hash per cell, by value: categories hash as their labels (a categorical
column and the same strings as objects agree), datetimes as their instants, missing values consistently. The
index is left out (a sample keeps the feed's row labels; the claim id is a column anyway), the row order is
not. The hex digest is cut to 32 characters (128 bits) because MLflow stores a dataset digest in 36.

The splits are seeded and keep each part in the order of the frame it was carved from, so a step that needs the
rows another step trained on (mlflow_log_ci after ci_quick_train) recomputes them exactly, and the digest proves
it.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

DIGEST_CHARS = 32


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of every row and column of `frame` (column order does not matter; row order does)."""
    h = hashlib.sha256(f"rows={len(frame)}".encode())
    for column in sorted(frame.columns, key=str):
        name = str(column).encode()
        h.update(len(name).to_bytes(8, "little") + name)  # the length keeps "ab"+"c" apart from "a"+"bc"
        h.update(pd.util.hash_pandas_object(frame[column], index=False).to_numpy().tobytes())
    return h.hexdigest()[:DIGEST_CHARS]


def carve(frame: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, carved): a seeded random `share` of the rows carved out; both parts keep the frame's order."""
    if not 0 < share < 1:
        raise ValueError(f"share {share!r} must be between 0 and 1 (exclusive): the share of rows to carve out")
    n = len(frame)
    chosen = np.zeros(n, dtype=bool)
    chosen[np.random.default_rng(seed).permutation(n)[: round(share * n)]] = True
    return frame[~chosen], frame[chosen]


def quick_parts(feed: pd.DataFrame, sample_rows: int, holdout_share: float, validation_share: float,
                seed: int) -> dict[str, pd.DataFrame]:
    """CI's rows by MLflow context: a seeded sample of the feed split into training, validation and evaluation."""
    sample = feed.sample(min(int(sample_rows), len(feed)), random_state=seed)
    rest, holdout = carve(sample, holdout_share, seed)
    training, validation = carve(rest, validation_share, seed + 1)
    return {"training": training, "validation": validation, "evaluation": holdout}


def described(parts: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """{context: {rows, digest}} for the step outputs."""
    return {context: {"rows": len(frame), "digest": frame_digest(frame)} for context, frame in parts.items()}
