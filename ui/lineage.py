"""Model lineage: which pipeline run trained each registered version, where each alias points now, and which
versions were champion before, drawn left to right: runs and aliases, then versions. Two columns keep the labels
at their size on a phone (vis-network shrinks a drawing to fit its frame), and edges carry no labels (they
piled up and were clipped from two versions on): a version's own box says whether it was or is champion, and the
details below the graph give every tenure with its dates.

`build` is pure (lists and dicts in, plain node/edge dicts out) so it is tested without Streamlit; `draw` hands
them to streamlit-agraph (vis-network) with only options vis accepts, so the browser console stays clean.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st
from streamlit_agraph import Config, Edge, Node, agraph

from engine import BadInput, Lab, Run, RunStatus
from engine.config import CHALLENGER, CHAMPION, STAGING
from engine.lab import champion_line
from ui import icons
from ui.common import STEP_COLOURS, iso_ts, md_escape, mlflow_run_url
from ui.pagekit import dashboard_link

ALIASES = (CHAMPION, STAGING, CHALLENGER)
PICK = "lineage_pick"  # the last node clicked: agraph forgets it whenever its data change
ROLLED_BACK = "rolled_back"  # a promoted run whose champion a rollback undid (as on the dashboard)
RUN_COLOURS = {
    RunStatus.QUEUED.value: STEP_COLOURS["queued"],
    RunStatus.RUNNING.value: STEP_COLOURS["running"],
    RunStatus.CI_COMPLETE.value: STEP_COLOURS["succeeded"],
    RunStatus.AWAITING_APPROVAL.value: STEP_COLOURS["awaiting_approval"],
    RunStatus.PROMOTED.value: STEP_COLOURS["succeeded"],
    RunStatus.FAILED.value: STEP_COLOURS["failed"],
    RunStatus.REJECTED.value: STEP_COLOURS["rejected"],
    RunStatus.HELD.value: STEP_COLOURS["held"],
    RunStatus.INTERRUPTED.value: STEP_COLOURS["interrupted"],
    ROLLED_BACK: STEP_COLOURS["rolled_back"],
}
UNKNOWN = STEP_COLOURS["pending"]  # a run the store no longer has
VERSION_COLOUR = "#1F6FD6"
ALIAS_COLOUR = "#F2B01E"
EDGE_COLOURS = {"trained": "#7A869A", "holds": "#C98A00"}
TEXT_COLOUR = "#1B2430"
COLUMN = {"run": 0, "alias": 0, "version": 1}
LEVEL_PX = 200  # between the two columns' centres: the drawing is about 370 px wide, a phone's width
BOX_PX = 168  # every box as wide (the longest line fits), so the columns line up
LINE_PX, PAD_PX, GAP_PX = 18, 20, 12  # a box is LINE_PX a line plus PAD_PX; GAP_PX between boxes
ROW_GAP_PX = 26  # between one version's row and the next
NEWEST = 12  # versions drawn: more would make a page-long graph; the details below reach every version


def run_node(run_id: int) -> str:
    """Node id of a pipeline run."""
    return f"run:{run_id}"


def version_node(version: int) -> str:
    """Node id of a registered model version."""
    return f"version:{version}"


def alias_node(alias: str) -> str:
    """Node id of a registry alias."""
    return f"alias:{alias}"


@dataclass(frozen=True)
class Lineage:
    """The graph as plain data: vis-network node and edge dicts, and the versions by number (for the details)."""

    nodes: list[dict]
    edges: list[dict]
    versions: dict[int, dict]
    history: list[dict]
    undone: dict[int, dict]  # by run id: the rollback that undid the run's promotion (engine.lab.champion_line)

    def version_of(self, node_id: str | None) -> int | None:
        """The version a clicked node stands for: itself, the version a run trained, or the version an alias holds."""
        if not node_id:
            return None
        kind, _, name = node_id.partition(":")
        if kind == "version" and name.isdigit() and int(name) in self.versions:
            return int(name)
        solid = [e for e in self.edges if not e.get("dashes")]
        return next((int(e["to"].partition(":")[2]) for e in solid if e["from"] == node_id), None)


    def run_link(self, node_id: str) -> str | None:
        """The dashboard opened on the run behind a node (relative to agraph's frame, which is served from
        <app>/component/<name>/index.html), or None when the node stands for no known run."""
        number = self.version_of(node_id)
        run_id = source_run(self.versions[number]) if number is not None else None
        return None if run_id is None else f"../../?run={run_id}"  # one parameter: innerHTML would turn & into &amp;


def source_run(version: dict) -> int | None:
    """The pipeline run that trained a version (its `pipeline_run_id` tag), or None when it has none."""
    value = version["tags"].get("pipeline_run_id", "")
    return int(value) if value.isdigit() else None


def build(versions: list[dict], runs: dict[int, Run], history: list[dict]) -> Lineage:
    """Nodes and edges of the lineage: run -> version (it trained it), alias -> version it holds now; a version
    that was champion before says so in its box (and whether a rollback ended its last tenure)."""
    undone = champion_line(history)[1]
    nodes: list[dict] = []
    edges: list[dict] = []
    seen_runs: set[int] = set()
    for v in versions:  # newest first: the newest version is drawn at the top
        number, run_id = v["version"], source_run(v)
        if run_id is not None and run_id not in seen_runs:
            seen_runs.add(run_id)
            run = runs.get(run_id)
            status = (ROLLED_BACK if run_id in undone else run.status.value) if run else "unknown"
            nodes.append(_node(run_node(run_id), f"run {run_id}\n{status.replace('_', ' ')}", "run",
                               RUN_COLOURS.get(status, UNKNOWN)))
        if run_id is not None:
            edges.append(_edge(run_node(run_id), version_node(number), "trained"))
        nodes.append(_node(version_node(number), _version_label(v, history), "version", VERSION_COLOUR))
    held = {alias: v["version"] for v in versions for alias in v["aliases"]}
    for alias in ALIASES:
        nodes.append(_node(alias_node(alias), f"@{alias}", "alias", ALIAS_COLOUR if alias in held else UNKNOWN))
        if alias in held:
            edges.append(_edge(alias_node(alias), version_node(held[alias]), "holds"))
    _place(nodes, edges)
    return Lineage(nodes, edges, {v["version"]: v for v in versions}, history, undone)


def _place(nodes: list[dict], edges: list[dict]) -> None:
    """Give every node its x, y (vis centres): one row per version, newest on top, its box on the right and, on
    the left, the run that trained it with the aliases that hold it under that run. Nothing crosses, and each row
    is as tall as its boxes (a laid-out tree spread the rows apart until vis shrank the whole drawing)."""
    by_id = {n["id"]: n for n in nodes}
    pointing: dict[str, list[str]] = {}
    for e in edges:
        pointing.setdefault(e["to"], []).append(e["from"])
    top = 0.0
    for version in (n for n in nodes if n["column"] == 1):
        left = top
        for node in (by_id[i] for i in pointing.get(version["id"], [])):
            left = _put(node, 0, left)
        top = max(left, _put(version, LEVEL_PX, top)) - GAP_PX + ROW_GAP_PX
    for node in (n for n in nodes if "y" not in n):  # aliases that hold no version drawn
        top = _put(node, 0, top)


def _put(node: dict, x: float, top: float) -> float:
    """Place `node`'s box with its top edge at `top`; return where the next box below it may start."""
    height = LINE_PX * (node["label"].count("\n") + 1) + PAD_PX
    node["x"], node["y"] = x, top + height / 2
    return top + height + GAP_PX


def extent(lineage: Lineage) -> tuple[float, float]:
    """(width, height) of the drawing at scale 1: vis-network shrinks it to fit its frame when it is wider."""
    bottom = max((n["y"] + (LINE_PX * (n["label"].count("\n") + 1) + PAD_PX) / 2 for n in lineage.nodes),
                 default=0)
    return LEVEL_PX + BOX_PX, bottom


def _version_label(v: dict, history: list[dict]) -> str:
    lines = [f"v{v['version']}"]
    digest = v["tags"].get("training_digest")
    if digest:
        lines.append(f"data {digest[:8]}")
    threshold = v["tags"].get("decision_threshold")
    if threshold:
        try:
            lines.append(f"threshold {float(threshold):.2f}")
        except ValueError:
            lines.append(f"threshold {threshold}")
    tenures = [i for i, h in enumerate(history) if h["version"] == v["version"]]
    past = [i for i in tenures if history[i]["until"] is not None]
    if past and len(past) == len(tenures):  # champion now: its @champion arrow says so
        ended = past[-1] + 1 < len(history) and history[past[-1] + 1]["action"] == "rollback"
        lines += ["was champion until", clock(history[past[-1]]["until"]) + (" (rolled back)" if ended else "")]
    return "\n".join(lines)


def _node(node_id: str, label: str, kind: str, colour: str) -> dict:
    return {"id": node_id, "label": label, "column": COLUMN[kind], "shape": "box",
            "widthConstraint": {"minimum": BOX_PX, "maximum": BOX_PX},
            "color": {"background": "#FFFFFF", "border": colour,
                      "highlight": {"background": "#EAF2FD", "border": colour}},
            "borderWidth": 3, "borderWidthSelected": 4}


def _edge(source: str, target: str, kind: str) -> dict:
    return {"id": f"{source}->{target}", "from": source, "to": target, "color": EDGE_COLOURS[kind]}


def clock(ts: float) -> str:
    """Time of day in UTC to the second (the details below the graph give the date)."""
    return time.strftime("%H:%M:%S", time.gmtime(ts))


# ---- Streamlit --------------------------------------------------------------------------------------------
def load(lab: Lab) -> Lineage:
    """Read versions (MLflow), the runs that trained them and the champion history, and build the lineage."""
    versions = lab.model_versions()[:NEWEST]
    runs = {}
    for run_id in {r for r in map(source_run, versions) if r is not None}:
        try:
            runs[run_id] = lab.run(run_id)
        except BadInput:  # a registry shared with another lab's store: drawn as an unknown run
            pass
    return build(versions, runs, lab.champion_history())


def config(lineage: Lineage) -> Config:
    """vis-network options, and nothing else: agraph's Config also copies its own keyword arguments (and a
    `groups: null`) into the options, which vis reports as console errors, so the options are set whole."""
    options = Config()
    options.__dict__ = {
        "height": f"{40 + extent(lineage)[1]:.0f}px", "width": "100%", "autoResize": True,
        "physics": {"enabled": False}, "layout": {"hierarchical": {"enabled": False}},
        "interaction": {"dragNodes": False, "zoomView": False, "hover": True, "tooltipDelay": 86_400_000},
        "nodes": {"shape": "box", "margin": 8, "font": {"size": 15, "color": TEXT_COLOUR}},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.6}}, "smooth": {"type": "cubicBezier",
                                                                                      "forceDirection": "horizontal"}},
    }
    return options


def draw(lineage: Lineage) -> int | None:
    """Draw the graph; the version to detail: the last one clicked (via its run or alias too), else champion's,
    else the newest."""
    nodes = [_agraph_node(n, lineage.run_link(n["id"])) for n in lineage.nodes]
    edges = [Edge(e["from"], e["to"], **{k: v for k, v in e.items() if k not in ("from", "to")})
             for e in lineage.edges]
    clicked = agraph(nodes, edges, config(lineage))
    if clicked is not None:  # None before any click and after a remount: keep the last real click
        st.session_state[PICK] = clicked
    picked = lineage.version_of(st.session_state.get(PICK))
    return picked or lineage.version_of(alias_node(CHAMPION)) or max(lineage.versions, default=None)


def _agraph_node(spec: dict, link: str | None) -> Node:
    # agraph's page parses a node's title as HTML and a double-click opens that HTML as a URL (and throws when a
    # node has no title). So the title is the dashboard link of the node's run, or "<body>", which parses to
    # nothing: a double-click then does nothing. Tooltips are off (tooltipDelay), the title is not a tooltip.
    return Node(**{k: v for k, v in spec.items() if k != "column"}, title=link or "<body>")  # vis: x, y


def details(lab: Lab, lineage: Lineage, number: int) -> None:
    """One version: aliases, the run that trained it (linked to the dashboard), champion tenures, tags."""
    v = lineage.versions[number]
    aliases = ", ".join(f"@{a}" for a in v["aliases"]) or "no alias"
    st.markdown(f"**{icons.ALIAS} Version {number}** · {aliases} · registered {iso_ts(v['created'])}")
    run_id = source_run(v)
    if run_id is None:
        st.caption("This version carries no pipeline_run_id tag, so the run that trained it is unknown.")
    else:
        _source_run(lab, run_id, v["run_id"], run_id in lineage.undone)
    tenures = [h for h in lineage.history if h["version"] == number]
    for h in tenures:
        until = iso_ts(h["until"]) if h["until"] else "now"
        why = f": {md_escape(h['reason'])}" if h.get("reason") else ""
        st.markdown(f"{icons.CHAMPION} champion from {iso_ts(h['since'])} until {until} ({h['action']} by "
                    f"{md_escape(h['moved_by'])}{why})")
    st.dataframe([{"tag": k, "value": str(val)} for k, val in sorted(v["tags"].items())], hide_index=True,
                 key="lineage_tags")


def _source_run(lab: Lab, run_id: int, mlflow_id: str, rolled_back: bool) -> None:
    try:
        run = lab.run(run_id)
    except BadInput:  # the tag names a run this store does not hold (a registry shared with another lab)
        st.caption(f"Trained by pipeline run {run_id}, which this lab's store does not hold.")
        return
    message = md_escape(run.message.splitlines()[0][:80]) if run.message else ""
    status = run.status.value.replace("_", " ") + (", then rolled back" if rolled_back else "")
    st.markdown(f"Trained by **run {run_id}** ({status}) from commit `{run.sha[:7]}`"
                + (f" · {message}" if message else ""))
    dashboard_link(run_id, "cd_full_train", f"Open run {run_id} at its Full train step")
    url = mlflow_run_url(lab, mlflow_id)
    if url:
        st.link_button("MLflow run", url, icon=icons.MLFLOW)
    else:
        st.caption(f"MLflow run `{mlflow_id}`")
