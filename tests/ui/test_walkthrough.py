"""The walkthrough: every page loads; its actions drive the real lab; its ticks follow the live state."""
from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.ui.conftest import open_page, texts
from ui.tour import TOUR

PATHS = [path for _, _, path in TOUR]


def _button(at, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def _status(labs, run_id: int) -> str:
    return labs[0].run(run_id).status


def test_the_tour_has_the_seed_guides_ten_steps_in_order():
    titles = [title for title, _, _ in TOUR]
    assert titles[0].startswith("1 · Start a pipeline run") and titles[-1] == "10 · Rollback"
    assert len(TOUR) == 10 and len(set(PATHS)) == 10 and all(callable(fn) for _, fn, _ in TOUR)


@pytest.mark.parametrize("path", PATHS)
def test_every_step_loads_on_an_empty_lab(empty_lab, path):
    at = open_page(path)
    assert not at.exception, at.exception
    assert f"Step {PATHS.index(path) + 1} of 10" in texts(at)


@pytest.mark.parametrize("path", PATHS)
def test_every_step_loads_on_a_lab_with_history(lifecycle_lab, path):
    at = open_page(path)
    assert not at.exception, at.exception
    assert f"Step {PATHS.index(path) + 1} of 10" in texts(at)


def test_step_1_commits_and_ticks_once_the_run_is_ci_complete(empty_lab, started_labs):
    at = open_page("tour-1-start")
    assert "Make a commit" in texts(at)
    at.text_input(key="tour_commit_by").set_value("Dana")
    _button(at, "Fake commit").click().run()
    assert not at.exception
    run_id = int(at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"])
    assert f"Run {run_id}" in texts(at) and "reached ci_complete" not in texts(at)

    wait_until(lambda: _status(started_labs, run_id) == "ci_complete")  # the app's own runner does the work
    at.run()
    assert f"Your run {run_id} reached ci_complete" in texts(at)
    assert started_labs[0].run(run_id).author == "Dana"


def test_a_newcomer_completes_the_lifecycle_from_the_walkthrough_alone(lifecycle_lab, started_labs):
    # The seeded lab already has a champion (v1); this run becomes a second one, so step 10 can roll it back.
    at = open_page("tour-1-start")
    _button(at, "Fake commit").click().run()
    run_id = started_labs[0].runs(1)[0].id
    wait_until(lambda: _status(started_labs, run_id) == "ci_complete")

    at = open_page("tour-4-cd")
    at.query_params["run"] = str(run_id)
    at.run()
    _button(at, "Continue to CD").click().run()
    wait_until(lambda: _status(started_labs, run_id) == "awaiting_approval")
    at.run()
    assert "passed the promotion gate" in texts(at)

    at = open_page("tour-5-approve")
    at.query_params["run"] = str(run_id)
    at.run()
    assert "Gate" in texts(at)
    _button(at, "Approve").click().run()
    assert "Fill in **Your name**" in texts(at) and "--by" not in texts(at)
    at.text_input(key="tour5_by").set_value("Dana")
    at.text_input(key="tour5_comment").set_value("F1 within the margin")
    _button(at, "Approve").click().run()
    wait_until(lambda: _status(started_labs, run_id) == "promoted")
    at.run()
    assert f"Run {run_id} was approved by Dana" in texts(at)

    at = open_page("tour-6-deploy")
    at.query_params["run"] = str(run_id)
    at.run()
    assert "is the champion now" in texts(at)

    at = open_page("tour-10-rollback")
    at.text_input(key="tour10_by").set_value("Dana")
    at.text_input(key="tour10_reason").set_value("practice")
    _button(at, "Roll back to version").click().run()
    assert not at.exception
    assert "You rolled the champion back to version 1 (signed Dana)" in texts(at)


def test_step_9_toggles_a_failure_mode_and_ticks_when_a_gate_catches_it(empty_lab, started_labs):
    at = open_page("tour-9-failures")
    at.toggle(key="tour9_schema_validation").set_value(True).run()
    lab = started_labs[0]
    assert {m["name"]: m["enabled"] for m in lab.failure_modes()}["schema_validation"]
    assert "Failure modes are on" in texts(at)
    _button(at, "Commit with these failure modes").click().run()
    run_id = lab.runs(1)[0].id
    wait_until(lambda: _status(started_labs, run_id) == "failed")
    at.run()
    assert f"Run {run_id} (failure modes: schema_validation) was stopped by data_validation" in texts(at)
    at.toggle(key="tour9_schema_validation").set_value(False).run()
    assert not {m["name"]: m["enabled"] for m in lab.failure_modes()}["schema_validation"]


def test_a_page_can_follow_another_run_and_links_carry_it(lifecycle_lab):
    at = open_page("tour-2-ci")  # follows the newest run (3, failed in CI) by default
    assert "Run 3 · commit" in texts(at) and "All CI steps" not in texts(at)
    at.selectbox(key="tour2_pick").set_value(1).run()
    assert "All CI steps of run 1 succeeded." in texts(at)
    links = {link.proto.label: link.proto.query_string for link in at.get("page_link")}
    assert links["Next: step 3"] == "run=1" and links["Open run 1 in the dashboard"] == "run=1"


def test_ticks_wait_for_what_the_learner_does_not_for_history(lifecycle_lab):
    # The seeded lab already holds a rollback and promoted runs: pages that ask for an action do not tick for them.
    at = open_page("tour-10-rollback")
    assert "You rolled the champion back" not in texts(at) and not at.success
    assert "only model that has been champion" not in texts(at)
    assert "no earlier promotion is left" in texts(at) or at.text_input(key="tour10_by")
    at = open_page("tour-1-start")
    assert "Make a commit with the form above" in texts(at) and not at.success
    at = open_page("tour-5-approve")
    assert not at.success


def test_texts_match_the_config_and_print_no_raw_data(lifecycle_lab):
    from engine import pipeline
    rows = pipeline.spec("ci_quick_train").params()["sample_rows"]
    assert f"{rows:,}-claim sample" in texts(open_page("tour-2-ci"))
    at = open_page("tour-6-deploy")
    at.selectbox(key="tour6_pick").set_value(2).run()
    shadow = next(c.value for c in at.caption if c.value.startswith("Shadow:"))
    assert "{" not in shadow and "accuracy staging 0." in shadow
    at = open_page("tour-5-approve")
    todo = [i.value for i in at.info]
    assert len(todo) == len(set(todo))  # the to-do is said once


def test_step_8_lists_the_scenarios_as_the_dashboards_claims_panel_does(lifecycle_lab):
    from engine.stream import SCENARIOS
    tour = open_page("tour-8-drift").selectbox(key="tour8_scenario")
    claims_panel = open_page("dashboard").selectbox(key="stream_scenario")
    assert tour.options == claims_panel.options == [s.label for s in SCENARIOS.values()]  # they differed
    assert tour.value == "concept_drift"


def test_step_8_streams_claims_and_ticks_on_a_major_snapshot_taken_after_it_opened(lifecycle_lab, started_labs):
    at = open_page("tour-8-drift")
    assert not at.exception, at.exception
    lab = started_labs[0]
    history = lab.stream.snapshots(limit=1)
    assert history  # the played demo's drift act (concept drift): history, not the learner's
    assert "Start the stream with a drifting scenario" in texts(at)
    assert not lab.stream.state()["enabled"]

    at.selectbox(key="tour8_scenario").set_value("inflation")
    _button(at, "Start the stream").click().run()
    assert not at.exception, at.exception
    state = lab.stream.state()
    assert state["enabled"] and state["scenario"] == "inflation"
    # The app's runner produces the claims; snapshots (one every 500 claims) turn up by themselves, and once enough
    # of the 5,000-claim window is inflated, one is major.
    wait_until(lambda: (lambda s: s["id"] > history[0]["id"] and s["level"] == "major")(
        lab.stream.snapshots(limit=1)[0]), what="a new major snapshot")
    at.run()
    # It ticks on a snapshot taken since it opened: major input drift, or the performance alert inflation may
    # also raise (the page names that one first). The stream goes on meanwhile, so any fresh one may be named.
    said = texts(at)
    fresh = [s for s in lab.stream.snapshots(limit=50) if s["id"] > history[0]["id"]]
    assert any(f"Snapshot {s['id']}: the performance alert fired" in said or
               f"Snapshot {s['id']} shows major input drift" in said for s in fresh), said[-600:]
    _button(at, "Stop the stream").click().run()
    assert not lab.stream.state()["enabled"]


def test_step_6_says_a_rolled_back_promotion_is_no_longer_the_champion(lifecycle_lab):
    at = open_page("tour-6-deploy")
    at.selectbox(key="tour6_pick").set_value(2).run()  # run 2 made version 2 champion; the demo rolled it back
    assert not at.exception
    said = " ".join(s.value for s in at.success)
    assert "Version 2 was promoted (it replaced 1), then rolled back by demo at" in said, said
    assert "it is no longer the champion" in said and "is the champion now" not in said
    assert "status **promoted, then rolled back**" in texts(at)
    at.selectbox(key="tour6_pick").set_value(1).run()  # version 1 is champion again
    assert "Version 1 is the champion now" in " ".join(s.value for s in at.success)
