"""Where a run came from, as the header and the run history say it (ui/origin.py): pure functions of a run."""
from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import make_run
from ui import origin

PUSHED = make_run(id=7, sha="0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", trigger="webhook",
                  origin={"repository": "octo-org/claims-model", "branch": "main",
                          "commit_url": "https://github.com/octo-org/claims-model/commit/0d1a26e67d8f"})


@pytest.mark.parametrize("trigger, says", [
    ("cli", "CLI"), ("dashboard", "dashboard"), ("api", "HTTP API"), ("drift", "closed loop (drift)"),
    ("autopilot", "demo autopilot"), ("commit", "not recorded"), (None, "not recorded"),
])
def test_each_source_has_its_words(trigger, says):
    run = make_run(sha="abc1234", trigger=trigger, origin=None)
    assert origin.source(run) == says and origin.commit_link(run) is None
    assert origin.markdown(run) == ("" if says == "not recorded" else "from " + origin.md_escape(says))


def test_a_push_names_its_repository_and_branch_and_links_its_commit():
    assert origin.source(PUSHED) == "GitHub push octo-org/claims-model (main)"
    assert origin.commit_link(PUSHED) == PUSHED.origin["commit_url"]
    assert origin.markdown(PUSHED) == (r"from GitHub push octo\-org/claims\-model \(main\) · "
                                       "[view the commit](<https://github.com/octo-org/claims-model/commit/0d1a26e67d8f>)")


@pytest.mark.parametrize("url, link", [
    ("javascript:alert(1)", None),
    ("https://github.com/o/r/commit/1>](https://evil)<", "https://github.com/o/r/commit/1%3E](https://evil)%3C"),
], ids=["not-http", "breaks-out"])
def test_a_link_from_a_payload_cannot_become_something_else(url, link):
    run = dataclasses.replace(PUSHED, origin={**PUSHED.origin, "commit_url": url})
    assert origin.commit_link(run) == (None if link is None else url)
    shown = origin.markdown(run)
    assert (link is None and "](" not in shown) or shown.endswith(f"(<{link}>)"), shown
