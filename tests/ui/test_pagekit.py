"""Run ids strangers type into a URL: only ASCII digits, no more than an id can have, from 1 to the largest id."""
from __future__ import annotations

import pytest

from engine.lab import MAX_RUN_ID
from tests.ui.conftest import open_page
from tests.ui.test_common import BAD_RUN_IDS
from ui import errors
from ui.pagekit import strict_int


@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("0042", 42), (str(MAX_RUN_ID), MAX_RUN_ID),
    ("²", None), ("١٢", None), ("1_000", None), (" 7", None), ("7 ", None), ("+7", None), ("-1", None),
    ("0", None), ("1e3", None), ("", None), (None, None), (str(MAX_RUN_ID + 1), None), ("9" * 19, None),
    ("1" * 20, None), ("1" * 5000, None),
], ids=lambda v: repr(v)[:14])
def test_only_ascii_digits_of_a_possible_id_are_a_run_id(text, expected):
    assert strict_int(text) == expected


@pytest.mark.parametrize("page", ["runs", "tour-2-ci"])
@pytest.mark.parametrize("value", BAD_RUN_IDS, ids=lambda v: repr(v[:12]))
def test_pages_that_read_a_run_from_the_url_ignore_what_is_not_a_run_id(seeded_dir, page, value):
    at = open_page(page, timeout=120)
    at.query_params["run"] = value
    at.run()
    assert not at.exception
    assert not [e.value for e in at.error if e.value.startswith(errors.UNEXPECTED[:30])]
