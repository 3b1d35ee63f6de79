"""Gate checks read as sentences; metric differences say better or worse, minding each metric's direction."""
from __future__ import annotations

from engine.ml.gates import check
from ui.outputs_deploy import better_or_worse, check_sentence, interval_text, thresholds_text


def test_a_negative_drop_against_the_baseline_reads_as_a_rise():
    # No champion: the reference is the approve-every-claim policy (ROC-AUC 0.5); the challenger scores 0.898.
    text = check_sentence(check("ROC-AUC drop", 0.5 - 0.898, "<=", 0.05))
    assert text == ("ROC-AUC rose by 0.3980 against the reference (no drop); the gate needs ROC-AUC drop at most "
                    "0.05: passes with 0.4480 to spare.")


def test_a_failed_gain_says_by_how_much_it_missed():
    text = check_sentence(check("F1 gain", -0.012, ">=", 0.0))
    assert text == "F1 fell by 0.0120 against the reference; the gate needs F1 gain at least 0: fails by 0.0120."


def test_a_plain_check_reads_as_its_value_against_the_threshold():
    text = check_sentence(check("max input PSI", 0.31, "<", 0.25))
    assert text == "max input PSI is 0.3100; the gate needs max input PSI less than 0.25: fails by 0.0600."


def test_a_named_reference_and_no_change_are_said_as_such():
    text = check_sentence(check("accuracy drop vs champion", 0.0, "<=", 0.02))
    assert text == ("accuracy did not change vs champion; the gate needs accuracy drop vs champion at most 0.02: "
                    "passes with 0.0200 to spare.")


def test_a_change_against_the_champion_reads_as_a_fall_or_a_rise():
    text = check_sentence(check("ROC-AUC change vs champion", -0.004, ">=", -0.01))
    assert text == ("ROC-AUC fell by 0.0040 vs champion; the gate needs ROC-AUC change vs champion at least -0.01: "
                    "passes with 0.0060 to spare.")
    assert check_sentence(check("F1 change vs champion", 0.0123, ">=", -0.01)).startswith(
        "F1 rose by 0.0123 vs champion;")


def test_better_or_worse_minds_the_direction_of_each_metric():
    assert better_or_worse("accuracy", 0.91, 0.914) == "worse by 0.0040"
    assert better_or_worse("f1", 0.80, 0.75) == "better by 0.0500"
    assert better_or_worse("false_denial_rate", 0.05, 0.08) == "better by 0.0300"  # fewer false denials
    assert better_or_worse("false_denial_rate", 0.08, 0.05) == "worse by 0.0300"
    assert better_or_worse("roc_auc", 0.9, 0.9) == "the same"
    assert better_or_worse("roc_auc", None, 0.9) == "—"


def test_an_interval_reads_with_signs_and_a_check_without_one_says_so():
    assert interval_text(check("F1 gain", 0.02, ">=", 0.0, (-0.004, 0.0412))["interval"]) == "[-0.0040, +0.0412]"
    assert interval_text(check("max input PSI", 0.1, "<", 0.25).get("interval")) == "—"


def test_thresholds_name_each_model_and_leave_out_a_missing_champion():
    assert thresholds_text({"challenger": 0.41234, "champion": 0.39871}).endswith("challenger 0.4123, champion 0.3987")
    assert thresholds_text({"staging": 0.5, "champion": None}).endswith(": staging 0.5000")
