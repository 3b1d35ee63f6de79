"""No visitor sees a traceback or a secret (ui/errors.py).

Every page is opened through navigation.py, as a browser opens it, with MLflow down and with the database hung,
passwords in the URLs: no page shows a traceback, no element holds a password, and neither does any log record
or anything the process printed. Then each door of ui/errors.py on its own: the fragment and callback guard,
and the on_script_error handler that st.App is given, through Streamlit's own error path.
"""
from __future__ import annotations

import logging
import socket
import tomllib

import pytest
import sqlalchemy as sa

from engine import logmask
from tests.conftest import ROOT, copy_store, free_port, make_settings, store_settings
from tests.ui.conftest import _clear_streamlit_caches, open_page, point_app_at
from ui import errors
from ui.tour import TOUR

DB_PASSWORD, MLFLOW_PASSWORD = "db-pw-Quokka-4711", "mlflow-pw-Wombat-0815"
PASSWORDS = (DB_PASSWORD, MLFLOW_PASSWORD)
# Every page navigation.py lists: each file of pages/, then the walkthrough's pages.
PAGES = [p.stem for p in sorted((ROOT / "pages").glob("*.py"))] + [path for _, _, path in TOUR]
SCENARIOS = ["mlflow down", "mlflow down, runs in the store", "database hung"]


# ---- helpers ----------------------------------------------------------------------------------------------------
def every_text(at) -> str:
    """Every element of an AppTest run as its protobuf text: what the browser would be sent."""
    parts, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        parts.append(str(getattr(node, "proto", "")))
        stack.extend(getattr(node, "children", {}).values())
    return "\n".join(parts)


def errors_of(at) -> list[str]:
    return [e.value for e in at.error]


def mlflow_down() -> str:
    """An MLflow URL with a password where nothing listens (a connection is refused at once)."""
    return f"http://lab:{MLFLOW_PASSWORD}@127.0.0.1:{free_port()}"


@pytest.fixture
def hung_database():
    """A PostgreSQL URL (with a password) of a socket that accepts connections and never answers them."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)  # the kernel completes each handshake; nobody ever reads the startup packet
        yield f"postgresql+psycopg2://lab:{DB_PASSWORD}@127.0.0.1:{server.getsockname()[1]}/lab"


@pytest.fixture
def logged(capfd):
    """A function returning every log record made since the test began (formatted as a handler would print it)
    and everything the process wrote to stdout and stderr."""
    logmask.install()
    records, make = [], logging.getLogRecordFactory()

    def keep(*args, **kwargs):
        records.append(make(*args, **kwargs))
        return records[-1]

    logging.setLogRecordFactory(keep)
    form = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    yield lambda: "\n".join([form.format(r) for r in records] + list(capfd.readouterr()))
    logging.setLogRecordFactory(make)


@pytest.fixture(params=SCENARIOS)
def broken(request, tmp_path, monkeypatch, through_navigation):
    """The app pointed at a broken backend, passwords in its URLs; the scenario's name. "runs in the store" is a
    copy of the played lifecycle (its state store is SQLite: no password there)."""
    _clear_streamlit_caches()
    if request.param == "database hung":
        settings = make_settings(tmp_path / "lab", request.getfixturevalue("hung_database"),
                                 tracking_uri=mlflow_down())
        # Bounded: libpq gives up on a connection that does not answer in 2 s (its floor for connect_timeout).
        monkeypatch.setenv("LAB_DB_CONNECT_TIMEOUT", "1")
        monkeypatch.setenv("LAB_DB_STATEMENT_TIMEOUT", "1")
    elif request.param == "mlflow down":
        # The test server trusts loopback: the password is carried everywhere the URL goes, and never checked.
        url = sa.make_url(request.getfixturevalue("pg_url")).set(password=DB_PASSWORD)
        settings = make_settings(tmp_path / "lab", url.render_as_string(hide_password=False),
                                 tracking_uri=mlflow_down())
    else:
        source = request.getfixturevalue("played_lifecycle")
        settings = store_settings(source, copy_store(source, tmp_path / "lab"), tracking_uri=mlflow_down())
    point_app_at(monkeypatch, settings)
    yield request.param
    if request.param != "database hung":
        from ui.common import get_lab
        get_lab().close()  # the app's lab, cached by the page runs
    _clear_streamlit_caches()


# ---- every page, with a backend broken ---------------------------------------------------------------------------
def test_the_page_list_is_every_page_navigation_shows():
    source = (ROOT / "navigation.py").read_text()
    assert all(f'"pages/{p}.py"' in source for p in PAGES[:5]) and len(PAGES) == 5 + len(TOUR)


def test_no_page_shows_a_traceback_or_a_password(broken, logged):
    runs = {path: open_page(path, timeout=120) for path in PAGES}
    assert not {p: [e.value for e in at.exception] for p, at in runs.items() if at.exception}
    assert not [p for p, at in runs.items() if any(pw in every_text(at) for pw in PASSWORDS)]
    if broken == "database hung":  # every page says what failed and what to do
        assert not [p for p, at in runs.items() if errors.DATABASE_DOWN not in errors_of(at)]
    else:  # the registry's versions come from MLflow alone
        assert errors.MLFLOW_DOWN in errors_of(runs["registry"])
    text = logged()
    assert not [pw for pw in PASSWORDS if pw in text]
    if broken != "database hung":  # the registry's failure was logged, MLflow's URL in it masked
        assert "page registry failed" in text and "http://lab:***@127.0.0.1" in text


def test_the_shipped_config_shows_no_error_details_and_logs_through_the_masking():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["logger"]["enableRich"] is False  # rich prints tracebacks around Python logging


# ---- each door on its own ---------------------------------------------------------------------------------------
# AppTest runs these apps' bodies as scripts of their own, so they spell the passwords out; in two pieces, so that
# no line of their source (which a traceback quotes) holds one.
def _guarded_app():
    import streamlit as st

    from ui import errors as e

    @e.guard
    def act():
        raise ConnectionError(f"API request to http://lab:{'mlflow-pw-' + 'Wombat-0815'}@127.0.0.1:9/api failed")

    @e.guard
    def part():
        raise RuntimeError(f"could not reach postgresql://lab:{'db-pw-' + 'Quokka-4711'}@db:5432/lab")

    st.button("Act", key="act", on_click=act)
    st.fragment(part)()
    st.markdown("drawn after the fragment")


def test_a_guarded_callback_and_fragment_show_a_short_message_and_the_page_goes_on(logged):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_guarded_app).run()
    assert not at.exception and "drawn after the fragment" in [m.value for m in at.markdown]
    assert errors_of(at) == [errors.UNEXPECTED.format(name="RuntimeError")]
    at.button(key="act").click().run()
    assert errors_of(at) == [errors.UNEXPECTED.format(name="ConnectionError"),
                             errors.UNEXPECTED.format(name="RuntimeError")]
    text = logged()
    assert "act failed" in text and "lab:***@127.0.0.1:9" in text and "lab:***@db:5432" in text
    assert not [pw for pw in PASSWORDS if pw in text + every_text(at)]


def _app_with_handler():
    import streamlit as st
    from mlflow.exceptions import MlflowException
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from ui import errors as e

    get_script_run_ctx().on_script_error = e.on_script_error  # what st.App(on_script_error=...) hands every run

    @st.fragment
    def unguarded():
        try:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        except OSError as cause:
            password = "mlflow-pw-" + "Wombat-0815"
            raise MlflowException(f"API request to http://lab:{password}@127.0.0.1:9/api failed") from cause

    unguarded()


def test_on_script_error_replaces_streamlits_error_box_and_streamlits_log_of_it_is_masked(logged):
    """Through Streamlit's own path for an error nobody guarded (st.App is experimental: this pins what the lab
    relies on): the handler's True keeps Streamlit's box off, and Streamlit's log of it is masked."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_app_with_handler).run()
    assert not at.exception and errors_of(at) == [errors.MLFLOW_DOWN]
    text = logged()
    assert "Uncaught app execution" in text and "http://lab:***@127.0.0.1:9" in text
    assert "Connection refused" in text and MLFLOW_PASSWORD not in text  # the chained cause is logged too


@pytest.mark.parametrize("exc, kind", [
    (sa.exc.OperationalError("SELECT 1", {}, Exception("timeout expired")), "database"),
    (RuntimeError("wrapped"), "unexpected"),
])
def test_what_failed_is_found_anywhere_in_the_chain(exc, kind):
    outer = RuntimeError("while drawing the header")
    outer.__cause__ = exc
    assert errors.kind_of(outer) == kind
    assert errors.kind_of(exc) == kind


def test_a_refusal_is_shown_with_its_own_message_masked():
    from engine import BadInput
    refusal = BadInput("MLFLOW_TRACKING_URI http://lab:secret@host:5000 is wrong; fix it")
    assert errors.message(refusal) == "MLFLOW_TRACKING_URI http://lab:***@host:5000 is wrong; fix it"
