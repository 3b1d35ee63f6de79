"""The DAG's drawing: lanes left to right, links only where no other path implies them, none crossing, readable
text, statuses and durations on the nodes, the running node pulsing. Pure functions: no Streamlit run needed."""
from __future__ import annotations

import re

from engine import pipeline
from tests.conftest import make_run, make_step
from ui import common, dag


def _node(svg: str, name: str) -> str:
    return re.search(rf'<g data-step="{name}".*?</g>', svg, flags=re.S).group(0)


def test_links_are_the_needs_no_other_path_implies():
    # Worked out by hand from engine/pipeline.py: the deploy steps' needs on cd_full_train are implied by the
    # path through evaluate_vs_champion and manual_approval; the CD lane starts from the commit.
    assert dag.links() == [
        ("commit_received", "ci_tests"), ("commit_received", "data_validation"),
        ("data_validation", "ci_quick_train"), ("ci_quick_train", "mlflow_log_ci"),
        ("commit_received", "cd_full_train"), ("cd_full_train", "evaluate_vs_champion"),
        ("evaluate_vs_champion", "manual_approval"), ("manual_approval", "deploy_staging"),
        ("deploy_staging", "shadow_monitor"), ("shadow_monitor", "promote_prod")]


def test_lanes_run_left_to_right_and_every_link_points_right():
    pos = dag.positions()
    assert set(pos) == set(pipeline.NAMES)
    lanes = {stage: [pos[s.name][0] for s in pipeline.STEPS if s.stage == stage] for stage in pipeline.STAGES}
    assert max(lanes["CI"]) < min(lanes["CD"]) and max(lanes["CD"]) < min(lanes["Deploy"])
    for a, b in dag.links():
        assert pos[a][0] + dag.NODE_W < pos[b][0], (a, b)


def test_nodes_do_not_overlap():
    boxes = list(dag.positions().values())
    for i, (x1, y1) in enumerate(boxes):
        for x2, y2 in boxes[i + 1:]:
            assert abs(x1 - x2) >= dag.NODE_W or abs(y1 - y2) >= dag.NODE_H


def test_links_between_the_same_columns_do_not_cross():
    # Two links between the same pair of columns cross when their ends swap vertical order.
    pos, cols = dag.positions(), dag.columns()
    links = dag.links()
    for i, (a, b) in enumerate(links):
        for c, d in links[i + 1:]:
            if (cols[a], cols[b]) == (cols[c], cols[d]):
                assert (pos[a][1] - pos[c][1]) * (pos[b][1] - pos[d][1]) >= 0, ((a, b), (c, d))


def test_text_is_at_least_12_px_and_the_picture_keeps_its_size():
    svg = dag.svg(None, None)
    sizes = [int(s) for s in re.findall(r'font-size="(\d+)"', svg)]
    assert sizes and min(sizes) >= 12
    assert re.search(r'<svg [^>]*width="\d+" height="\d+"', svg)  # fixed pixels: a narrow frame scrolls


def test_nodes_show_status_words_durations_and_the_held_gate():
    steps = [make_step(n, "succeeded", started_at=10.0, finished_at=11.25, outputs={}) for n in pipeline.NAMES]
    steps[-2] = make_step(steps[-2].name, "failed", started_at=10.0, finished_at=11.25)  # shadow_monitor stopped it
    steps[-1] = make_step(steps[-1].name, "skipped")
    svg = dag.svg(make_run("held", steps), selected="shadow_monitor")
    held = _node(svg, "shadow_monitor")
    assert 'class="held"' in held and common.STEP_COLOURS["held"] in held and "held · 1.2 s" in held
    assert 'stroke-width="3"' in held  # the selected node
    assert ">1.2 s<" in _node(svg, "ci_quick_train")
    assert ">skipped<" in _node(svg, "promote_prod")


def test_the_running_node_pulses_and_a_rejection_is_not_a_failure():
    steps = [make_step(n) for n in pipeline.NAMES]
    steps[1] = make_step(steps[1].name, "running", started_at=10.0)
    svg = dag.svg(make_run("running", steps), None)
    assert 'class="running"' in _node(svg, "ci_tests") and 'class="halo"' in _node(svg, "ci_tests")
    steps[1] = make_step(steps[1].name, "succeeded", started_at=10.0, finished_at=12.0)
    steps[pipeline.NAMES.index("manual_approval")] = make_step("manual_approval", "failed")
    gate = _node(dag.svg(make_run("rejected", steps), None), "manual_approval")
    assert 'class="rejected"' in gate and common.STEP_COLOURS["rejected"] in gate
    assert common.STEP_COLOURS["failed"] not in gate


def test_titles_are_escaped():
    class Spec:
        name, title, gate = "x", "<b>bold</b> & co", False
    node = dag._node(Spec, None, None, (0, 0), False)
    assert "<b>" not in node and "&lt;b&gt;bold&lt;/b&gt; &amp;" in node
