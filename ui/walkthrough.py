"""The guided tour: the seed's ten UI steps, one page each. app.py turns TOUR into st.Page entries."""
from __future__ import annotations

from ui import tour_cd, tour_ci, tour_ops

# (title, page function, url path); the order is the tour's order.
TOUR = [
    ("1 · Start a pipeline run", tour_ci.start_run, "tour-1-start"),
    ("2 · Watch CI execute", tour_ci.watch_ci, "tour-2-ci"),
    ("3 · Inspect a step", tour_ci.inspect_step, "tour-3-inspect"),
    ("4 · Continue to CD", tour_ci.continue_cd, "tour-4-cd"),
    ("5 · Approve or reject", tour_cd.approve_or_reject, "tour-5-approve"),
    ("6 · Monitor deployment", tour_cd.monitor_deployment, "tour-6-deploy"),
    ("7 · View MLflow runs", tour_cd.view_mlflow, "tour-7-mlflow"),
    ("8 · Monitor live claims", tour_ops.live_claims, "tour-8-drift"),
    ("9 · Test failure scenarios", tour_ops.failure_scenarios, "tour-9-failures"),
    ("10 · Rollback", tour_ops.rollback, "tour-10-rollback"),
]
