"""Gate checks read as sentences; metric differences say better or worse, minding each metric's direction."""
from __future__ import annotations

from engine.ml.gates import Direction, change, check, read_check
from ui.outputs_deploy import better_or_worse, check_sentence, interval_text, thresholds_text


def stored_before_directions(name: str, value: float, op: str, threshold: float, margin: float, passed: bool) -> dict:
    """A check as runs stored it before checks carried a direction: its name alone said what it measured."""
    return {"name": name, "value": value, "op": op, "threshold": threshold, "margin": margin, "passed": passed}


def test_an_old_negative_drop_against_the_baseline_reads_as_a_rise():
    # No champion: the reference is the approve-every-claim policy (ROC-AUC 0.5); the challenger scores 0.898.
    text = check_sentence(read_check(stored_before_directions("ROC-AUC drop", -0.398, "<=", 0.05, 0.448, True)))
    assert text == ("ROC-AUC rose by 0.3980 against the reference (no drop); the gate needs ROC-AUC drop at most "
                    "0.05: passes with 0.4480 to spare.")


def test_an_old_failed_gain_says_by_how_much_it_missed():
    text = check_sentence(read_check(stored_before_directions("F1 gain", -0.012, ">=", 0.0, -0.012, False)))
    assert text == "F1 fell by 0.0120 against the reference; the gate needs F1 gain at least 0: fails by 0.0120."


def test_an_old_named_reference_and_no_change_are_said_as_such():
    stored = stored_before_directions("accuracy drop vs champion", 0.0, "<=", 0.02, 0.02, True)
    assert check_sentence(read_check(stored)) == (
        "accuracy did not change vs champion; the gate needs accuracy drop vs champion at most 0.02: "
        "passes with 0.0200 to spare.")


def test_a_plain_check_reads_as_its_value_against_the_threshold():
    text = check_sentence(check("max input PSI", 0.31, "<", 0.25))
    assert text == "max input PSI is 0.3100; the gate needs max input PSI less than 0.25: fails by 0.0600."


def test_a_change_against_the_champion_reads_as_a_fall_or_a_rise():
    text = check_sentence(change("ROC-AUC", "change", "vs champion", -0.004, ">=", -0.01))
    assert text == ("ROC-AUC fell by 0.0040 vs champion; the gate needs ROC-AUC change vs champion at least -0.01: "
                    "passes with 0.0060 to spare.")
    assert check_sentence(change("F1", "change", "vs champion", 0.0123, ">=", -0.01)).startswith(
        "F1 rose by 0.0123 vs champion;")


def test_a_saving_is_a_fall_of_what_was_saved():
    text = check_sentence(change("cost", "saving", "per claim over approve-every-claim", 0.0456, ">=", 0.01))
    assert text.startswith("cost fell by 0.0456 per claim over approve-every-claim; the gate needs cost saving per "
                           "claim over approve-every-claim at least 0.01:")


def test_the_sentence_follows_the_direction_not_the_words_of_the_name():
    fall = check("precision slide", 0.02, "<=", 0.05, direction=Direction.FALL, metric="precision",
                 against="vs champion")
    assert check_sentence(fall).startswith("precision fell by 0.0200 vs champion;")
    level = check("gain change drop", 0.3, "<", 0.25)  # a level, whatever words its name happens to hold
    assert check_sentence(level).startswith("gain change drop is 0.3000;")


def test_better_or_worse_minds_the_direction_of_each_metric():
    assert better_or_worse("accuracy", 0.91, 0.914) == "worse by 0.0040"
    assert better_or_worse("f1", 0.80, 0.75) == "better by 0.0500"
    assert better_or_worse("false_denial_rate", 0.05, 0.08) == "better by 0.0300"  # fewer false denials
    assert better_or_worse("false_denial_rate", 0.08, 0.05) == "worse by 0.0300"
    assert better_or_worse("roc_auc", 0.9, 0.9) == "the same"
    assert better_or_worse("roc_auc", None, 0.9) == "—"


def test_an_interval_reads_with_signs_and_a_check_without_one_says_so():
    assert interval_text(check("F1 gain", 0.02, ">=", 0.0, (-0.004, 0.0412)).interval) == "[-0.0040, +0.0412]"
    assert interval_text(check("max input PSI", 0.1, "<", 0.25).interval) == "—"


def test_thresholds_name_each_model_and_leave_out_a_missing_champion():
    assert thresholds_text({"challenger": 0.41234, "champion": 0.39871}).endswith("challenger 0.4123, champion 0.3987")
    assert thresholds_text({"staging": 0.5, "champion": None}).endswith(": staging 0.5000")


def _old_gate_panel():
    from ui import outputs_deploy
    outputs_deploy.gate({"rule": "no champion yet", "verdict": "pass", "checks": [
        {"name": "ROC-AUC drop", "value": -0.398, "op": "<=", "threshold": 0.05, "margin": 0.448, "passed": True},
        {"name": "F1 gain over approve-every-claim", "value": 0.02, "op": ">=", "threshold": 0.0, "margin": 0.004,
         "passed": True, "interval": [0.004, 0.0412], "decided_on": "lower bound of the 95% interval"}]})


def test_the_gate_panel_shows_a_gate_stored_before_checks_had_a_direction():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_old_gate_panel).run()
    assert not at.exception
    said = [m.value for m in at.markdown]
    assert any("ROC-AUC rose by 0.3980 against the reference (no drop);" in m for m in said)
    assert any("F1 rose by 0.0200 over approve-every-claim;" in m for m in said)
    table = at.dataframe[0].value
    assert table["check"].tolist() == ["ROC-AUC drop", "F1 gain over approve-every-claim"]
    assert table["95% interval"].tolist() == ["—", "[+0.0040, +0.0412]"]
