"""Every icon the UI hands to Streamlit, in one place: Material Symbols shortcodes.

They ship with Streamlit's own font, so they render on every machine (emoji need an emoji font, and a bare
symbol such as an arrow makes st.toast/st.button raise and take the page down). tests/ui/test_icons.py
validates each one with Streamlit's own check.
"""
from __future__ import annotations

APP = ":material/health_and_safety:"

# Pages.
DASHBOARD = ":material/account_tree:"
HISTORY = ":material/history:"
REGISTRY = ":material/sell:"
DEMO = ":material/play_circle:"
HOURGLASS = ":material/hourglass_top:"  # a page waiting for the busy server
DRIFT = ":material/monitoring:"
TOUR = ":material/school:"

# Header actions and what they say once done.
COMMIT = ":material/add:"
CONTINUE = ":material/arrow_forward:"
APPROVE = ":material/check:"
REJECT = ":material/block:"
RETRY = ":material/replay:"
ROLLBACK = ":material/undo:"
MENU = ":material/more_horiz:"
STARTED = ":material/rocket_launch:"
FAILURE_MODE = ":material/bug_report:"
MLFLOW = ":material/science:"
EXTERNAL = ":material/open_in_new:"
WORKERS = ":material/memory:"
RESET = ":material/restart_alt:"
OPERATOR = ":material/key:"
TUNE = ":material/tune:"

# Messages.
REFUSED = ":material/do_not_disturb_on:"
ERROR = ":material/error:"
INFO = ":material/info:"
HINT = ":material/lightbulb:"
WELCOME = ":material/waving_hand:"
OFFLINE = ":material/cloud_off:"
CHAMPION = ":material/trophy:"
ALIAS = ":material/sell:"
REVIEWER = ":material/gavel:"
GATE = ":material/traffic:"
DOWNLOAD = ":material/download:"
DATASET = ":material/dataset:"
FILE = ":material/description:"
NEWER = ":material/chevron_left:"
OLDER = ":material/chevron_right:"
PREVIOUS = ":material/arrow_back:"
NEXT = ":material/arrow_forward:"
TODO = ":material/check_box_outline_blank:"
DONE = ":material/check_circle:"
STOP = ":material/stop:"
PLAY = ":material/play_arrow:"
WARNING = ":material/warning:"
NARRATE = ":material/chevron_right:"
NEW_RUN = ":material/fiber_new:"

# Run and step statuses (header, inspector, walkthrough). "held" is the gate step of a held run;
# "rolled_back" a promoted run whose model is no longer champion because of a rollback.
STATUS = {
    "pending": ":material/radio_button_unchecked:",
    "queued": ":material/schedule:",
    "running": ":material/progress_activity:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/cancel:",
    "skipped": ":material/skip_next:",
    "awaiting_approval": ":material/pause_circle:",
    "interrupted": ":material/report:",
    "held": ":material/back_hand:",
    "ci_complete": ":material/task_alt:",
    "promoted": ":material/trophy:",
    "rejected": ":material/block:",
    "rolled_back": ":material/undo:",
}


def status(name: str) -> str:
    """The icon of a run or step status (a neutral dot for one it does not know)."""
    return STATUS.get(name, STATUS["pending"])


def every() -> dict[str, str]:
    """Every icon defined here by name (the test walks them)."""
    found = {k: v for k, v in globals().items() if k.isupper() and isinstance(v, str)}
    found.update({f"STATUS[{k}]": v for k, v in STATUS.items()})
    return found
