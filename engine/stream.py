"""The live claims stream: production after promotion.

While the stream is on, an interval job in the engine's scheduler draws claims from the training generator (one
endless prefix-stable sequence, `generate_claims(start=...)`), has the `champion` score them through the pyfunc
MLflow serves and, while a `staging` version other than the champion exists, has staging score them as a shadow
(recorded, never served). Each claim is stored with both decisions, P(Approved), both versions and its true
outcome, which stays hidden until `label_delay` later claims have been produced: real outcomes arrive weeks
after the decision.

Every SNAPSHOT_EVERY claims a snapshot compares the latest WINDOW claims with the champion's own reference: the
head of the feed it was trained on and its CD holdout, regenerated exactly from its pipeline run (seed, window,
data shift), so a promotion or a rollback switches the reference with the model (engine/ml/monitor.py).

Scenarios change the generator's inputs, never the statistics. Each ramps in linearly over `ramp` claims.

One process produces: the producer holds a lease row in the store, renewed every tick and given up at the first
tick after the stream is stopped; a second runner on the same database finds the lease held and waits. Each
batch advances `next_seq` with a conditional update, and claim ids are unique in the table, so no claim is ever
stored twice, even across a restart.
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import asdict

import numpy as np
import pandas as pd
import sqlalchemy as sa

from engine.config import CHAMPION, MODEL_NAME, STAGING
from engine.errors import BadInput, Refused
from engine.ml import monitor
from engine.ml.claims import (  # SCENARIOS lives with the generator whose inputs it shifts; read here as well
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    ROWS_PER_SEED,
    SCENARIOS,
    Shift,
    derived_seed,
    generate_claims,
    label_array,
)
from engine.store import stream_claims, stream_snapshots, stream_state, timestamp

log = logging.getLogger(__name__)


STREAM_WINDOW = "2025-07-01..2025-12-31"  # the months after the default training window
STREAM_PURPOSE = 999                       # derived_seed purpose reserved for the stream
DEFAULT_RATE = 20.0                        # claims per second
DEFAULT_RAMP = 1000                        # claims over which a scenario reaches full intensity
DEFAULT_LABEL_DELAY = 300                  # claims produced before a claim's outcome arrives
SNAPSHOT_EVERY = 500                       # claims between drift snapshots
WINDOW = 5000                              # claims in a snapshot's sliding window
MIN_ROWS = 500                             # below this a snapshot says "not enough data"
REFERENCE_ROWS = 10000                     # rows of the champion's training feed (and holdout) kept as reference
CLOSED_LOOP_SNAPSHOTS = 3                  # consecutive major snapshots that trigger a retraining run
LEASE_SECONDS = 30.0                       # a producer that has not renewed for this long is presumed dead
MAX_LAG_SECONDS = 2.0                      # a late producer skips the backlog beyond this instead of bursting
MAX_RAMP = MAX_DELAY = 1_000_000


def _json_safe(value):
    """NaN and infinities become None (PostgreSQL's JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Stream:
    """The stream's controls, its producer job and its reads; owned by a Lab."""

    def __init__(self, lab):
        self.lab, self.store, self.settings = lab, lab.store, lab.settings
        self.owner = lab.runner.worker_id
        self._outage = False
        self._lock = threading.Lock()  # one batch at a time in this process (tick vs. a direct produce())

    # ---- controls -----------------------------------------------------------------------------------------
    def start(self, rate: float | None = None, scenario: str | None = None, ramp: int | None = None,
              label_delay: int | None = None, by: str = "", visitor: str | None = None,
              operator_key: str | None = None) -> dict:
        """Turn the stream on (or change its settings while on); return the state.

        In the public demo a visitor needs the operator key: the stream is the lab's production, shared by all."""
        state = self.state()
        rate = self._check_rate(state["rate"] if rate is None else rate)
        scenario = self._check_scenario(state["scenario"] if scenario is None else scenario)
        ramp = _check_int("ramp", state["ramp"] if ramp is None else ramp, MAX_RAMP)
        label_delay = _check_int("label delay", state["label_delay"] if label_delay is None else label_delay,
                                 MAX_DELAY)
        self.lab.guard.operator(visitor, operator_key, "starting or changing the live stream")
        if self.lab.tracking.alias_version(CHAMPION) is None:
            raise Refused("the stream is scored by the champion and there is none yet: promote a model first "
                          "(commit, continue, approve)")
        with self.store.tx() as c:
            current = self._state_row(c)
            values = {"enabled": True, "rate": rate, "scenario": scenario, "ramp": ramp,
                      "label_delay": label_delay, "updated_at": timestamp(), "updated_by": by or "cli"}
            if scenario != current["scenario"] or not current["enabled"]:
                values["scenario_seq"] = current["next_seq"]  # the ramp starts from here
            if not current["enabled"]:
                values["produced_at"] = timestamp()
            c.execute(sa.update(stream_state).where(stream_state.c.id == 1).values(**values))
            self.store.add_audit(c, by or "cli", "stream_start", None, "",
                                 {"rate": rate, "scenario": scenario, "ramp": ramp, "label_delay": label_delay})
        return self.state()

    def stop(self, by: str = "", visitor: str | None = None, operator_key: str | None = None) -> dict:
        """Turn the stream off; stored claims and snapshots stay."""
        self.lab.guard.operator(visitor, operator_key, "stopping the live stream")
        with self.store.tx() as c:
            self._state_row(c)
            c.execute(sa.update(stream_state).where(stream_state.c.id == 1)
                      .values(enabled=False, updated_at=timestamp(), updated_by=by or "cli"))
            self.store.add_audit(c, by or "cli", "stream_stop")
        return self.state()

    def set_closed_loop(self, enabled: bool, by: str = "", visitor: str | None = None,
                        operator_key: str | None = None) -> dict:
        """Opt in or out of drift-triggered retraining."""
        self.lab.guard.operator(visitor, operator_key, "turning the closed loop on or off")
        with self.store.tx() as c:
            self._state_row(c)
            c.execute(sa.update(stream_state).where(stream_state.c.id == 1)
                      .values(closed_loop=bool(enabled), updated_at=timestamp(), updated_by=by or "cli"))
            self.store.add_audit(c, by or "cli", "closed_loop", None, "on" if enabled else "off")
        return self.state()

    @property
    def max_rate(self) -> float:
        """The highest rate this lab accepts (lower in the public demo)."""
        s = self.settings
        return min(s.stream_max_rate, s.demo_max_stream_rate) if s.demo else s.stream_max_rate

    def _check_rate(self, rate) -> float:
        cap = self.max_rate
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise BadInput(f"rate {rate!r} is not a number; give claims per second, e.g. --rate 20") from None
        if not (math.isfinite(rate) and 0 < rate <= cap):
            where = " in this public demo" if cap < self.settings.stream_max_rate else ""
            raise BadInput(f"rate {rate:g} is out of range: give more than 0 and at most {cap:g} claims per "
                           f"second{where}")
        return rate

    @staticmethod
    def _check_scenario(name) -> str:
        if name not in SCENARIOS:
            raise BadInput(f"unknown scenario {name!r}; use one of: {', '.join(SCENARIOS)}")
        return name

    # ---- reads --------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """The persisted controls and position (created with defaults on first use)."""
        with self.store.engine.connect() as c:
            row = c.execute(sa.select(stream_state).where(stream_state.c.id == 1)).mappings().first()
        if row is None:
            with self.store.tx() as c:
                return self._state_row(c)
        return dict(row)

    def _state_row(self, conn) -> dict:
        """The state row inside a transaction, locked where the backend can (created if missing)."""
        query = sa.select(stream_state).where(stream_state.c.id == 1)
        if self.store.is_postgres:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            self.store.lock(conn, "stream-state")
            row = conn.execute(query).mappings().first()
        if row is None:
            defaults = dict(id=1, enabled=False, rate=DEFAULT_RATE, scenario="none", ramp=DEFAULT_RAMP,
                            scenario_seq=0, label_delay=DEFAULT_LABEL_DELAY, closed_loop=False, next_seq=0,
                            labelled_seq=0, produced_at=None, lease_owner=None, lease_until=None,
                            updated_at=timestamp(), updated_by="")
            conn.execute(sa.insert(stream_state).values(**defaults))
            return defaults
        return dict(row)

    def status(self) -> dict:
        """State, producer, versions, counts and the latest snapshot (what `stream status` prints)."""
        state = self.state()
        now = timestamp()
        with self.store.engine.connect() as c:
            stored = c.execute(sa.select(sa.func.count()).select_from(stream_claims)).scalar_one()
            labelled = c.execute(sa.select(sa.func.count()).select_from(stream_claims)
                                 .where(stream_claims.c.outcome.is_not(None))).scalar_one()
        latest = self.snapshots(limit=1)
        tracking = self.lab.tracking
        return {
            "enabled": state["enabled"], "rate": state["rate"], "scenario": state["scenario"],
            "scenario_description": SCENARIOS[state["scenario"]].description, "ramp": state["ramp"],
            "intensity": self.intensity(state, state["next_seq"]), "label_delay": state["label_delay"],
            "closed_loop": state["closed_loop"],
            "producer": {"owner": state["lease_owner"],
                         "alive": bool(state["lease_until"] and state["lease_until"] > now)},
            "champion_version": tracking.alias_version(CHAMPION), "staging_version": tracking.alias_version(STAGING),
            "produced": state["next_seq"], "stored": stored, "labelled": labelled,
            "retention": self.settings.stream_retention,
            "latest_snapshot": latest[0] if latest else None,
        }

    def claims(self, limit: int = 50) -> pd.DataFrame:
        """The newest stored claims, newest first (the label shows only once it has arrived)."""
        cols = [c for c in stream_claims.c if c.name != "hidden_outcome"]
        with self.store.engine.connect() as c:
            rows = c.execute(sa.select(*cols).order_by(stream_claims.c.seq.desc()).limit(int(limit))).mappings()
            return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in cols])

    def snapshots(self, limit: int = 200) -> list[dict]:
        """Stored snapshots, newest first (1 to 100000 of them)."""
        if not 1 <= int(limit) <= 100_000:
            raise BadInput(f"--limit {limit} is out of range: use 1 to 100000")
        with self.store.engine.connect() as c:
            rows = c.execute(sa.select(stream_snapshots).order_by(stream_snapshots.c.id.desc())
                             .limit(int(limit))).mappings()
            return [dict(r) for r in rows]

    def snapshot(self, snapshot_id: int) -> dict:
        """One snapshot with its per-feature bins; BadInput if there is none with that id."""
        with self.store.engine.connect() as c:
            row = c.execute(sa.select(stream_snapshots).where(stream_snapshots.c.id == int(snapshot_id))) \
                .mappings().first()
        if row is None:
            raise BadInput(f"there is no snapshot {snapshot_id}; list them with: python -m engine stream snapshots")
        return dict(row)

    @staticmethod
    def intensity(state: dict, seq: int) -> float:
        """How far the scenario has ramped in at claim `seq` (0..1)."""
        if state["scenario"] == "none":
            return 0.0
        done = seq - state["scenario_seq"]
        return 1.0 if state["ramp"] <= 0 else min(max(done / state["ramp"], 0.0), 1.0)

    # ---- production ---------------------------------------------------------------------------------------
    def tick(self) -> None:
        """The scheduler job: while on and holding the lease, produce what is due, label, prune, snapshot."""
        try:
            state = self.state()
            if not state["enabled"]:
                if state["lease_owner"] == self.owner:
                    self.release()  # stopped: say so at once instead of letting the lease lapse
                return
            if not self._take_lease():
                return
            now = timestamp()
            since = max(state["produced_at"] or now, now - MAX_LAG_SECONDS)
            due = int((now - since) * state["rate"])
            if due:
                self.produce(due, produced_at=since + due / state["rate"])
            if self._outage:
                log.warning("stream: producing again")
                self._outage = False
        except Exception as exc:  # a tick must never kill the scheduler; one line per outage, not per tick
            if not self._outage:
                log.warning("stream: tick failed (%s: %s); retrying every tick", type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")
                self._outage = True

    def _take_lease(self) -> bool:
        now = timestamp()
        with self.store.tx() as c:
            self._state_row(c)
            taken = c.execute(sa.update(stream_state).where(
                stream_state.c.id == 1,
                sa.or_(stream_state.c.lease_owner == self.owner, stream_state.c.lease_owner.is_(None),
                       stream_state.c.lease_until < now))
                .values(lease_owner=self.owner, lease_until=now + LEASE_SECONDS)).rowcount
        return bool(taken)

    def release(self) -> None:
        """Give the lease up (on shutdown), so another runner can produce at once."""
        try:
            with self.store.tx() as c:
                c.execute(sa.update(stream_state).where(stream_state.c.id == 1,
                                                        stream_state.c.lease_owner == self.owner)
                          .values(lease_owner=None, lease_until=None))
        except Exception:  # the lease expires by itself
            log.debug("stream: lease not released", exc_info=True)

    def produce(self, count: int, produced_at: float | None = None) -> int:
        """Generate, score and store the next `count` claims, then label, prune and snapshot; return how many."""
        with self._lock:
            state = self.state()
            champion_version, champion = self.lab.tracking.load_alias(CHAMPION)
            if champion is None:
                raise Refused("the champion alias is gone; promote a model to resume the stream")
            staging_version, staging = self.lab.tracking.load_alias(STAGING)
            if staging_version == champion_version:
                staging = None  # a shadow of the served model would only agree with itself
            start = state["next_seq"]
            frame = self._draw(state, start, int(count))
            served = champion.predict(frame, enforce_schema=False)
            shadow = staging.predict(frame, enforce_schema=False) if staging is not None else None
            columns = {
                "seq": np.arange(start, start + len(frame), dtype=np.int64), "claim_id": frame["claim_id"],
                "intensity": frame["intensity"],
                **{col: frame[col].astype(str) for col in CATEGORICAL},
                **{col: frame[col].astype(float) for col in NUMERIC},
                "p_approved": served["p_approved"], "approved": served["decision"] == "Approved",
                "shadow_p_approved": None if shadow is None else shadow["p_approved"],
                "shadow_approved": None if shadow is None else shadow["decision"] == "Approved",
                "hidden_outcome": label_array(frame).astype(bool),
            }
            constant = {"ts": timestamp(), "scenario": state["scenario"], "champion_version": champion_version,
                        "shadow_version": staging_version if shadow is not None else None}
            # Plain Python values column by column: far cheaper than DataFrame.to_dict("records").
            lists = {k: (v.tolist() if hasattr(v, "tolist") else [v] * len(frame)) for k, v in columns.items()}
            records = [{**constant, **dict(zip(lists, values))} for values in zip(*lists.values())]
            end = start + len(records)
            with self.store.tx() as c:
                moved = c.execute(sa.update(stream_state).where(
                    stream_state.c.id == 1, stream_state.c.next_seq == start, stream_state.c.enabled.is_(True),
                    sa.or_(stream_state.c.lease_owner == self.owner, stream_state.c.lease_owner.is_(None)))
                    .values(next_seq=end, produced_at=produced_at or timestamp())).rowcount
                if not moved:
                    if not self._state_row(c)["enabled"]:
                        return 0  # stopped while this batch was scored: nothing lands after Stop
                    raise Refused("another process produced these claims meanwhile; this batch is dropped")
                c.execute(sa.insert(stream_claims), records)
                self._label(c, state, end)
                c.execute(sa.delete(stream_claims).where(stream_claims.c.seq < end - self.settings.stream_retention))
            if end // SNAPSHOT_EVERY > start // SNAPSHOT_EVERY:
                self.take_snapshot()
            return len(records)

    def _draw(self, state: dict, start: int, count: int) -> pd.DataFrame:
        """Claims start .. start+count-1 of the stream's sequence, each batch at the scenario's current intensity."""
        parts, seq = [], start
        scenario = SCENARIOS[state["scenario"]]
        while seq < start + count:
            epoch, offset = divmod(seq, ROWS_PER_SEED)  # one seed yields ROWS_PER_SEED claims; then the next
            n = min(start + count - seq, ROWS_PER_SEED - offset)
            intensity = self.intensity(state, seq + n // 2)
            part = generate_claims(n, derived_seed(epoch, STREAM_PURPOSE), STREAM_WINDOW,
                                   scenario.shift.scaled(intensity), start=offset)
            parts.append(part.assign(intensity=intensity))
            seq += n
        return pd.concat(parts, ignore_index=True)

    def _label(self, conn, state: dict, end: int) -> None:
        """Outcomes arrive for claims that are label_delay claims old."""
        due = end - state["label_delay"]
        if due <= state["labelled_seq"]:
            return
        conn.execute(sa.update(stream_claims).where(stream_claims.c.seq >= state["labelled_seq"],
                                                    stream_claims.c.seq < due)
                     .values(outcome=stream_claims.c.hidden_outcome, labelled_at=timestamp()))
        conn.execute(sa.update(stream_state).where(stream_state.c.id == 1).values(labelled_seq=due))

    # ---- snapshots ----------------------------------------------------------------------------------------
    def take_snapshot(self) -> dict:
        """Compare the latest WINDOW claims with the champion's reference; store and return the snapshot."""
        champion_version = self.lab.tracking.alias_version(CHAMPION)
        state = self.state()
        columns = (*FEATURES, "seq", "p_approved", "approved", "outcome", "shadow_approved")
        with self.store.engine.connect() as c:
            result = c.execute(sa.select(*[stream_claims.c[n] for n in columns])
                               .order_by(stream_claims.c.seq.desc()).limit(WINDOW))
            window = pd.DataFrame([tuple(r) for r in result], columns=list(columns))
        reference = self.reference(champion_version)
        window = window.astype({col: "category" for col in CATEGORICAL}) if len(window) else window
        result = monitor.snapshot(reference["features"], reference["p_approved"], window, MIN_ROWS) \
            if len(window) else None
        if result is None:
            raise Refused("no claims have been stored yet; start the stream first")
        detail = _json_safe({**result, "calibration": reference["calibration"], "reference": reference["about"]})
        row = {"ts": timestamp(), "seq": int(window["seq"].max()), "champion_version": champion_version,
               "scenario": state["scenario"], "status": result["status"], "level": result["level"],
               "max_psi": result["max_psi"],
               "prediction_psi": result["prediction"]["psi"] if result["prediction"] else None,
               "drift_share": result["drift_share"], "realised_accuracy": result["realised"]["accuracy"],
               "estimated_accuracy": result["estimated_accuracy"], "agreement": result["agreement"],
               "detail": detail}
        with self.store.tx() as c:
            row["id"] = c.execute(sa.insert(stream_snapshots).values(**_json_safe(row))
                                  .returning(stream_snapshots.c.id)).scalar_one()
        if state["closed_loop"]:
            self._close_loop(state)
        return row

    def reference(self, version: int) -> dict:
        """The champion's reference: the head of its training feed, its holdout predictions and calibration."""
        return _reference(self.lab, int(version))

    # ---- the closed loop ----------------------------------------------------------------------------------
    def _close_loop(self, state: dict) -> int | None:
        """After CLOSED_LOOP_SNAPSHOTS major snapshots in a row, commit one retraining run on the drifted data."""
        recent = self.snapshots(limit=CLOSED_LOOP_SNAPSHOTS)
        if len(recent) < CLOSED_LOOP_SNAPSHOTS or any(s["level"] != "major" for s in recent):
            return None
        if self.lab.open_drift_run() is not None:
            return None
        shift = SCENARIOS[state["scenario"]].shift.scaled(self.intensity(state, state["next_seq"]))
        try:
            return self.lab.commit(message=f"retrain on drifted claims: drift major for {CLOSED_LOOP_SNAPSHOTS} "
                                           f"snapshots (scenario {state['scenario']})",
                                   window=STREAM_WINDOW, author="drift-monitor", trigger="drift",
                                   shift=asdict(shift), detail={"snapshot_ids": [s["id"] for s in recent]})
        except Refused as exc:  # the demo's cap: the snapshot stands, and the next major one asks again
            log.info("closed loop: retraining deferred: %s", exc)
            return None


def snapshot_rows(snapshots: list[dict]) -> list[dict]:
    """Snapshots flattened for a table or CSV: the summary plus each feature's PSI (ISO 8601 times)."""
    from datetime import datetime, timezone
    keys = ("id", "seq", "champion_version", "scenario", "status", "level", "max_psi", "prediction_psi",
            "drift_share", "realised_accuracy", "estimated_accuracy", "agreement")
    rows = []
    for snap in snapshots:
        detail = snap["detail"] or {}
        row = {"ts": datetime.fromtimestamp(snap["ts"], timezone.utc).isoformat(timespec="seconds"),
               **{k: snap[k] for k in keys}, "n_window": detail.get("n_window"),
               "n_labelled": detail.get("n_labelled"),
               "false_denial_rate": (detail.get("realised") or {}).get("false_denial_rate")}
        row.update({f"psi_{f}": None for f in FEATURES})
        row.update({f"psi_{f['feature']}": f["psi"] for f in detail.get("features") or []})
        rows.append(row)
    return rows


def _check_int(what: str, value, most: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{what} {value!r} is not a whole number") from None
    if number != value and not (isinstance(value, str) and str(number) == value.strip()) \
            and not (isinstance(value, float) and value.is_integer()):
        raise BadInput(f"{what} {value!r} is not a whole number")
    if not 0 <= number <= most:
        raise BadInput(f"{what} {number} is out of range: use 0 to {most:,} claims")
    return number


_REFERENCES: dict = {}  # (tracking URI, version) -> reference; versions are immutable, so is their reference


def _reference(lab, version: int) -> dict:
    key = (lab.settings.tracking_uri, version)
    if key not in _REFERENCES:
        from engine.runner import run_feed
        tags = lab.tracking.client.get_model_version(MODEL_NAME, str(version)).tags
        run = lab.store.get_run(int(tags["pipeline_run_id"])) if tags.get("pipeline_run_id") else None
        if run is None:
            raise Refused(f"version {version} has no pipeline run in this lab's store, so its training data "
                          "is unknown")
        holdout = generate_claims(REFERENCE_ROWS, derived_seed(run["seed"], 1), run["dataset_window"],
                                  Shift(**(run.get("shift") or {})))
        p = lab.tracking.load_model(version).predict(holdout, enforce_schema=False)["p_approved"].to_numpy()
        if len(_REFERENCES) >= 8:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = {
            "features": run_feed(run, REFERENCE_ROWS), "p_approved": p,
            "calibration": monitor.calibration(p, label_array(holdout) == 1),
            "about": {"version": version, "pipeline_run_id": run["id"], "seed": run["seed"],
                      "dataset_window": run["dataset_window"], "shift": run.get("shift"), "rows": REFERENCE_ROWS,
                      "predictions": "the champion's P(Approved) on its CD holdout"}}
    return _REFERENCES[key]
