"""The MLflow explorer: runs by stage and by a search on metrics and tags, one page at a time (page tokens, never
every run); a run's details and its artifacts to browse; several runs compared side by side; and the registered
versions with their aliases."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from mlflow.exceptions import MlflowException

from engine import Run
from engine.config import mask_url
from ui import common, errors, icons

STAGES = {"All": None, "CI": "CI", "CD": "CD"}
PER_PAGE = 8
SEARCH_HELP = ("MLflow's search syntax over this experiment's runs: metrics.f1 > 0.85, params.n_estimators = '100', "
               "tags.seed = '11', tags.commit_sha LIKE 'ab%', joined with and.")
OPEN = "mlf_open"  # the section's state: open or closed, for this browser tab
TEXT_ARTIFACTS = (".json", ".yaml", ".yml", ".txt", ".py", ".md", ".csv", "MLmodel", "requirements.txt")


def render(lab, run: Run | None) -> None:
    """A section, closed at first, that draws its contents only while it is open: runs (filtered, paginated), the
    chosen run's details, then the registry; fresh when `run` moves.

    Its tables, chart and MLflow reads were a quarter of the server's work for an arriving visitor, and most of the
    browser's, for a section below the fold that many visitors never open."""
    section = st.expander("MLflow explorer: runs, comparison, artifacts and the model registry", key=OPEN,
                          icon=icons.MLFLOW, on_change="rerun")
    if section.open:
        with section:
            _contents(lab, run)


def _contents(lab, run: Run | None) -> None:
    stamp = common.state_stamp(lab, run)
    try:
        run_id = _runs(lab, stamp)
        if run_id:
            _detail(lab, run_id)
        _registry(lab, stamp)
    except Exception as exc:  # MLflow down or misconfigured: the rest of the dashboard keeps working
        st.warning(lab.settings.redact(f"MLflow at {mask_url(lab.settings.tracking_uri)} is not answering: "
                                       f"{errors.first_line(exc)}. Start the tracking server or fix "
                                       "MLFLOW_TRACKING_URI."), icon=icons.OFFLINE)


def _runs(lab, stamp: tuple) -> str | None:
    st.session_state.setdefault("mlf_stage", "All")
    pick, search = st.columns([1, 2.2], vertical_alignment="center")
    stage = pick.segmented_control("Stage", list(STAGES), key="mlf_stage", required=True,
                                   label_visibility="collapsed", on_change=_reset_pages) or "All"
    where = search.text_input("Search runs", key="mlf_where", on_change=_reset_pages, help=SEARCH_HELP,
                              placeholder="search by metric or tag, e.g. metrics.f1 > 0.85 and tags.seed = '11'",
                              label_visibility="collapsed").strip()
    # tokens[i] fetches page i; a page's reply tells where the next one starts.
    tokens = st.session_state.setdefault("mlf_tokens", [None])
    page = st.session_state.setdefault("mlf_page", 0)
    try:
        rows, next_token = common.mlflow_runs(lab, lab.settings.tracking_uri, STAGES[stage], tokens[page], PER_PAGE,
                                              stamp, where)
    except MlflowException as exc:
        if not where or exc.error_code != "INVALID_PARAMETER_VALUE":
            raise
        st.error(f"The search {common.md_escape(where)} is not one MLflow understands "
                 f"({common.md_escape(errors.first_line(exc))}). {SEARCH_HELP}", icon=icons.REFUSED)
        return None
    del tokens[page + 1:]
    if next_token:
        tokens.append(next_token)
    if not rows:
        st.caption(f"No MLflow run matches {common.md_escape(where)}." if where and page == 0 else
                   "No MLflow runs yet: the CI's last step logs one." if page == 0 else "No more runs.")
        return None
    table = pd.DataFrame([{"MLflow run": r["name"], "#": r["pipeline_run_id"], "F1": r.get("f1"),
                           "AUC": r.get("roc_auc"), "id": r["run_id"]} for r in rows])
    picked = st.dataframe(table.drop(columns=["id"]), hide_index=True, width="stretch", on_select="rerun",
                          selection_mode="single-row", key=f"mlf_table_{stage}_{page}",
                          column_config={"F1": st.column_config.NumberColumn(format="%.3f"),
                                         "AUC": st.column_config.NumberColumn(format="%.3f", help="ROC-AUC"),
                                         "#": st.column_config.TextColumn(help="pipeline run")})
    newer, where, older = st.columns([1, 1.2, 1], vertical_alignment="center")
    newer.button("Newer", icon=icons.NEWER, key="mlf_newer", disabled=page == 0, on_click=_turn, args=(-1,),
                 width="stretch")
    where.caption(f"page {page + 1} · {len(rows)} runs")
    older.button("Older", icon=icons.OLDER, key="mlf_older", disabled=not next_token, on_click=_turn, args=(1,),
                 width="stretch")
    compare(rows)
    chosen = picked.selection.rows if picked is not None else []
    return table["id"].iloc[chosen[0] if chosen else 0]


def compare(rows: list[dict]) -> None:
    """Runs of this page picked side by side: every metric in a table, and a chart of the shared ones."""
    names = {r["run_id"]: f"{r['name']} (#{r['pipeline_run_id']})" for r in rows}
    picked = st.multiselect("Compare runs", list(names), format_func=names.get, key="mlf_compare",
                            placeholder="pick two or more runs of this page to compare them")
    picked = [r for r in rows if r["run_id"] in picked]
    if len(picked) < 2:
        return
    frame = compare_frame(picked)
    st.dataframe(frame, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4g")
                                                         for c in frame.columns})
    st.altair_chart(compare_chart(frame), width="stretch")


def compare_frame(rows: list[dict]) -> pd.DataFrame:
    """Metric by run: one row per metric any of the runs logged, one column per run (empty where it did not)."""
    keys = ("run_id", "name", "status", "start", "stage", "commit_sha", "pipeline_run_id")
    data = {f"{r['name']} (#{r['pipeline_run_id']})": {k: v for k, v in r.items() if k not in keys} for r in rows}
    return pd.DataFrame(data).sort_index().rename_axis("metric")


def compare_chart(frame: pd.DataFrame) -> alt.Chart:
    """The metrics every picked run logged that are shares (0 to 1), a bar per run side by side."""
    shared = frame.dropna()
    shared = shared[((shared >= 0) & (shared <= 1)).all(axis=1)]
    long = shared.reset_index().melt(id_vars="metric", var_name="run", value_name="value")
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("metric:N", title=None, axis=alt.Axis(labelAngle=0)), xOffset="run:N",
        y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1])), color=alt.Color("run:N", title=None,
                                                                                      legend=alt.Legend(orient="bottom")),
        tooltip=["run", "metric", alt.Tooltip("value:Q", format=".4f")]).properties(height=260)


def _reset_pages() -> None:
    st.session_state["mlf_tokens"], st.session_state["mlf_page"] = [None], 0
    st.session_state.pop("mlf_compare", None)


def _turn(step: int) -> None:
    st.session_state["mlf_page"] = max(0, st.session_state.get("mlf_page", 0) + step)


def _detail(lab, run_id: str) -> None:
    d = common.mlflow_run(lab, lab.settings.tracking_uri, run_id)
    url = common.mlflow_run_url(lab, run_id)
    link = f" · [open in MLflow UI]({url})" if url else ""
    st.markdown(f"**{common.md_escape(d['name'])}** · {d['status']}{link}")
    st.caption(f"run id {run_id} · started {common.fmt_ts(d['start'])}")
    with st.expander(f"Metrics ({len(d['metrics'])}) and params ({len(d['params'])})", expanded=True):
        st.dataframe(_pairs({k: f"{v:.4g}" for k, v in d["metrics"].items()}, "metric"), hide_index=True,
                     width="stretch")
        st.dataframe(_pairs(d["params"], "param"), hide_index=True, width="stretch")
    with st.expander(f"Tags ({len(d['tags'])}) and dataset inputs ({len(d['inputs'])})"):
        st.dataframe(_pairs(d["tags"], "tag"), hide_index=True, width="stretch")
        for ds in d["inputs"]:
            st.markdown(f"{icons.DATASET} **{common.md_escape(ds['name'])}** · digest `{ds['digest']}` · "
                        f"{ds['context']} · {ds['source_type']}")
            if ds.get("profile"):
                st.caption(f"profile: {ds['profile']}")
    _artifacts(lab, run_id, d["artifacts"])


def _pairs(values: dict, what: str) -> pd.DataFrame:
    return pd.DataFrame(sorted(values.items()), columns=[what, "value"])


def _artifacts(lab, run_id: str, paths: list[str]) -> None:
    """Every artifact of the run: pick one to see it (a picture, or text) and download it."""
    if not paths:
        return
    with st.expander(f"Artifacts ({len(paths)})", expanded=any(p.endswith(".png") for p in paths)):
        first = next((i for i, p in enumerate(paths) if p.endswith(".png")), 0)
        path = st.selectbox("Artifact", paths, index=first, key=f"mlf_artifact_{run_id}")
        if path.endswith(".png"):
            st.image(common.artifact_image(lab, lab.settings.tracking_uri, run_id, path), caption=path)
        elif path.endswith(TEXT_ARTIFACTS):
            text = common.artifact_text(lab, lab.settings.tracking_uri, run_id, path)
            st.code(text if text is not None else "(not text)", language=_language(path), wrap_lines=True)
        else:
            st.caption(f"{icons.FILE} {path}: a binary file (the model itself, or its environment); download it "
                       "to open it.")
        st.download_button(f"Download {path.rsplit('/', 1)[-1]}", icon=icons.DOWNLOAD, on_click="ignore",
                           data=lambda: lab.artifact(run_id, path), file_name=path.rsplit("/", 1)[-1],
                           key=f"mlf_download_{run_id}")


def _language(path: str) -> str | None:
    return {"json": "json", "yaml": "yaml", "yml": "yaml", "py": "python", "MLmodel": "yaml"}.get(
        path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else path.rsplit("/", 1)[-1])


def _registry(lab, stamp: tuple) -> None:
    st.markdown("#### Model registry")
    versions = common.model_versions(lab, lab.settings.tracking_uri, stamp)
    if not versions:
        st.caption("No registered versions yet: Continue to CD registers one (alias challenger).")
        return
    champion = next((v["version"] for v in versions if "champion" in v["aliases"]), None)
    if champion:
        st.success(f"Champion: **claims-settlement-rf v{champion}**", icon=icons.CHAMPION)
    else:
        st.caption("No champion yet: approve a run and let it promote.")
    table = pd.DataFrame([{"version": v["version"], "aliases": ", ".join(f"@{a}" for a in sorted(v["aliases"])),
                           "created": common.fmt_ts(v["created"]), "approval": v["tags"].get("approval", ""),
                           "pipeline run": v["tags"].get("pipeline_run_id", "")} for v in versions])
    # The champion is named above and carries @champion here: no per-cell styling (a pandas Styler costs more to
    # send than the table itself).
    st.dataframe(table, hide_index=True, width="stretch")
