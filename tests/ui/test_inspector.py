"""The log console: numbered lines, levels as classes, times since the attempt started, filters, escaping,
follow-tail while running; and the downloadable log in ISO 8601 UTC."""
from __future__ import annotations

import re
from html import unescape

from engine import pipeline
from tests.conftest import make_step
from ui import inspector

LINES = [  # two attempts of one step; attempt 2 started at t=200 (its first line came 0.5 s later)
    {"attempt": 1, "ts": 100.0, "level": "INFO", "message": "started ci_tests (attempt 1)"},
    {"attempt": 1, "ts": 101.25, "level": "ERROR", "message": "FAILED test_x <assert 1 == 2>"},
    {"attempt": 2, "ts": 200.5, "level": "INFO", "message": "started ci_tests (attempt 2)"},
    {"attempt": 2, "ts": 203.0, "level": "WARNING", "message": "slow: 2.5 s"},
]
STEP = make_step("ci_tests", "running", attempt=2, started_at=200.0)


def rows(html: str) -> list[tuple[str, str, str, str, str]]:
    """(class, number, time, level, message) of each console line."""
    return [(c.strip(), n, t, lv, unescape(m)) for c, n, t, lv, m in re.findall(
        r'<div class="lab-line ([^"]*)"><span class="n">(\d+)</span><span class="t">([^<]*)</span>'
        r'<span class="lv">([^<]*)</span><span class="m">(.*?)</span></div>', html, flags=re.S)]


def test_lines_are_numbered_timed_from_their_attempts_start_and_classed_by_level():
    html = inspector.console_html(LINES, STEP)
    assert rows(html) == [("", "1", "0.00s", "INFO", "started ci_tests (attempt 1)"),
                          ("err", "2", "1.25s", "ERROR", "FAILED test_x <assert 1 == 2>"),
                          ("", "3", "0.50s", "INFO", "started ci_tests (attempt 2)"),
                          ("warn", "4", "3.00s", "WARNING", "slow: 2.5 s")]
    assert html.count('class="lab-attempt"') == 2
    assert "<assert" not in html  # messages are escaped


def test_filters_keep_line_numbers_and_say_how_many_lines_match():
    html = inspector.console_html(LINES, STEP, needle="STARTED")
    assert [(n, m) for _, n, _, _, m in rows(html)] == [("1", "started ci_tests (attempt 1)"),
                                                        ("3", "started ci_tests (attempt 2)")]
    assert "2 of 4 lines" in html
    assert [n for _, n, *_ in rows(inspector.console_html(LINES, STEP, levels=["WARNING", "ERROR"]))] == ["2", "4"]
    assert "no line matches the filter" in inspector.console_html(LINES, STEP, needle="nothing like this")


def test_the_console_follows_the_newest_line_only_while_the_step_runs():
    assert '<div class="lab-console follow">' in inspector.console_html(LINES, STEP, follow=True)
    assert '<div class="lab-console">' in inspector.console_html(LINES, STEP, follow=False)


def test_the_downloaded_log_has_every_line_with_iso_utc_times():
    class Lab:
        def logs(self, run_id, name, limit):
            assert (run_id, name) == (7, "ci_tests") and limit >= 100_000
            return LINES

    text = inspector.log_text(Lab(), 7, "ci_tests")
    assert text.splitlines()[1] == "1970-01-01T00:01:41Z attempt=1 ERROR   FAILED test_x <assert 1 == 2>"
    assert len(text.splitlines()) == len(LINES)


def test_the_inspector_keeps_following_when_the_browser_answers_with_the_step_it_showed_before(app, make_lab):
    # The page moves the step picker as the run moves; a rerun the browser asked for before that redraw reached
    # it carries the picker as it was. That old value was taken for a person's pick: the inspector stopped
    # following and stayed on "CI · Commit" while every CI step ran.
    from tests.ui.conftest import step_picker
    lab = make_lab()
    lab.commit(message="follow me", author="test")
    app.run()
    assert step_picker(app).value == "commit_received"
    before = app._tree.get_widget_states()  # what the browser still holds while the next redraw is on its way
    lab.runner.execute(lab.store.claim_step(lab.runner.worker_id))  # the commit step ran: CI steps are queued
    app.run()
    followed = step_picker(app).value
    assert followed != "commit_received"
    app._run(before)  # the late rerun
    assert not app.exception
    assert step_picker(app).value == followed
    assert f"#### {pipeline.spec(followed).title}" in [m.value.split("  \n")[0] for m in app.markdown]


def test_a_step_picked_while_the_page_was_redrawing_the_picker_is_not_lost(app, make_lab):
    from tests.ui.conftest import step_picker
    lab = make_lab()
    lab.commit(message="follow me", author="test")
    app.run()
    picker = step_picker(app)
    lab.runner.execute(lab.store.claim_step(lab.runner.worker_id))
    app.run()  # the page moved the picker on; the browser had not drawn that yet when the person picked
    picker.set_value("data_validation")
    app._run(_states_with(app, picker, instead_of=step_picker(app)))
    assert step_picker(app).value == "data_validation"
    app.run()  # and the run moving on does not take the pick back
    assert step_picker(app).value == "data_validation"


def _states_with(app, widget, instead_of):
    """The browser's widget states: the page as drawn last, but with `widget` (from an earlier drawing, as the
    person set it) instead of the widget that replaced it."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates
    states = WidgetStates()
    states.widgets.extend(w for w in app._tree.get_widget_states().widgets if w.id != instead_of.id)
    states.widgets.append(widget._widget_state)
    return states
