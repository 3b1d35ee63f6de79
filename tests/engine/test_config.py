"""Masking what may carry a password: URLs in free text, exception messages and their chained causes, and the
secrets the environment holds."""
from __future__ import annotations

import pytest

from engine.config import env_secrets, exception_chain, mask_exception, mask_text, mask_url


@pytest.mark.parametrize("text, masked", [
    ("API request to http://user:PASSWORD@127.0.0.1:9/api/2.0/x failed",
     "API request to http://user:***@127.0.0.1:9/api/2.0/x failed"),
    ("postgresql+psycopg2://lab:pa:ss@db:5432/lab", "postgresql+psycopg2://lab:***@db:5432/lab"),
    ("url='https://:token@host/path'", "url='https://:***@host/path'"),
    ("two: s3://k:v@bucket/a and http://u:p@h:1", "two: s3://k:***@bucket/a and http://u:***@h:1"),
    ("a password with an at: http://u:p@ss@host/", "a password with an at: http://u:***@host/"),
    ("no password: http://user@host:5000/ and mailto:a@b", "no password: http://user@host:5000/ and mailto:a@b"),
    ("http://u:***@h", "http://u:***@h"),  # masking twice changes nothing
])
def test_every_url_password_in_free_text_is_masked(text, masked):
    assert mask_text(text) == masked


def test_named_secrets_are_masked_anywhere_longest_first():
    assert mask_text("key=abcdef; part abc", ["abc", "abcdef"]) == "key=***; part ***"


def _chained() -> Exception:
    """An error raised from one raised while handling another, each quoting a URL with its password."""
    try:
        try:
            raise ConnectionRefusedError("connect to http://u:FIRST@127.0.0.1:9 refused")
        except OSError:
            raise ValueError("retrying http://u:SECOND@127.0.0.1:9")  # implicit chaining: __context__
    except ValueError as exc:
        try:
            raise RuntimeError("API request to http://u:THIRD@127.0.0.1:9/api failed") from exc  # __cause__
        except RuntimeError as outer:
            return outer


def test_an_exception_is_masked_with_its_whole_chain():
    exc = _chained()
    assert [type(e).__name__ for e in exception_chain(exc)] == ["RuntimeError", "ValueError",
                                                               "ConnectionRefusedError"]
    short, full = mask_exception(exc), mask_exception(exc, full=True)
    assert short.splitlines() == ["API request to http://u:***@127.0.0.1:9/api failed",
                                  "retrying http://u:***@127.0.0.1:9", "connect to http://u:***@127.0.0.1:9 refused"]
    assert "direct cause" in full and "During handling" in full and "Traceback" in full
    assert not [p for p in ("FIRST", "SECOND", "THIRD") if p in short + full]


def test_a_chain_that_loops_ends_and_a_suppressed_context_is_left_out():
    a, b = ValueError("a"), KeyError("b")
    a.__context__, b.__context__ = b, a
    assert [str(e) for e in exception_chain(a)] == ["a", "'b'"]
    c = RuntimeError("c")
    c.__context__, c.__suppress_context__ = a, True  # raise ... from None
    assert mask_exception(c) == "c"


def test_an_exception_without_a_message_reads_as_its_type():
    assert mask_exception(TimeoutError()) == "TimeoutError"


def test_the_environment_secrets_are_url_passwords_raw_and_decoded_and_keys():
    env = {"DATABASE_URL": "postgresql://lab:p%40ss@db/lab", "MLFLOW_TRACKING_URI": "http://u:tok@mlflow:5000",
           "AWS_SECRET_ACCESS_KEY": "minio-secret", "MLFLOW_UI_URL": "http://127.0.0.1:5000"}
    assert env_secrets(env) == ("minio-secret", "p%40ss", "p@ss", "tok")
    assert env_secrets({}) == ()


def test_mask_url_still_masks_one_url():
    assert mask_url("postgresql+psycopg2://lab:secret@db:5432/lab") == "postgresql+psycopg2://lab:***@db:5432/lab"
