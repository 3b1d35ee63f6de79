"""The MLflow explorer: runs by stage, one page at a time (page tokens, never every run), a run's details and
artifacts, and the registered versions with their aliases."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.config import mask_url
from ui import common, errors, icons

STAGES = {"All": None, "CI": "CI", "CD": "CD"}
PER_PAGE = 8


def render(lab, run: dict | None) -> None:
    """Runs (filtered, paginated), the chosen run's details, then the registry; fresh when `run` moves."""
    st.markdown("#### MLflow explorer")
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
    stage = st.segmented_control("Stage", list(STAGES), key="mlf_stage", required=True,
                                 label_visibility="collapsed", on_change=_reset_pages) or "All"
    # tokens[i] fetches page i; a page's reply tells where the next one starts.
    tokens = st.session_state.setdefault("mlf_tokens", [None])
    page = st.session_state.setdefault("mlf_page", 0)
    rows, next_token = common.mlflow_runs(lab, lab.tracking.uri, STAGES[stage], tokens[page], PER_PAGE,
                                             stamp)
    del tokens[page + 1:]
    if next_token:
        tokens.append(next_token)
    if not rows:
        st.caption("No MLflow runs yet: the CI's last step logs one." if page == 0 else "No more runs.")
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
    chosen = picked.selection.rows if picked is not None else []
    return table["id"].iloc[chosen[0] if chosen else 0]


def _reset_pages() -> None:
    st.session_state["mlf_tokens"], st.session_state["mlf_page"] = [None], 0


def _turn(step: int) -> None:
    st.session_state["mlf_page"] = max(0, st.session_state.get("mlf_page", 0) + step)


def _detail(lab, run_id: str) -> None:
    d = common.mlflow_run(lab, lab.tracking.uri, run_id)
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
    if not paths:
        return
    with st.expander(f"Artifacts ({len(paths)})", expanded=any(p.endswith(".png") for p in paths)):
        for path in paths:
            if path.endswith(".png"):
                st.image(common.artifact_image(lab, lab.tracking.uri, run_id, path), caption=path)
            else:
                st.caption(f"{icons.FILE} {path}")


def _registry(lab, stamp: tuple) -> None:
    st.markdown("#### Model registry")
    versions = common.model_versions(lab, lab.tracking.uri, stamp)
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
    styled = table.style.apply(lambda row: ["background-color: #FFF4CC; font-weight: 600"
                                            if row["version"] == champion else ""] * len(row), axis=1)
    st.dataframe(styled, hide_index=True, width="stretch")
