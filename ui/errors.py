"""What a visitor sees when a page fails: a short message saying what failed and what to do, never a traceback
or a secret. The server log gets the whole error, every password masked (engine.config.mask_exception).

Three doors lead to the one `report`:
- `run(page)` runs the page st.navigation chose (navigation.py's last line);
- `guard(fn)` wraps what Streamlit runs outside that call: a fragment's body (its timer reruns only the
  fragment) and a widget's callback (run before the page);
- `on_script_error(exc)` is for `st.App(on_script_error=...)`: whatever still escapes (navigation.py's code
  before the page, a fragment or callback nobody guarded, a page run without navigation.py) is shown the same
  way instead of Streamlit's error box.
Importing this module installs the log masking (engine.logmask) once, so Streamlit's and MLflow's own logs of
an error are masked too.
"""
from __future__ import annotations

import functools
import sqlite3
import time
from typing import Callable

import sqlalchemy as sa
import streamlit as st
from streamlit.errors import FragmentHandledException
from streamlit.logger import get_logger

from engine import BadInput, IllegalTransition, Refused, logmask, shared
from engine.config import env_secrets, exception_chain, mask_exception
from engine.tracking import MlflowUnreachable
from ui import icons

log = get_logger("lab.ui")  # Streamlit's handler and format: beside its own lines in the server log, timestamped
logmask.install()

DATABASE_DOWN = ("The lab's database does not answer, so this cannot be shown right now. Try again in a minute; "
                 "if it lasts, tell the lab's operator to check the database.")
MLFLOW_DOWN = ("MLflow (the tracking server and model registry) does not answer as expected, so this cannot be "
               "shown right now. Try again in a minute; if it lasts, tell the lab's operator to check MLflow.")
UNEXPECTED = ("Something went wrong on the lab's server ({name}). Reload the page; if it happens again, tell the "
              "lab's operator (the server log has the details).")
REFUSALS = (BadInput, Refused, IllegalTransition)  # the engine's own messages, written for people
REFUSAL_CHARS = 2000  # such a message is shown whole (it may list every allowed value)
# A hung database fails every timer tick of every visitor: the whole traceback once in a while, one line between.
REPEAT_SECONDS = 300.0
_logged: dict[tuple, float] = {}


def run(page) -> None:
    """Run the page st.navigation chose; whatever escapes it is reported (shown and logged), never raised."""
    try:
        page.run()
    except FragmentHandledException:
        raise  # a fragment's error, already logged and shown by Streamlit (through on_script_error): not twice
    except Exception as exc:
        report(exc, f"page {page.url_path or page.title}")


def guard(fn: Callable) -> Callable:
    """`fn` (a fragment body or a widget callback) reporting what escapes it instead of raising; it then returns
    None. The name and module stay `fn`'s, so a fragment keeps its identity."""
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            report(exc, fn.__qualname__)
            return None
    return guarded


def on_script_error(exc: Exception) -> bool:
    """For st.App(on_script_error=...): show the short message in place of Streamlit's error box (Streamlit has
    logged the error already, masked by engine.logmask). True when shown."""
    try:
        show(exc)
        return True
    except Exception:  # nowhere to write: Streamlit's own box, which showErrorDetails = "none" keeps bare
        return False


def report(exc: BaseException, where: str) -> None:
    """Show `exc` to the visitor as a short message and log it, masked, on the server (a database outage once for
    the whole server, by engine.shared.DATABASE, not once per page that meets it)."""
    if kind_of(exc) == "database":
        shared.DATABASE.failed(exc)
    else:
        log_error(exc, where)
    show(exc)


def show(exc: BaseException) -> None:
    """The visitor's message for `exc`: what failed and what to do."""
    kind = kind_of(exc)
    st.error(message(exc, kind), icon=icons.OFFLINE if kind in ("database", "mlflow") else
             icons.REFUSED if kind == "refused" else icons.ERROR)


def kind_of(exc: BaseException) -> str:
    """What failed: "refused" (the engine's own refusal), "mlflow" or "database" (one did not answer, anywhere
    in the chain), else "unexpected"."""
    if isinstance(exc, REFUSALS):
        return "refused"
    chain = list(exception_chain(exc))
    if any(_from_mlflow(e) for e in chain):
        return "mlflow"
    if any(_from_database(e) for e in chain):
        return "database"
    return "unexpected"


def message(exc: BaseException, kind: str | None = None) -> str:
    """The sentence a visitor reads for `exc`: only a refusal's own (masked) text ever reaches the page."""
    kind = kind or kind_of(exc)
    if kind == "refused":
        return first_line(exc, REFUSAL_CHARS)
    return {"database": DATABASE_DOWN, "mlflow": MLFLOW_DOWN}.get(kind) or UNEXPECTED.format(name=type(exc).__name__)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of `exc`'s message (its type's name when it has none), every password masked, cut to
    `limit` characters: a one-line message on the page (a server may answer with a whole HTML page)."""
    return mask_exception(exc, env_secrets()).splitlines()[0][:limit]


def log_error(exc: BaseException, where: str) -> None:
    """Log `exc` masked: its whole traceback (chain included) the first time in REPEAT_SECONDS, one line after."""
    summary = mask_exception(exc, env_secrets()).splitlines()[0][:300]
    key, now = (where, type(exc).__name__, summary), time.monotonic()
    if now - _logged.get(key, -REPEAT_SECONDS) < REPEAT_SECONDS:
        log.warning("%s failed again: %s: %s", where, type(exc).__name__, summary)
        return
    if len(_logged) > 256:  # distinct errors are few; never let the memory of them grow
        _logged.clear()
    _logged[key] = now
    log.error("%s failed:\n%s", where, mask_exception(exc, env_secrets(), full=True).rstrip())


# A database that did not answer: SQLAlchemy's wrapping, or the driver's own error where the store retries a lock.
DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sqlite3.OperationalError)


def _from_database(exc: BaseException) -> bool:
    name, root = type(exc).__name__, type(exc).__module__.split(".")[0]
    return isinstance(exc, DATABASE_ERRORS) or (root == "psycopg2" and name in ("OperationalError", "InterfaceError"))


def _from_mlflow(exc: BaseException) -> bool:
    root = type(exc).__module__.split(".")[0]
    return isinstance(exc, MlflowUnreachable) or root in ("mlflow", "requests", "urllib3")
