"""The pipeline DAG, drawn as SVG by a small Streamlit component (st.components.v2): stages as lanes left to
right, nodes coloured by status with their duration, a pulse on the running step, a click selects a step.

Positions come from the specs (column = depth in the DAG, lanes in stage order), and only the links that are not
implied by another path are drawn, so the picture is a line with one branch and no link crosses another. The
SVG is built here from our own step titles and statuses (escaped); the component only swaps it in when it
changed, so nothing is remounted or redrawn while the run's statuses stay the same. Text is drawn at 13 px
whatever the page width: a narrow screen scrolls the DAG inside its frame instead of shrinking it.
"""
from __future__ import annotations

import base64
from html import escape

import streamlit as st

from engine import Run, Step, pipeline
from ui import common

NODE_W, NODE_H, COL_GAP, ROW_GAP = 104, 60, 18, 14
LANE_PAD, LANE_GAP, HEADER_H = 10, 14, 28
FONT = 13
# Named in the SVG itself: the page's first paint draws it as an image, which sees no page CSS (ui/theme.css).
FONT_FAMILY = "'Source Sans 3', 'Source Sans Pro', Helvetica, Arial, sans-serif"
DARK_TEXT = {"pending", "queued", "skipped", "awaiting_approval"}  # light fills: dark text reads better
WORDS = {"awaiting_approval": "your turn", "rolled_back": "rolled back", "pending": "not reached"}
TIMED = {"succeeded", "failed", "held", "interrupted"}  # statuses whose node also shows how long the step took

_JS = """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  let box = parentElement.querySelector(".lab-dag");
  if (!box) {
    box = document.createElement("div");
    box.className = "lab-dag";
    parentElement.appendChild(box);
  }
  if (box.dataset.svg !== data.svg) {  // unchanged statuses: leave the drawing alone
    box.innerHTML = data.svg;
    box.dataset.svg = data.svg;
    box.querySelectorAll("[data-step]").forEach((node) => {
      node.addEventListener("click", () => setTriggerValue("clicked", node.dataset.step));
    });
  }
  document.documentElement.dataset.labDag = "drawn";  // the plain first paint steps aside (ui/theme.css)
}
"""
_CSS = """
.lab-dag { overflow-x: auto; overflow-y: hidden; width: 100%; -webkit-overflow-scrolling: touch; }
.lab-dag svg { display: block; margin: 0 auto; }
.lab-dag [data-step] { cursor: pointer; }
.lab-dag [data-step]:hover rect.node { filter: brightness(1.08); }
.lab-dag .running rect.node { animation: lab-pulse 1.4s ease-in-out infinite; }
.lab-dag .running .halo { animation: lab-halo 1.4s ease-out infinite; }
@keyframes lab-pulse { 50% { opacity: 0.72; } }
@keyframes lab-halo { from { opacity: 0.55; stroke-width: 2; } to { opacity: 0; stroke-width: 14; } }
"""
_component = st.components.v2.component("lab_pipeline_dag", js=_JS, css=_CSS)
KEY = "pipeline_dag"


def columns() -> dict[str, int]:
    """Each step's column across the whole picture: lanes side by side in stage order, each lane starting where
    the previous one ended, and a step's column inside its lane its depth among the lane's own needs."""
    out, start = {}, 0
    for stage in pipeline.STAGES:
        depth: dict[str, int] = {}
        for spec in (s for s in pipeline.STEPS if s.stage == stage):
            depth[spec.name] = max((depth[n] + 1 for n in spec.needs if n in depth), default=0)
        out.update({name: start + d for name, d in depth.items()})
        start += max(depth.values()) + 1
    return out


def links() -> list[tuple[str, str]]:
    """The needs worth drawing: (need, step) unless the step also reaches the need through another need."""
    ancestors: dict[str, set[str]] = {}
    for spec in pipeline.STEPS:
        ancestors[spec.name] = set(spec.needs).union(*(ancestors[n] for n in spec.needs))
    return [(need, spec.name) for spec in pipeline.STEPS for need in spec.needs
            if not any(need in ancestors[other] for other in spec.needs if other != need)]


def positions() -> dict[str, tuple[int, int]]:
    """Top-left (x, y) of every node: steps sharing a column are stacked and centred on the middle row."""
    cols = columns()
    rows = max(sum(1 for c in cols.values() if c == col) for col in set(cols.values()))
    lane_of = {s.name: pipeline.STAGES.index(s.stage) for s in pipeline.STEPS}
    out: dict[str, tuple[int, int]] = {}
    for col in sorted(set(cols.values())):
        members = [s.name for s in pipeline.STEPS if cols[s.name] == col]
        for i, name in enumerate(members):
            offset = (rows - len(members)) / 2 + i
            x = LANE_PAD + col * (NODE_W + COL_GAP) + lane_of[name] * (2 * LANE_PAD + LANE_GAP - COL_GAP)
            out[name] = (x, int(HEADER_H + offset * (NODE_H + ROW_GAP)))
    return out


def _node(spec, step: Step | None, run: Run | None, pos: tuple[int, int], chosen: bool) -> str:
    shown = common.shown_status(run, step)
    fill = common.STEP_COLOURS.get(shown, common.STEP_COLOURS["pending"])
    ink = "#1B2430" if shown in DARK_TEXT else "#FFFFFF"
    took = common.duration(step) if step else None
    detail = "" if shown == "succeeded" and took is not None else WORDS.get(shown, shown)
    if took is not None and shown in TIMED:
        detail = " · ".join(filter(None, (detail, common.fmt_seconds(took))))
    x, y = pos
    lines = _wrap(spec.title)
    text_top = y + NODE_H / 2 - (len(lines) * (FONT + 2) + 11) / 2 + FONT - 1
    title = "".join(f'<tspan x="{x + NODE_W / 2}" dy="{0 if i == 0 else FONT + 2}">{escape(t)}</tspan>'
                    for i, t in enumerate(lines))
    border = ('stroke="#1B2430" stroke-width="3"' if chosen else
              ('stroke="#7A8391" stroke-dasharray="4 3"' if shown == "skipped" else f'stroke="{fill}"'))
    halo = (f'<rect class="halo" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="9" fill="none" '
            f'stroke="{fill}"/>' if shown == "running" else "")
    return (f'<g data-step="{spec.name}" class="{shown}"><title>{escape(spec.title)}: '
            f'{escape(detail)}</title>{halo}<rect class="node" x="{x}" y="{y}" width="{NODE_W}" '
            f'height="{NODE_H}" rx="9" fill="{fill}" {border}/>'
            f'<text x="{x + NODE_W / 2}" y="{text_top:.0f}" text-anchor="middle" font-size="{FONT}" '
            f'font-weight="600" fill="{ink}">{title}</text>'
            f'<text x="{x + NODE_W / 2}" y="{text_top + len(lines) * (FONT + 2) + 2:.0f}" text-anchor="middle" '
            f'font-size="{FONT - 1}" fill="{ink}">{escape(detail)}</text></g>')


def _wrap(title: str, width: int = 12) -> list[str]:
    """A title on one line, or two broken at the space nearest its middle."""
    if len(title) <= width or " " not in title:
        return [title]
    cut = min((i for i, ch in enumerate(title) if ch == " "), key=lambda i: abs(i - len(title) / 2))
    return [title[:cut], title[cut + 1:]]


def _link(a: tuple[int, int], b: tuple[int, int], bus_y: int) -> str:
    """A link from node a to node b: a smooth curve to the right, or (b further than the next column, as from
    the commit to the CD lane) a dashed route under the nodes."""
    ax, ay, bx, by = a[0] + NODE_W, a[1] + NODE_H / 2, b[0], b[1] + NODE_H / 2
    if bx - ax > 2 * (NODE_W + COL_GAP):
        sx, tx = a[0] + NODE_W / 2, b[0] + NODE_W / 2
        d = (f"M{sx},{a[1] + NODE_H} V{bus_y - 8} Q{sx},{bus_y} {sx + 8},{bus_y} H{tx - 8} "
             f"Q{tx},{bus_y} {tx},{bus_y - 8} V{b[1] + NODE_H + 2}")
        return f'<path d="{d}" fill="none" stroke="#A9B2BF" stroke-width="1.5" stroke-dasharray="5 4" ' \
               'marker-end="url(#lab-arrow)"/>'
    mid = (ax + bx) / 2
    return (f'<path d="M{ax},{ay} C{mid},{ay} {mid},{by} {bx - 2},{by}" fill="none" stroke="#7D8796" '
            'stroke-width="2" marker-end="url(#lab-arrow)"/>')


def svg(run: Run | None, selected: str | None) -> str:
    """The whole picture for `run` (None: every step not reached) with `selected` outlined."""
    steps = {s.name: s for s in run.steps} if run else {}
    pos = positions()
    bottom = max(y for _, y in pos.values()) + NODE_H
    bus_y = bottom + 16
    width = max(x for x, _ in pos.values()) + NODE_W + LANE_PAD
    height = bus_y + 12
    parts = []
    for stage in pipeline.STAGES:
        xs = [pos[s.name][0] for s in pipeline.STEPS if s.stage == stage]
        left, right = min(xs) - LANE_PAD, max(xs) + NODE_W + LANE_PAD
        parts.append(f'<rect x="{left}" y="0" width="{right - left}" height="{bottom + 8}" rx="10" '
                     f'fill="#F3F6FA"/><text x="{left + 10}" y="19" font-size="{FONT}" font-weight="700" '
                     f'fill="#5B6472">{escape(stage)}</text>')
    parts += [_link(pos[a], pos[b], bus_y) for a, b in links()]
    parts += [_node(spec, steps.get(spec.name), run, pos[spec.name], spec.name == selected)
              for spec in pipeline.STEPS]
    arrow = ('<defs><marker id="lab-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7D8796"/>'
             '</marker></defs>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="pipeline" '
            f'font-family="{FONT_FAMILY}">{arrow}{"".join(parts)}</svg>')


def render(run: Run | None, selected: str | None) -> str | None:
    """Draw the DAG; return the name of a step clicked in this rerun (None when nothing was clicked).

    The same picture also goes out as an image in plain HTML (st.html drops inline SVG), which the browser paints
    with the page's first elements: the component waits for its script chunk, which a new tab loads with every
    other element's chunk, half a second or more later. Once the component has drawn in this tab, the image is
    hidden for good (ui/theme.css), so clicks always reach the component.
    """
    picture = svg(run, selected)
    st.html(f'<div class="lab-dag-first"><img alt="pipeline" src="data:image/svg+xml;base64,'
            f'{base64.b64encode(picture.encode()).decode()}"></div>')
    result = _component(data={"svg": picture}, key=KEY, on_clicked_change=_clicked)
    clicked = getattr(result, "clicked", None) if result is not None else None
    return clicked if clicked in pipeline.BY_NAME else None


def _clicked() -> None:
    """Take a click in its own callback, which runs before anything is drawn: read in the page's body, a click
    that came during a redraw was lost whenever that run was cut short by the next one."""
    name = (st.session_state.get(KEY) or {}).get("clicked")
    if name in pipeline.BY_NAME:
        common.choose_step(name)


LEGEND = (("pending", "not reached"), ("queued", "queued"), ("running", "running"), ("succeeded", "succeeded"),
          ("failed", "failed"), ("held", "held the run"), ("awaiting_approval", "awaiting approval"),
          ("interrupted", "interrupted"), ("rejected", "rejected"), ("rolled_back", "rolled back"),
          ("skipped", "skipped"))


def legend() -> None:
    """One line with what the colours mean, in the DAG's own colours (each node also says its status)."""
    st.html('<div class="lab-legend">' + "".join(
        f'<span><i style="background:{common.STEP_COLOURS[status]}"></i>{escape(name)}</span>'
        for status, name in LEGEND) + "</div>")
