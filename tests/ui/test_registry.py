"""Model registry page: versions and aliases, the champion timeline, and rollback (offered, refused, done)."""
from __future__ import annotations

import pandas as pd

from tests.conftest import wait_until
from tests.ui.conftest import frame_with, open_page, texts
from ui import registry as r


def _rollback_button(at):
    return next((b for b in at.button if b.label.startswith("Roll back to version")), None)


def promote_waiting_run(lab) -> None:
    """Approve run 4 of the awaiting lifecycle and deploy it: a real second promotion (champion 1 -> 3)."""
    lab.approve(4, by="Quinn", comment="ship it")
    # The test's worker (tests/ui/conftest.py) may claim the deployment steps first: wait for the promotion.
    wait_until(lambda: lab.run(4).status == "promoted", what="run 4 to be promoted")
    assert lab.tracking.alias_version("champion") == 3


def test_empty_registry_explains_how_to_get_a_first_version_and_offers_no_rollback(empty_lab):
    at = open_page("registry")
    assert not at.exception
    text = texts(at)
    assert "The registry is empty" in text and "Continue to CD" in text
    assert "Rollback is not available: there is no champion yet" in text
    assert _rollback_button(at) is None


def test_versions_aliases_and_history_after_a_played_lifecycle(lifecycle_lab):
    at = open_page("registry")
    assert not at.exception
    versions = frame_with(at, "approval_by")
    assert versions["version"].tolist() == [2, 1]
    by_version = versions.set_index("version")
    assert "champion" in by_version.loc[1, "aliases"] and "staging" in by_version.loc[2, "aliases"]
    assert by_version.loc[1, "approval_by"] == "demo" and by_version.loc[2, "roc_auc"] > 0.8
    history = frame_with(at, "moved_by")
    assert history["action"].tolist() == ["rollback", "promote", "promote"]  # newest first
    assert at.get("vega_lite_chart"), "the champion timeline is drawn"


def test_refuses_rollback_clearly_when_there_is_no_earlier_champion(lifecycle_lab):
    # The lifecycle ended with a rollback to version 1, the first champion: nothing is earlier than it.
    at = open_page("registry")
    assert not at.exception
    # Version 2 was champion until the rollback: the page says so instead of "the only model that has been
    # champion on this line" (the engine's words, true only of the line that is left).
    assert ("Rollback is not available: version 1 is champion again since a rollback undid version 2, and no "
            "version was champion before version 1: there is nothing earlier to roll back to") in texts(at)
    assert "only model that has been champion" not in texts(at)
    assert _rollback_button(at) is None


def test_rollback_through_the_form_needs_a_name_then_moves_champion(awaiting_lab, side_lab):
    promote_waiting_run(side_lab)
    at = open_page("registry")
    assert "from version **3** to version **1**" in texts(at)

    _rollback_button(at).click().run()
    assert "Rollback not done: fill in **Your name**" in texts(at) and "--by" not in texts(at)
    assert side_lab.tracking.alias_version("champion") == 3

    at.text_input(key="rollback_by").set_value("Dana")
    at.text_input(key="rollback_reason").set_value("false denials up")
    _rollback_button(at).click().run()
    assert not at.exception
    assert "Champion moved from version 3 to version 1 (signed by Dana)" in texts(at)
    last = side_lab.champion_history()[-1]
    assert (last["action"], last["version"], last["moved_by"], last["reason"]) == ("rollback", 1, "Dana",
                                                                                     "false denials up")
    assert side_lab.tracking.alias_version("champion") == 1


def test_a_rollback_made_meanwhile_elsewhere_is_refused_with_its_reason(awaiting_lab, side_lab):
    promote_waiting_run(side_lab)
    at = open_page("registry")
    side_lab.rollback("someone else", "beat you to it")
    at.text_input(key="rollback_by").set_value("Dana")
    _rollback_button(at).click().run()
    assert "Rollback refused: version 1 is champion again since rollbacks undid versions 2 and 3" in texts(at)
    assert [h["moved_by"] for h in side_lab.champion_history()].count("Dana") == 0


def test_versions_frame_merges_aliases_asked_per_alias():
    versions = [{"version": 2, "aliases": [], "tags": {"approval": "approved"}, "run_id": "b", "created": 2.0},
                {"version": 1, "aliases": ["champion"], "tags": {}, "run_id": "a", "created": 1.0}]
    frame = r.versions_frame(versions, {"b": {"roc_auc": 0.9}}, {"champion": 1, "staging": 2, "challenger": 2})
    assert frame["aliases"].tolist() == ["staging, challenger", "champion"]
    assert frame.loc[0, "roc_auc"] == 0.9 and pd.isna(frame.loc[1, "roc_auc"])
    styled = r.highlight_champion(frame)
    styled._compute()  # fills styled.ctx: {(row, col): [(property, value)]}
    shaded = {row for (row, _), props in styled.ctx.items() if props}
    assert shaded == {1}  # only the champion's row
