"""Run history: the table's rows and columns, the filters, the CSV of exactly what is shown, the page itself."""
from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest

from tests.conftest import make_run, make_step
from tests.ui.conftest import arrive, frame_with, open_page, texts
from ui import history as h

T0 = 1_780_000_000.0  # 2026-05-28 UTC


def _step(run_id, name, stage, status, start=None, end=None, outputs=None, position=0):
    return make_step(name, status, run_id=run_id, stage=stage, started_at=start, finished_at=end, outputs=outputs,
                     position=position, attempt=1 if start else 0)


def _run(run_id, status, created, finished=None, message="fake commit", sha="abcdef0123456789", author=""):
    return make_run(status, id=run_id, sha=sha, message=message, author=author, created_at=created,
                    finished_at=finished, failure_modes=[])


def _promoted_steps(run_id, t, version):
    return [
        _step(run_id, "ci_tests", "CI", "succeeded", t, t + 3),
        _step(run_id, "ci_quick_train", "CI", "succeeded", t + 1, t + 2,
              {"metrics": {"roc_auc": 0.89, "f1": 0.88}}),
        _step(run_id, "mlflow_log_ci", "CI", "succeeded", t + 3, t + 5, {"mlflow_run_id": f"ci{run_id}"}),
        _step(run_id, "cd_full_train", "CD", "succeeded", t + 10, t + 16,
              {"model_version": version, "mlflow_run_id": f"cd{run_id}", "metrics": {"roc_auc": 0.9, "f1": 0.885}}),
        _step(run_id, "manual_approval", "CD", "succeeded", t + 16, t + 17),
        _step(run_id, "deploy_staging", "Deploy", "succeeded", t + 100, t + 101),
        _step(run_id, "promote_prod", "Deploy", "succeeded", t + 101, t + 102.5),
    ]


@pytest.fixture
def sample():
    """Three runs: two promoted (v1 then v2 champion), one failed in CI."""
    runs = [_run(3, "failed", T0 + 400, T0 + 402, "broken export", "ffff000011112222"),
            _run(2, "promoted", T0 + 200, T0 + 302.5, "retrain on fresh claims", "2222aaaa"),
            _run(1, "promoted", T0, T0 + 102.5, "first model", "1111bbbb", author="dana")]
    steps = {1: _promoted_steps(1, T0, 1), 2: _promoted_steps(2, T0 + 200, 2),
             3: [_step(3, "data_validation", "CI", "failed", T0 + 400, T0 + 402)]}
    champions = [{"version": 1, "since": T0 + 102.5, "until": T0 + 302.5, "action": "promote"},
                 {"version": 2, "since": T0 + 302.5, "until": None, "action": "promote"}]
    return h.history_frame(runs, steps, champions, now=T0 + 500)


def test_one_row_per_run_with_stage_durations_metrics_and_champion_then(sample):
    assert list(sample.columns) == h.HISTORY_COLUMNS
    first = sample.set_index("run").loc[1]
    assert (first["CI s"], first["CD s"], first["Deploy s"]) == (5.0, 7.0, 2.5)
    assert (first["quick ROC-AUC"], first["full F1"], first["model version"]) == (0.89, 0.885, 1)
    assert (first["MLflow CI run"], first["MLflow CD run"], first["commit"]) == ("ci1", "cd1", "1111bbbb")
    # Run 1 finished the moment it made v1 champion; run 2 likewise for v2; run 3 failed under v2.
    assert sample.set_index("run")["champion then"].tolist() == [2, 2, 1]
    failed = sample.set_index("run").loc[3]
    assert pd.isna(failed["CD s"]) and pd.isna(failed["model version"]) and failed["CI s"] == 2.0


def test_a_promotion_a_rollback_undid_reads_rolled_back_in_its_row_and_the_csv():
    runs = [_run(2, "promoted", T0 + 200, T0 + 302.5), _run(1, "promoted", T0, T0 + 102.5)]
    steps = {1: _promoted_steps(1, T0, 1), 2: _promoted_steps(2, T0 + 200, 2)}
    champions = [{"version": 1, "since": T0 + 102.5, "until": T0 + 302.5, "action": "promote", "run_id": 1,
                  "moved_by": "a", "reason": ""},
                 {"version": 2, "since": T0 + 302.5, "until": T0 + 400, "action": "promote", "run_id": 2,
                  "moved_by": "b", "reason": ""},
                 {"version": 1, "since": T0 + 400, "until": None, "action": "rollback", "run_id": None,
                  "moved_by": "sam", "reason": "bad canary"}]
    frame = h.history_frame(runs, steps, champions, now=T0 + 500).set_index("run")
    assert frame["status"].tolist() == [h.ROLLED_BACK, "promoted"]
    assert frame["rolled back"].tolist() == ["2026-05-28T20:33:20Z by sam: bad canary", ""]
    parsed = pd.read_csv(io.StringIO(h.history_csv(frame.reset_index())), keep_default_na=False)
    assert parsed.set_index("run").loc[2, ["status", "rolled back"]].tolist() == [
        "promoted, rolled back", "2026-05-28T20:33:20Z by sam: bad canary"]


def test_a_running_step_counts_up_to_now():
    steps = [_step(1, "ci_tests", "CI", "running", T0, None), _step(1, "commit_received", "CI", "succeeded", T0,
                                                                    T0 + 1)]
    assert h.stage_seconds(steps, now=T0 + 4) == {"CI": 4.0, "CD": None, "Deploy": None}


def test_champion_at_is_the_holder_at_that_moment():
    history = [{"version": 1, "since": 10, "until": 20}, {"version": 2, "since": 20, "until": None}]
    assert [h.champion_at(history, t) for t in (5, 10, 19.9, 20, 1e12, None)] == [None, 1, 1, 2, 2, None]


def test_filters_by_status_text_and_date(sample):
    assert h.filter_history(sample, ["promoted"])["run"].tolist() == [2, 1]
    assert h.filter_history(sample, None, "FRESH")["run"].tolist() == [2]
    assert h.filter_history(sample, None, "dana")["run"].tolist() == [1]
    assert h.filter_history(sample, None, "ffff0000")["run"].tolist() == [3]
    day = date(2026, 5, 28)
    assert len(h.filter_history(sample, None, "", (day, day))) == 3
    assert h.filter_history(sample, None, "", (date(2026, 5, 29),)).empty


def test_csv_holds_exactly_the_filtered_rows_and_columns(sample):
    shown = h.filter_history(sample, ["promoted"], "retrain")
    parsed = pd.read_csv(io.StringIO(h.history_csv(shown)))
    assert list(parsed.columns) == list(shown.columns)
    assert parsed["run"].tolist() == [2] and parsed.loc[0, "message"] == "retrain on fresh claims"
    assert parsed.loc[0, "started"] == "2026-05-28T20:30:00Z"  # ISO 8601 UTC, to the second
    assert parsed.loc[0, "model version"] == 2 and parsed.loc[0, "champion then"] == 2


def test_a_thousand_runs_give_a_thousand_rows_with_their_own_champion():
    runs = [_run(i, "promoted", T0 + i * 200, T0 + i * 200 + 102.5) for i in range(1000, 0, -1)]
    steps = {i: _promoted_steps(i, T0 + i * 200, i) for i in range(1, 1001)}
    champions = [{"version": i, "since": T0 + i * 200 + 102.5, "until": T0 + (i + 1) * 200 + 102.5,
                  "action": "promote", "run_id": i} for i in range(1, 1001)]
    frame = h.filter_history(h.history_frame(runs, steps, champions, now=T0 + 300_000), ["promoted"], "fake")
    assert frame["run"].tolist() == list(range(1000, 0, -1))
    # run i finished the moment version i became champion
    assert frame["champion then"].tolist() == frame["model version"].tolist()
    assert len(pd.read_csv(io.StringIO(h.history_csv(frame)))) == 1000


def test_gantt_has_one_bar_per_started_step():
    run = make_run("running", [_step(1, "ci_tests", "CI", "succeeded", T0, T0 + 3, position=1),
                               _step(1, "cd_full_train", "CD", "pending", position=5)])
    bars = h.gantt_frame(run, now=T0 + 10)
    assert bars["name"].tolist() == ["ci_tests"] and bars.loc[0, "seconds"] == 3.0
    assert h.gantt_chart(bars).to_dict()["mark"]["type"] == "bar"


def test_page_on_an_empty_store_explains_how_to_start(empty_lab):
    at = open_page("runs")
    assert not at.exception
    assert "No runs yet" in texts(at)
    assert "Nothing has happened yet" in texts(at)


def test_page_filters_and_shows_exactly_the_rows_the_csv_holds(lifecycle_lab, served):
    at = open_page("runs")
    assert not at.exception
    everything = frame_with(at, "MLflow CI run")
    # The played lifecycle promoted runs 1 and 2, then rolled back to version 1: run 2 reads rolled back.
    assert everything.set_index("run")["status"].to_dict() == {3: "failed", 2: h.ROLLED_BACK, 1: "promoted"}
    assert everything.set_index("run")["rolled back"].str.contains(" by ").tolist() == [False, True, False]
    assert at.multiselect(key="runs_status").options == ["promoted", "failed", h.ROLLED_BACK]

    at.multiselect(key="runs_status").set_value(["promoted", h.ROLLED_BACK]).run()
    shown = frame_with(at, "MLflow CI run")
    assert shown["status"].tolist() == [h.ROLLED_BACK, "promoted"]
    assert "Showing 2 of 3 loaded runs" in texts(at)
    assert shown["model version"].notna().all() and shown["MLflow CD run"].notna().all()

    parsed = pd.read_csv(io.BytesIO(served(at.download_button(key="history_csv"))), keep_default_na=False)
    assert parsed["run"].tolist() == [2, 1] and list(parsed.columns) == h.HISTORY_COLUMNS  # what the button serves
    assert parsed["status"].tolist() == [h.ROLLED_BACK, "promoted"] and " by " in parsed.loc[0, "rolled back"]

    at.text_input(key="runs_text").set_value("retrain").run()
    assert frame_with(at, "MLflow CI run")["message"].tolist() == ["demo: retrain on fresh claims"]
    parsed = pd.read_csv(io.BytesIO(served(at.download_button(key="history_csv"))))
    assert parsed["message"].tolist() == ["demo: retrain on fresh claims"]


def test_page_draws_the_timeline_of_the_run_in_the_url(lifecycle_lab):
    at = arrive(open_page("runs"), "pages/runs.py", run="1")  # a link to ?run=1 followed
    assert not at.exception
    assert at.selectbox(key="runs_timeline").value == 1
    at.selectbox(key="runs_timeline").set_value(2).run()
    assert at.selectbox(key="runs_timeline").value == 2 and at.query_params["run"] in ("2", ["2"])
    assert at.get("vega_lite_chart"), "the Gantt chart is drawn"
    audit = frame_with(at, "actor")
    assert {"commit", "approve", "continue"} <= set(audit["action"])


def test_a_run_summary_lists_every_step_with_its_result_and_how_long_it_took():
    from ui.common import shown_status
    steps = [_step(1, "commit_received", "CI", "succeeded", T0, T0 + 0.4, position=0),
             _step(1, "ci_tests", "CI", "running", T0 + 1, None, position=1),
             _step(1, "manual_approval", "CD", "succeeded", T0 + 10, T0 + 10.1, {"decision": "approved",
                                                                                 "at": T0 + 130}, position=2),
             _step(1, "deploy_staging", "Deploy", "pending", position=3)]
    run = make_run("running", steps)
    summary = h.summary_frame(run, shown_status, now=T0 + 31)
    assert summary["step"].tolist() == ["Commit", "CI tests", "Manual approval", "Deploy staging"]
    assert summary["result"].tolist() == ["succeeded", "running", "succeeded", "pending"]
    # the manual gate took until the decision (not its 0.1 s of gathering evidence); the running step so far
    assert summary["seconds"].tolist()[:3] == [0.4, 30.0, 120.0] and pd.isna(summary["seconds"].iloc[3])


def test_page_shows_the_summary_of_the_chosen_run_as_the_dashboard_reads_it(lifecycle_lab):
    at = open_page("runs")
    at.selectbox(key="runs_timeline").set_value(2).run()
    assert not at.exception
    summary = frame_with(at, "attempts")
    assert len(summary) == 11 and summary.set_index("step").loc["Promote to production", "result"] == "rolled_back"
    assert summary["seconds"].notna().all()
    assert "Run 2 is **promoted, rolled back**: 11 of 11 steps have run" in texts(at)
