"""The lab's one CSV writer: OWASP's rule for formula cells, applied to every cell, numbers left alone."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from engine.csvsafe import frame_to_csv, neutralise, to_csv


@pytest.mark.parametrize("cell, written", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), ("a=b", "a=b"), ("", ""), (-3, -3), (2.5, 2.5), (None, None),
])
def test_neutralise_prefixes_only_text_that_starts_like_a_formula(cell, written):
    assert neutralise(cell) == written


def test_to_csv_neutralises_every_cell_and_round_trips_the_rest():
    rows = [{"id": 1, "message": '=HYPERLINK("http://x","y")', "author": "ann"},
            {"id": -2, "message": "fine, with a comma", "author": None}]
    parsed = list(csv.reader(io.StringIO(to_csv(rows, ["id", "message", "author"]))))
    assert parsed == [["id", "message", "author"], ["1", '\'=HYPERLINK("http://x","y")', "ann"],
                      ["-2", "fine, with a comma", ""]]


def test_frame_to_csv_writes_missing_values_as_empty_cells():
    frame = pd.DataFrame({"note": ["@x", None], "n": [1.5, float("nan")]})
    assert frame_to_csv(frame) == "note,n\n'@x,1.5\n,\n"
