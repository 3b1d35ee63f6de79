"""The one CSV writer of the lab: every CSV it produces (CLI, dashboard downloads) goes through here.

A cell that a spreadsheet would read as a formula is neutralised by OWASP's rule: a cell that begins with `=`,
`+`, `-`, `@`, a tab or a carriage return gets a leading `'`. A commit message `=HYPERLINK(...)` then opens as
text, not as a live formula. Numbers are written as numbers (a negative number is not a formula).
"""
from __future__ import annotations

import csv
import io
from typing import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> object:
    """`value` safe for a spreadsheet cell: text starting like a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: Iterable[dict], fields: list[str] | tuple[str, ...]) -> str:
    """CSV text with a header of `fields` and one line per row (missing fields empty), every cell neutralised."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([neutralise(f) for f in fields])
    for row in rows:
        w.writerow([neutralise("" if row.get(f) is None else row.get(f)) for f in fields])
    return buf.getvalue()


def frame_to_csv(frame) -> str:
    """A pandas DataFrame (its columns, as shown) as CSV text, every text cell neutralised."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind not in "biufcmM":  # only text can start like a formula
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out.to_csv(index=False, lineterminator="\n")
