"""The shared charts' shapes: a square confusion matrix with level labels, and heights Vega-Lite can fit."""
from __future__ import annotations

from ui import charts, score

CM = {"labels": ["Approved", "Denied"], "matrix": [[410, 35], [52, 503]]}


def test_the_confusion_matrix_has_square_cells_and_level_labels():
    spec = charts.confusion_heatmap(CM).to_dict()
    assert spec["width"] == spec["height"] == 2 * charts.CELL_PX  # not a strip across the page
    assert spec["config"]["axis"]["labelAngle"] == 0  # "Approved" and "Denied" read across, not upwards
    cells = {(r["actual"], r["predicted"]): r["count"] for r in spec["datasets"][spec["data"]["name"]]}
    assert cells == {("Approved", "Approved"): 410, ("Approved", "Denied"): 35, ("Denied", "Approved"): 52,
                     ("Denied", "Denied"): 503}


def test_bar_charts_have_a_fixed_height_so_that_streamlit_can_fit_them_without_a_vega_warning():
    # A step height made Vega-Lite drop Streamlit's fit ("Dropping fit-y ..." in the console, 45 times a visit).
    importance = [{"feature": f"f{i}", "mean_abs_shap": 0.1 * i} for i in range(5)]
    psi = [{"feature": f"f{i}", "psi": 0.05 * i, "level": "none"} for i in range(4)]
    result = {"contributions": [{"feature": "f", "value": 1.0, "shap": 0.1}], "base_value": 0.5,
              "p_approved": 0.6, "threshold": 0.5}
    for chart, rows, step in ((charts.importance_bars(importance), 5, 22), (charts.psi_bars(psi), 4, 22),
                              (score.waterfall(result), 3, 28)):
        assert chart.to_dict()["height"] == rows * step


def test_the_worked_bins_charts_have_one_fixed_height_that_grows_with_the_bins():
    # ui/drift.py's last two step heights: the same console warning on the Drift page's worked bins.
    from ui import drift
    for count in (3, 10, 16):
        bins = [{"label": f"bin {i}", "reference_share": 1 / count, "current_share": 1 / count,
                 "contribution": 0.0} for i in range(count)]
        heights = {chart.to_dict()["height"] for chart in (drift.shares_chart(bins), drift.contribution_chart(bins))}
        assert heights == {max(drift.LINE_HEIGHT, count * drift.BIN_ROW)}, (count, heights)
