"""The pipeline DAG: one lane per stage (CI, CD, Deploy), left to right, nodes coloured by status.

Positions are computed from the specs (column = depth inside the lane), so a new step finds its place without
touching this file. agraph returns the clicked node id, or None after a remount (any colour change remounts it),
so the caller keeps the last real click in session state.
"""
from __future__ import annotations

import streamlit as st
from streamlit_agraph import Config, Edge, Node, agraph

from engine import pipeline
from ui import common

COL_WIDTH, ROW_HEIGHT, LANE_GAP = 122, 60, 72
LIGHT = {"pending", "queued", "skipped", "awaiting_approval"}  # dark text reads better on these fills


def _depths() -> dict[str, int]:
    """Each step's column: the longest chain of same-lane needs before it."""
    depth: dict[str, int] = {}
    for spec in pipeline.STEPS:  # specs are in topological order
        same = [depth[n] + 1 for n in spec.needs if pipeline.spec(n).stage == spec.stage]
        depth[spec.name] = max(same, default=0)
    return depth


def positions() -> dict[str, tuple[int, int]]:
    """(x, y) of every step: lanes stacked top to bottom, steps sharing a column spread around the lane's line."""
    depth, out, lane_top = _depths(), {}, 0
    for stage in pipeline.STAGES:
        names = [s.name for s in pipeline.STEPS if s.stage == stage]
        columns: dict[int, list[str]] = {}
        for name in names:
            columns.setdefault(depth[name], []).append(name)
        rows = max(len(v) for v in columns.values())
        for col, members in columns.items():
            for i, name in enumerate(members):
                offset = (i - (len(members) - 1) / 2) * ROW_HEIGHT
                out[name] = (col * COL_WIDTH, int(lane_top + (rows - 1) * ROW_HEIGHT / 2 + offset))
        lane_top += rows * ROW_HEIGHT + LANE_GAP
    return out


def _wrap(title: str, width: int = 11) -> str:
    """Break a long title at the space nearest its middle, so boxes stay narrow enough for a side column."""
    if len(title) <= width or " " not in title:
        return title
    spaces = [i for i, ch in enumerate(title) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - len(title) / 2))
    return title[:cut] + "\n" + title[cut + 1:]


def node_label(spec, step: dict | None) -> str:
    """The title, and the duration once the step has finished."""
    took = common.duration(step) if step else None
    title = _wrap(spec.title)
    return title if took is None else f"{title}\n{common.fmt_seconds(took)}"


def build(run: dict | None, selected: str | None) -> tuple[list[Node], list[Edge]]:
    """Nodes (with lane labels) and edges for `run`'s steps; `selected` is drawn with a heavy border."""
    steps = {s["name"]: s for s in run["steps"]} if run else {}
    pos = positions()
    nodes = []
    for spec in pipeline.STEPS:
        step = steps.get(spec.name)
        fill = common.step_colour(run, step)
        status = step["status"] if step else "pending"
        chosen = spec.name == selected
        node = Node(spec.name, label=node_label(spec, step), shape="box", x=pos[spec.name][0],
                    y=pos[spec.name][1], color={"background": fill, "border": "#1B2430" if chosen else fill},
                    borderWidth=4 if chosen else 1, margin=8, fixed=True, widthConstraint={"minimum": 84},
                    font={"color": "#1B2430" if status in LIGHT else "#FFFFFF", "size": 14, "face": "sans-serif"})
        node.title = ""  # agraph puts titles in innerHTML and opens them as a URL on double click
        nodes.append(node)
    for stage in pipeline.STAGES:  # lane names sit above each lane's first column, costing no width
        top = min(pos[s.name][1] for s in pipeline.STEPS if s.stage == stage)
        lane = Node(f"lane:{stage}", label=stage, shape="text", x=-8, y=top - 38, fixed=True,
                    font={"size": 13, "color": "#5B6472", "face": "sans-serif", "bold": True})
        lane.title = ""
        nodes.append(lane)
    edges = []
    for spec in pipeline.STEPS:
        for need in spec.needs:
            across = pipeline.spec(need).stage != spec.stage
            # Cross-lane edges carry data (the model version), not order: drawn lighter and dashed.
            edges.append(Edge(need, spec.name, color="#C3CAD5" if across else "#7D8796", dashes=across,
                              width=1 if across else 2, smooth={"type": "curvedCW", "roundness": 0.15}
                              if across else False))
    return nodes, edges


def render(run: dict | None, selected: str | None, height: int = 270) -> str | None:
    """Draw the DAG; return a newly clicked step's name (None when nothing new was clicked)."""
    nodes, edges = build(run, selected)
    config = Config(height=height, width=600, directed=True, physics=False, hierarchical=False,
                    interaction={"dragNodes": False, "dragView": False, "zoomView": False},
                    edges={"arrows": {"to": {"enabled": True, "scaleFactor": 0.6}}})
    config.width = "100%"  # fill the column; Config insists on pixels
    clicked = agraph(nodes=nodes, edges=edges, config=config)
    last = st.session_state.get("_dag_last")
    st.session_state["_dag_last"] = clicked
    if clicked is None or clicked == last or clicked not in pipeline.BY_NAME:
        return None  # a remount (None), the same click seen again, or a lane label
    return clicked


LEGEND = (("gray", "■", "idle"), ("blue", "□", "queued"), ("blue", "■", "running"), ("green", "■", "succeeded"),
          ("red", "■", "failed"), ("yellow", "■", "awaiting approval"), ("violet", "■", "interrupted"),
          ("gray", "□", "skipped"), ("orange", "■", "held the run"))


def legend() -> None:
    """One caption line with what the colours mean."""
    st.caption(" ".join(f":{colour}[{mark}] {name}" for colour, mark, name in LEGEND))
