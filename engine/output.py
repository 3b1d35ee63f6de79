"""How the lab answers a program, the same from the CLI (engine/__main__.py) and the HTTP API (api/): JSON with
ISO 8601 times, CSV with formula cells neutralised, and one line for an error with what it means (exit code,
HTTP status).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from engine.config import env_secrets, mask_exception, mask_text, mask_url
from engine.csvsafe import to_csv
from engine.errors import BadInput, Limited, NotFound, Refused
from engine.records import AuditEntry, Run, Step
from engine.states import IllegalTransition

RUN_CSV_FIELDS = ("id", "sha", "message", "author", "seed", "dataset_window", "status", "created_at",
                  "finished_at", "failure_modes")
RECORDS = (Run, Step, AuditEntry)
MAX_MESSAGE = 2000  # characters of an error line: the messages quote bad input cut short, this bounds the rest
# Keys whose float values are epoch seconds; the CLI and the API write them as ISO 8601 UTC.
TIME_KEYS = frozenset({"created_at", "updated_at", "finished_at", "queued_at", "started_at", "heartbeat_at", "ts",
                       "since", "until", "at"})


def iso_times(obj):
    """`obj` with records as their dicts (engine/records.py `as_dict()`) and epoch-second timestamps (keys in
    TIME_KEYS) written as ISO 8601 UTC strings."""
    if isinstance(obj, RECORDS):
        obj = obj.as_dict()
    if isinstance(obj, dict):
        return {k: (datetime.fromtimestamp(v, timezone.utc).isoformat()
                    if k in TIME_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool) else iso_times(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [iso_times(v) for v in obj]
    return obj


def to_json(obj) -> str:
    """`obj` as the CLI prints it on stdout (and the API answers it): indented JSON, times in ISO 8601 UTC."""
    return json.dumps(iso_times(obj), indent=2, default=str)


def runs_csv(rows: list[Run] | list[dict], fields=RUN_CSV_FIELDS) -> str:
    """Runs as CSV text, one row per run, in the given order (times ISO 8601, formula cells neutralised)."""
    return to_csv([{k: (";".join(v) if isinstance(v, list) else v) for k, v in iso_times(r).items()}
                   for r in rows], fields)


def database_error(exc: Exception, url: str | None) -> str:
    """One line for a database that did not answer, naming where it is (password masked) and what to check."""
    from engine.outage import first_line
    where = mask_url(url) if url else "the database"
    cause = first_line(getattr(exc, "orig", None) or exc)
    return (f"failed: the database at {where} did not answer in time or refused the connection ({cause}); "
            "check that it runs and that DATABASE_URL points at it")


@dataclass(frozen=True)
class Failure:
    """An error as the lab reports it: `kind`, the CLI's exit code, its HTTP status, and the one line both say."""

    kind: str       # bad_input, not_found, refused, limited, database or failed
    exit_code: int  # 2 bad input, 3 refused (nothing changed), 1 anything else
    http: int
    message: str


def failure(exc: BaseException, database_url: str | None = None) -> Failure:
    """What an error means to a caller: the CLI prints `message` on stderr and exits with `exit_code`; the API
    answers `http` with the same message. Unexpected errors get one line, passwords and keys masked; no message
    is longer than MAX_MESSAGE characters, whatever input it quotes."""
    found = _failure(exc, database_url)
    if len(found.message) <= MAX_MESSAGE:
        return found
    head, tail = found.message[:MAX_MESSAGE * 2 // 3], found.message[-MAX_MESSAGE // 4:]
    return replace(found, message=f"{head} ... ({len(found.message):,} characters in all) ... {tail}")


def _failure(exc: BaseException, database_url: str | None) -> Failure:
    import sqlalchemy as sa
    if isinstance(exc, NotFound):
        return Failure("not_found", 2, 404, f"error: {exc}")
    if isinstance(exc, BadInput):
        return Failure("bad_input", 2, 422, f"error: {exc}")
    if isinstance(exc, Limited):  # the demo's cap or pacing: the same action may work in a while
        return Failure("limited", 3, 429, f"refused: {exc} (nothing was changed)")
    if isinstance(exc, (IllegalTransition, Refused)):
        return Failure("refused", 3, 409, f"refused: {exc} (nothing was changed)")
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return Failure("database", 1, 503, mask_text(database_error(exc, database_url), env_secrets()))
    first = mask_exception(exc, env_secrets()).strip().splitlines()[0][:300]  # never empty: the type at least
    return Failure("failed", 1, 500, f"failed: {type(exc).__name__}: {first}")
