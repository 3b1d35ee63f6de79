"""A page that draws the registry's lineage graph (ui/lineage.py) over N synthetic versions, as the registry page
lays it out: graph and details side by side, stacked on a phone. `?versions=N` chooses N. The browser tests use
it to check the graph at sizes a played lifecycle would take hours of training to reach."""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for `ui` and `engine`

from engine.records import Run  # noqa: E402
from ui import lineage  # noqa: E402

T0 = 1_780_000_000.0


def versions(n: int) -> tuple[list[dict], dict[int, Run], list[dict]]:
    """N versions trained by runs 1..N, each promoted in turn, the last promotion rolled back; newest first."""
    champion, staging = max(n - 1, 1), n
    rows = [{"version": v, "run_id": f"mlflow-{v}", "created": T0 + 100 * v,
             "aliases": [a for a, held in (("champion", champion), ("staging", staging), ("challenger", staging))
                         if held == v],
             "tags": {"pipeline_run_id": str(v), "training_digest": f"{v:08x}feed", "decision_threshold": "0.47"}}
            for v in range(n, 0, -1)]
    history = [{"version": v, "since": T0 + 100 * v + 50, "until": T0 + 100 * (v + 1) + 50, "action": "promote",
                "run_id": v, "moved_by": "demo", "reason": ""} for v in range(1, n + 1)]
    history[-1]["until"] = T0 + 100 * n + 90
    history.append({"version": champion, "since": T0 + 100 * n + 90, "until": None, "action": "rollback",
                    "run_id": None, "moved_by": "demo", "reason": "bad canary"})
    runs = {v: Run.from_row({"id": v, "sha": f"{v:040x}", "message": "", "author": "demo", "seed": v,
                             "dataset_window": "2026-01-01..2026-01-31", "failure_modes": [], "status": "promoted",
                             "created_at": T0 + 100 * v, "updated_at": T0 + 100 * v, "finished_at": T0 + 100 * v})
            for v in range(1, n + 1)}
    return rows, runs, history


def drawn(n: int) -> lineage.Lineage:
    """The graph the registry page draws for N versions (its newest lineage.NEWEST, as lineage.load reads)."""
    rows, runs, history = versions(n)
    return lineage.build(rows[:lineage.NEWEST], runs, history)


if __name__ == "__main__":  # as Streamlit runs it (the tests import versions())
    st.set_page_config(layout="wide")
    graph = drawn(int(st.query_params.get("versions", "2")))
    drawing, detail = st.columns([1, 1], gap="large")
    with drawing:
        picked = lineage.draw(graph)
    detail.markdown(f"Version {picked} picked")
