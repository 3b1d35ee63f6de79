"""The dashboard's MLflow explorer on a copy of the played lifecycle: runs a page at a time (newest first, page
tokens both ways), and the newest run's details with its artifacts."""
from __future__ import annotations

import base64
import json

import pandas as pd
import pytest

from tests.ui.conftest import frame_with, texts
from ui.explorer import OPEN, PER_PAGE


@pytest.fixture
def app(app):
    """The dashboard with the explorer's section open, as a visitor who clicked it has it."""
    app.session_state[OPEN] = True
    return app


def test_the_explorer_is_closed_at_first_and_reads_nothing_until_opened(app, played_dir, make_lab, monkeypatch):
    from engine.lab import Lab
    reads = []
    for name in ("mlflow_runs", "mlflow_run", "model_versions"):
        real = getattr(Lab, name)
        monkeypatch.setattr(Lab, name, lambda self, *a, _real=real, _name=name, **k: reads.append(_name) or
                            _real(self, *a, **k))
    del app.session_state[OPEN]
    app.run()
    assert not app.exception
    section = next(e for e in app.expander if e.label.startswith("MLflow explorer"))
    assert not section.children and reads == []
    assert "MLflow run" not in [c for f in app.dataframe for c in f.value.columns]

    app.session_state[OPEN] = True
    app.run()
    assert not app.exception
    assert sorted(set(reads)) == ["mlflow_run", "mlflow_runs", "model_versions"]
    assert len(frame_with(app, "MLflow run")) == 4


def pipeline_mlflow_runs(lab) -> list[tuple[str, str]]:
    """(pipeline run id, MLflow run id) of every MLflow run the pipeline's steps logged, newest first."""
    logged = [(s.started_at, str(run.id), s.outputs["mlflow_run_id"]) for run in lab.runs()
              for s in lab.run(run.id).steps if (s.outputs or {}).get("mlflow_run_id")]
    return [(run_id, mlflow_id) for _, run_id, mlflow_id in sorted(logged, reverse=True)]


def test_runs_page_by_page_newest_first_both_ways(app, played_dir, make_lab):
    lab = make_lab()
    logged = pipeline_mlflow_runs(lab)
    assert len(logged) == 4  # CI and CD of runs 1 and 2
    extra = PER_PAGE - 1  # logged after the pipeline's: page 1 holds them and the newest pipeline run
    for i in range(extra):
        lab.tracking.finish(lab.tracking.start_run(f"extra-{i}", {"stage": "CI", "pipeline_run_id": "0"}))
    names = {mlflow_id: lab.tracking.client.get_run(mlflow_id).info.run_name for _, mlflow_id in logged}

    app.run()
    assert not app.exception
    first = frame_with(app, "MLflow run")
    assert len(first) == PER_PAGE
    assert sorted(first["MLflow run"][:extra]) == [f"extra-{i}" for i in range(extra)]
    assert (first["MLflow run"].iloc[-1], first["#"].iloc[-1]) == (names[logged[0][1]], logged[0][0])
    assert f"page 1 · {PER_PAGE} runs" in [c.value for c in app.caption]
    assert app.button(key="mlf_newer").disabled and not app.button(key="mlf_older").disabled

    app.button(key="mlf_older").click().run()
    second = frame_with(app, "MLflow run")
    assert second["MLflow run"].tolist() == [names[m] for _, m in logged[1:]]
    assert second["#"].tolist() == [r for r, _ in logged[1:]]
    assert "page 2 · 3 runs" in [c.value for c in app.caption]
    assert app.button(key="mlf_older").disabled and not app.button(key="mlf_newer").disabled

    app.button(key="mlf_newer").click().run()
    assert frame_with(app, "MLflow run")["MLflow run"].tolist() == first["MLflow run"].tolist()


def test_the_newest_run_shows_its_metrics_and_artifacts(app, played_dir, make_lab):
    lab = make_lab()
    pipeline_run, mlflow_id = pipeline_mlflow_runs(lab)[0]  # run 2's CD run: SHAP and evaluation files
    full = lab.run(int(pipeline_run)).outputs_of("cd_full_train")
    assert full["mlflow_run_id"] == mlflow_id
    app.run()
    assert not app.exception
    assert f"run id {mlflow_id}" in " ".join(c.value for c in app.caption)
    metrics = frame_with(app, "metric").set_index("metric")["value"]
    assert metrics["roc_auc"] == f"{full['metrics']['roc_auc']:.4g}"
    artifacts = next(e for e in app.expander if e.label.startswith("Artifacts ("))
    browser = app.selectbox(key=f"mlf_artifact_{mlflow_id}")
    assert {"shap/importance.csv", "eval/confusion_matrix.json"} <= set(browser.options)
    [image] = artifacts.image
    assert image.captions == ["shap/beeswarm.png"]
    # The page carries the picture itself: a media URL is dropped at the session's next page run, and a browser
    # that fetched it after a page switch got a 404 (a console error, and a broken image).
    url = image.proto.imgs[0].url
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == lab.tracking.artifact_bytes(mlflow_id, "shap/beeswarm.png")


def test_any_artifact_can_be_opened_and_downloaded_as_mlflow_stored_it(app, played_dir, make_lab, served):
    lab = make_lab()
    _, mlflow_id = pipeline_mlflow_runs(lab)[0]
    app.run()
    app.selectbox(key=f"mlf_artifact_{mlflow_id}").set_value("eval/confusion_matrix.json").run()
    assert not app.exception
    stored = lab.tracking.artifact_bytes(mlflow_id, "eval/confusion_matrix.json")
    assert json.loads(next(c.value for c in app.code if c.language == "json")) == json.loads(stored)
    assert served(app.download_button(key=f"mlf_download_{mlflow_id}")) == stored


def test_runs_are_searched_by_metric_and_tag_and_a_bad_search_says_how_to_write_one(app, played_dir, make_lab):
    lab = make_lab()
    logged = pipeline_mlflow_runs(lab)
    f1 = {m: lab.tracking.client.get_run(m).data.metrics.get("f1") for _, m in logged}
    cut = sorted(v for v in f1.values() if v is not None)[1]  # at least one run above, one at or below
    app.run()
    app.text_input(key="mlf_where").set_value(f"metrics.f1 > {cut} and tags.pipeline_run_id = '2'").run()
    assert not app.exception
    names = {m: lab.tracking.client.get_run(m).info.run_name for _, m in logged}
    expected = [names[m] for r, m in logged if r == "2" and (f1[m] or 0) > cut]
    assert frame_with(app, "MLflow run")["MLflow run"].tolist() == expected
    app.text_input(key="mlf_where").set_value("f1 >> 0.8").run()
    assert not app.exception
    assert any("is not one MLflow understands" in e.value and "metrics.f1 > 0.85" in e.value for e in app.error)
    assert "is not answering" not in texts(app)  # MLflow is fine: the search was wrong


def test_two_runs_picked_are_compared_metric_by_metric_with_a_chart(app, played_dir, make_lab):
    lab = make_lab()
    logged = pipeline_mlflow_runs(lab)
    cd = [m for _, m in logged if lab.tracking.client.get_run(m).data.tags.get("stage") == "CD"]
    app.run()
    app.multiselect(key="mlf_compare").set_value(cd).run()
    assert not app.exception
    frame = next(d.value for d in app.dataframe if d.value.index.name == "metric")
    for mlflow_id in cd:
        run = lab.tracking.client.get_run(mlflow_id)
        column = frame[f"{run.info.run_name} (#{run.data.tags['pipeline_run_id']})"]
        assert column.dropna().to_dict() == pytest.approx(run.data.metrics)
    assert len(frame.columns) == 2 and pd.notna(frame.loc["f1"]).all()
    assert app.get("vega_lite_chart")
