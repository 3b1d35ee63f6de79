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

import numpy as np
import pandas as pd

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
from engine.states import RunStatus
from engine.store import timestamp

log = logging.getLogger(__name__)


STREAM_WINDOW = "2025-07-01..2025-12-31"  # the months after the default training window
STREAM_PURPOSE = 999                       # derived_seed purpose reserved for the stream
DEFAULT_RATE = 20.0                        # claims per second
DEFAULT_RAMP = 1000                        # claims over which a scenario reaches full intensity
DEFAULT_LABEL_DELAY = 300                  # claims produced before a claim's outcome arrives
STATE_DEFAULTS = dict(enabled=False, rate=DEFAULT_RATE, scenario="none", ramp=DEFAULT_RAMP, scenario_seq=0,
                      label_delay=DEFAULT_LABEL_DELAY, closed_loop=False, next_seq=0, labelled_seq=0, produced_at=None)
SNAPSHOT_EVERY = 500                       # claims between drift snapshots
WINDOW = 5000                              # claims in a snapshot's sliding window
MIN_ROWS = 500                             # below this a snapshot says "not enough data"
REFERENCE_ROWS = 10000                     # rows of the champion's training feed (and holdout) kept as reference
CLOSED_LOOP_SNAPSHOTS = 3                  # consecutive alarming snapshots that trigger a retraining run
# Loop discipline: at most one open retrain (Lab.open_drift_run); after one failed, was held, rejected or
# interrupted, no new one for LOOP_COOLDOWN_SECONDS (the same alarm would only repeat the same failure); at
# most LOOP_MAX_PER_HOUR in any hour.
LOOP_COOLDOWN_SECONDS = 900.0
LOOP_MAX_PER_HOUR = 2
LOOP_LOOKBACK = 20                         # snapshots searched back for the start of the current alarm
# A retrain on production data (Lab.retrain_on_production) uses the newest RETRAIN_ROWS labelled claims (the loop:
# those since its alarm began), at least RETRAIN_MIN_ROWS, split by time: the newest quarter is the gate's holdout.
# No share of the original training data is mixed in: under concept drift old claims teach the old rule. Measured
# with cd_full_train's forest on 12,000 concept-drift claims judged on 4,000 later ones, cost per claim
# 0.238 / 0.266 / 0.322 with 0 / 25 / 50% original claims added (champion 0.625); under inflation, where the rule
# holds, the champion stayed best whatever the share, and the gate says so.
RETRAIN_ROWS = 20_000
RETRAIN_MIN_ROWS = 6_000
RETRAIN_EVALUATION_SHARE = 0.25
# One snapshot tests every feature: "significant" is decided for the family by Holm's rule at 5% family-wise
# (engine/ml/drift.py), so a no-drift snapshot flags some feature in at most 5% of windows.
TEST_CORRECTION = "holm"
TEST_ALPHA = 0.05
PERFORMANCE_RULE = monitor.PERFORMANCE     # performance level on labelled claims (engine/ml/monitor.py)
LEASE_SECONDS = 30.0                       # a producer that has not renewed for this long is presumed dead
PRODUCER = "stream:producer"               # the producer's lease (engine/store.py leases)
# A late tick (a slow batch or snapshot, a busy machine) owes the claims of the time elapsed: it catches up on them in
# batches of at most MAX_BATCH_SECONDS of claims, on at most MAX_BACKLOG_SECONDS of them; an older backlog (after an
# outage or a suspended machine) is skipped instead of burst.
MAX_BATCH_SECONDS = 2.0
MAX_BACKLOG_SECONDS = 10.0
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
        self._holding = False  # whether this process took the producer's lease at its last tick
        self._behind = False  # whether the last tick skipped claims (MAX_BACKLOG_SECONDS)
        self._pruned: tuple | None = None  # (next_seq, produced_at, keep_from) after this process's last batch
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
        # Checked servable, not only looked up: a champion an older lab registered without a threshold cannot
        # score (tracking.NotServable, a refusal saying what to do). Not loaded: a page may be asking.
        if self.lab.tracking.servable_alias(CHAMPION) is None:
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
            self.store.set_stream(c, **values)
            self.store.add_audit(c, by or "cli", "stream_start", None, "",
                                 {"rate": rate, "scenario": scenario, "ramp": ramp, "label_delay": label_delay})
        return self.state()

    def stop(self, by: str = "", visitor: str | None = None, operator_key: str | None = None) -> dict:
        """Turn the stream off; stored claims and snapshots stay."""
        self.lab.guard.operator(visitor, operator_key, "stopping the live stream")
        with self.store.tx() as c:
            self._state_row(c)
            self.store.set_stream(c, enabled=False, updated_at=timestamp(), updated_by=by or "cli")
            self.store.add_audit(c, by or "cli", "stream_stop")
        return self.state()

    def set_closed_loop(self, enabled: bool, by: str = "", visitor: str | None = None,
                        operator_key: str | None = None) -> dict:
        """Opt in or out of drift-triggered retraining."""
        self.lab.guard.operator(visitor, operator_key, "turning the closed loop on or off")
        with self.store.tx() as c:
            self._state_row(c)
            self.store.set_stream(c, closed_loop=bool(enabled), updated_at=timestamp(), updated_by=by or "cli")
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
        """The persisted controls and position (created with defaults on first use), with the producer (see
        producer())."""
        return {**self.store.stream_state(STATE_DEFAULTS), "producer": self.producer()}

    def _state_row(self, conn) -> dict:
        """The state row inside a transaction, locked where the backend can (created if missing)."""
        return self.store.stream_state(STATE_DEFAULTS, conn)

    def status(self) -> dict:
        """State, producer, versions, counts and the latest snapshot (what `stream status` prints)."""
        state = self.state()
        stored, labelled = self.store.stream_counts()
        latest = self.snapshots(limit=1)
        tracking = self.lab.tracking
        return {
            "enabled": state["enabled"], "rate": state["rate"], "scenario": state["scenario"],
            "scenario_description": SCENARIOS[state["scenario"]].description, "ramp": state["ramp"],
            "intensity": self.intensity(state, state["next_seq"]), "label_delay": state["label_delay"],
            "closed_loop": state["closed_loop"],
            "producer": state["producer"],
            "champion_version": tracking.alias_version(CHAMPION), "staging_version": tracking.alias_version(STAGING),
            "produced": state["next_seq"], "stored": stored, "labelled": labelled,
            "retention": self.settings.stream_retention,
            **levels(latest[0] if latest else None),
            "latest_snapshot": latest[0] if latest else None,
        }

    def claims(self, limit: int = 50) -> pd.DataFrame:
        """The newest stored claims, newest first (the label shows only once it has arrived)."""
        columns, rows = self.store.newest_claims(limit)
        return pd.DataFrame(rows, columns=columns)

    def snapshots(self, limit: int = 200) -> list[dict]:
        """Stored snapshots, newest first (1 to 100000 of them)."""
        if not 1 <= int(limit) <= 100_000:
            raise BadInput(f"--limit {limit} is out of range: use 1 to 100000")
        return [_with_levels(r) for r in self.store.stream_snapshots(limit)]

    def snapshot(self, snapshot_id: int) -> dict:
        """One snapshot with its per-feature bins; BadInput if there is none with that id."""
        row = next(iter(self.store.stream_snapshots(1, snapshot_id=int(snapshot_id))), None)
        if row is None:
            raise BadInput(f"there is no snapshot {snapshot_id}; list them with: python -m engine stream snapshots")
        return _with_levels(row)

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
                if self._holding:
                    self.release()  # stopped: say so at once instead of letting the lease lapse
                return
            self._holding = self.store.take(PRODUCER, self.owner, LEASE_SECONDS)
            if not self._holding:
                return
            self._catch_up(state)
            if self._outage:
                log.warning("stream: producing again")
                self._outage = False
        except Exception as exc:  # a tick must never kill the scheduler; one line per outage, not per tick
            if not self._outage:
                log.warning("stream: tick failed (%s: %s); retrying every tick", type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")
                self._outage = True

    def _catch_up(self, state: dict) -> int:
        """Produce the claims owed since the last batch (see MAX_BACKLOG_SECONDS), in bounded batches; how many."""
        now, rate = timestamp(), state["rate"]
        since = state["produced_at"] or now
        behind = since < now - MAX_BACKLOG_SECONDS
        if behind:
            if not self._behind:  # one line when it starts falling behind, not one per tick
                log.warning("stream: the producer is %.0f s behind; claims older than %.0f s are skipped",
                            now - since, MAX_BACKLOG_SECONDS)
            since = now - MAX_BACKLOG_SECONDS
        self._behind = behind
        owed, batch, done = int((now - since) * rate), max(1, int(rate * MAX_BATCH_SECONDS)), 0
        while owed > 0:
            count = min(owed, batch)
            since += count / rate
            if not self.produce(count, produced_at=since):
                break  # stopped meanwhile
            owed, done = owed - count, done + count
        return done

    def producer(self) -> dict:
        """Who produces: {"owner", "alive"} (owner None when nobody holds the lease)."""
        held = self.store.holder(PRODUCER, LEASE_SECONDS)
        return {"owner": held["owner"] if held else None, "alive": bool(held and held["alive"])}

    def release(self) -> None:
        """Give the lease up (on shutdown), so another runner can produce at once."""
        self._holding = False
        try:
            self.store.release(PRODUCER, self.owner)
        except Exception:  # the lease expires by itself
            log.debug("stream: lease not released", exc_info=True)

    def produce(self, count: int, produced_at: float | None = None) -> int:
        """Generate, score and store the next `count` claims, then label, prune and snapshot; return how many."""
        with self._lock:
            state = self.store.stream_state(STATE_DEFAULTS)  # the controls and position (not who produces)
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
            # Plain Python values column by column (the store writes the batch column-wise, in one INSERT).
            lists = {k: (v.tolist() if hasattr(v, "tolist") else [v] * len(frame))
                     for k, v in {**constant, **columns}.items()}
            end = start + len(frame)
            label_until = end - state["label_delay"]  # outcomes arrive for claims label_delay claims old
            produced_at = produced_at or timestamp()
            with self.store.tx() as c:
                held = self.store.holder(PRODUCER, LEASE_SECONDS, conn=c)
                moved = (not held or held["owner"] == self.owner) and self.store.advance_stream(
                    c, start, end, produced_at, labelled_seq=max(state["labelled_seq"], label_until))
                if not moved:
                    if not self._state_row(c)["enabled"]:
                        return 0  # stopped while this batch was scored: nothing lands after Stop
                    raise Refused("another process produced these claims meanwhile; this batch is dropped")
                # The batch, the outcomes that arrive with it and retention (the oldest forgotten): one transaction.
                # When the previous batch was this process's own, every claim before its keep_from is gone already.
                keep_from = end - self.settings.stream_retention
                own = self._pruned is not None and self._pruned[:2] == (start, state["produced_at"])
                self.store.add_stream_claims(c, lists, label_until=label_until, labelled_from=state["labelled_seq"],
                                             keep_from=keep_from, kept_from=self._pruned[2] if own else None)
            self._pruned = (end, produced_at, keep_from)
            if end // SNAPSHOT_EVERY > start // SNAPSHOT_EVERY:
                self.take_snapshot()
            return len(frame)

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

    # ---- snapshots ----------------------------------------------------------------------------------------
    def take_snapshot(self) -> dict:
        """Compare the latest WINDOW claims with the champion's reference; store and return the snapshot."""
        champion_version = self.lab.tracking.alias_version(CHAMPION)
        state = self.state()
        columns = (*FEATURES, "seq", "p_approved", "approved", "outcome", "shadow_approved")
        window = pd.DataFrame(self.store.newest_claims(WINDOW, columns)[1], columns=list(columns))
        reference = self.reference(champion_version)
        window = window.astype({col: "category" for col in CATEGORICAL}) if len(window) else window
        result = monitor.snapshot(reference["features"], reference["p_approved"], window, MIN_ROWS,
                                  holdout=reference["holdout"], rule=PERFORMANCE_RULE, correction=TEST_CORRECTION,
                                  alpha=TEST_ALPHA, seed=int(window["seq"].max())) if len(window) else None
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
        row["id"] = self.store.add_snapshot(_json_safe(row))
        row = _with_levels(row)
        if state["closed_loop"]:
            self._close_loop(state)
        return row

    def reference(self, version: int) -> dict:
        """The champion's reference: the head of its training feed, its holdout predictions and calibration."""
        return _reference(self.lab, int(version))

    # ---- the closed loop ----------------------------------------------------------------------------------
    def _close_loop(self, state: dict) -> int | None:
        """After CLOSED_LOOP_SNAPSHOTS alarming snapshots in a row (input drift major, or performance alert) of one
        champion, retrain on the labelled claims production saw since the alarm began, unless the loop's
        discipline says wait; the trigger and its evidence are audited ("loop_trigger"). Returns the run id."""
        evidence = loop_evidence(self.snapshots(limit=LOOP_LOOKBACK), state["scenario_seq"])
        if evidence is None:
            return None
        run_id, kind, reason = None, *self._loop_blocked()
        labelled = self.store.labelled_span(evidence["since_seq"])["count"]
        if kind is None and labelled < RETRAIN_MIN_ROWS:
            kind, reason = "not_enough_labels", (f"{labelled:,} of the {RETRAIN_MIN_ROWS:,} labelled claims since "
                                                 "the alarm a retrain needs have arrived")
        if kind is None:
            try:
                run_id = self.lab.retrain_on_production(by="drift-monitor", since_seq=evidence["since_seq"],
                                                        trigger="drift", evidence=evidence)
            except (Refused, BadInput) as exc:  # another retrain opened meanwhile, the demo's cap on runs
                kind, reason = "refused", str(exc)
        latest = next(iter(self.store.audit_trail(1, action="loop_trigger")), None)
        said = (latest.detail if latest else None) or {}
        if run_id is None and said.get("kind") == kind and said.get("since_seq") == evidence["since_seq"]:
            return None  # this alarm's deferral for this reason is on record already
        with self.store.tx() as c:
            self.store.add_audit(c, "drift-monitor", "loop_trigger", run_id,
                                 f"committed run {run_id}" if run_id else f"deferred: {reason}",
                                 _json_safe({**evidence, "kind": kind or "committed", "reason": reason}))
        if run_id is None:
            log.info("closed loop: retraining deferred: %s", reason)
        return run_id

    def _loop_blocked(self) -> tuple[str | None, str | None]:
        """(kind, sentence) saying why the loop must not retrain now, or (None, None)."""
        if (open_run := self.lab.open_drift_run()) is not None:
            return "open_run", f"run {open_run} is still retraining on production data"
        now = timestamp()
        recent = self.store.runs_with_trigger(("drift", "production"), now - max(3600.0, LOOP_COOLDOWN_SECONDS))
        stopped = (RunStatus.FAILED, RunStatus.HELD, RunStatus.REJECTED, RunStatus.INTERRUPTED)
        bad = next((r for r in recent if r.status in stopped), None)
        ended = bad and (bad.finished_at or bad.updated_at)
        if bad and recent[0].id == bad.id and now - ended < LOOP_COOLDOWN_SECONDS:
            return "cooldown", (f"run {bad.id} ended {bad.status.value} {now - ended:.0f} s ago; the loop waits "
                                f"{LOOP_COOLDOWN_SECONDS:.0f} s after a retrain that did not reach production")
        if sum(r.created_at >= now - 3600 for r in recent) >= LOOP_MAX_PER_HOUR:
            return "hourly_cap", f"{LOOP_MAX_PER_HOUR} retrains were started in the last hour (the cap)"
        return None, None


def _alarm(snapshot: dict) -> list[str]:
    """What alarms in a snapshot: major input drift (with its worst feature), a performance alert (with its
    evidence); empty when nothing does."""
    said = []
    if snapshot.get("level") == "major":
        worst = max((snapshot.get("detail") or {}).get("features") or [{}], key=lambda f: f.get("psi") or 0)
        said.append(f"input drift major: max PSI {snapshot.get('max_psi') or 0:.3f}"
                    + (f" ({worst['feature']})" if worst.get("feature") else ""))
    if snapshot.get("performance_level") == "alert":
        evidence = levels(snapshot)["performance_evidence"] or {}
        value = evidence.get("value") if isinstance(evidence, dict) else None
        said.append("performance alert" + (f": {evidence['metric']} {value:.4f} against {evidence.get('reference')}"
                                           if isinstance(value, (int, float)) else ""))
    return said


def loop_evidence(snapshots: list[dict], since_seq: int = 0) -> dict | None:
    """Why the closed loop should retrain, from snapshots newest first, or None: the newest CLOSED_LOOP_SNAPSHOTS
    alarm, all of the same champion and taken since claim `since_seq` (the stream's current scenario began there:
    an alarm of an earlier scenario or an earlier start is not this one). The evidence names those snapshots, their
    levels and what alarmed, and `since_seq`, the newest claim of the first snapshot of this alarm (the retrain
    learns from the claims after)."""
    streak = []
    for snap in snapshots:
        if (streak and snap["champion_version"] != streak[0]["champion_version"]) or snap["seq"] < since_seq \
                or not _alarm(snap):
            break
        streak.append(snap)
    if len(streak) < CLOSED_LOOP_SNAPSHOTS:
        return None
    shown = streak[:CLOSED_LOOP_SNAPSHOTS]
    kinds = {a.split(":")[0] for s in shown for a in _alarm(s)}
    return {"snapshot_ids": [s["id"] for s in shown], "champion_version": shown[0]["champion_version"],
            "levels": [{"id": s["id"], "seq": s["seq"], "level": s.get("level"),
                        "performance_level": s.get("performance_level"), "max_psi": s.get("max_psi"),
                        "realised_accuracy": s.get("realised_accuracy"), "alarms": _alarm(s)} for s in shown],
            "since_seq": int(streak[-1]["seq"]) + 1, "streak": len(streak),
            "why": f"{' and '.join(sorted(kinds))} in {len(streak)} snapshots in a row"}


def _with_levels(snapshot: dict) -> dict:
    """A stored snapshot with its performance level beside the input-drift `level` (kept in its detail)."""
    return {**snapshot, "performance_level": (snapshot.get("detail") or {}).get("performance_level")}


def levels(snapshot: dict | None) -> dict:
    """The input-drift and performance levels of a snapshot, with the performance level's evidence."""
    snapshot = snapshot or {}
    detail = snapshot.get("detail") or {}
    return {"drift_level": snapshot.get("level"), "performance_level": snapshot.get("performance_level"),
            "performance_evidence": (detail.get("performance") or {}).get("evidence")}


def snapshot_rows(snapshots: list[dict]) -> list[dict]:
    """Snapshots flattened for a table or CSV: the summary, the performance figures with their intervals, the
    calibration and each feature's PSI (ISO 8601 times)."""
    from datetime import datetime, timezone
    keys = ("id", "seq", "champion_version", "scenario", "status", "level", "performance_level", "max_psi",
            "prediction_psi", "drift_share", "realised_accuracy", "estimated_accuracy", "agreement")
    rows = []
    for snap in snapshots:
        detail = snap["detail"] or {}
        metrics = (detail.get("performance") or {}).get("metrics") or {}
        row = {"ts": datetime.fromtimestamp(snap["ts"], timezone.utc).isoformat(timespec="seconds"),
               **{k: snap.get(k) for k in keys}, "n_window": detail.get("n_window"),
               "n_labelled": detail.get("n_labelled"),
               "false_denial_rate": (detail.get("realised") or {}).get("false_denial_rate")}
        for name in ("accuracy", "false_denial_rate", "cost_per_claim"):
            m = metrics.get(name) or {}
            low, high = m.get("interval") or (None, None)
            row.update({f"{name}_low": low, f"{name}_high": high, f"holdout_{name}": m.get("holdout"),
                        f"approve_all_{name}": m.get("approve_all")})
        row["cost_per_claim"] = (metrics.get("cost_per_claim") or {}).get("value")
        row["live_ece"] = (detail.get("live_calibration") or {}).get("ece")
        row["holdout_ece"] = (detail.get("calibration") or {}).get("ece")
        row["tests_flagged"] = detail.get("flagged")
        row["test_correction"] = detail.get("correction")
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
        from engine.feeds import production_claims, production_of, run_feed
        tags = lab.tracking.client.get_model_version(MODEL_NAME, str(version)).tags
        run = lab.store.get_run(int(tags["pipeline_run_id"])) if tags.get("pipeline_run_id") else None
        if run is None:
            raise Refused(f"version {version} has no pipeline run in this lab's store, so its training data "
                          "is unknown")
        holdout = production_claims(lab.store, run, "evaluation") if production_of(run) else generate_claims(
            REFERENCE_ROWS, derived_seed(run.seed, 1), run.dataset_window, Shift(**(run.shift or {})))
        from engine.pipeline import spec
        served = lab.tracking.load_model(version).predict(holdout, enforce_schema=False)
        p = served["p_approved"].to_numpy()
        if len(_REFERENCES) >= 8:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = {
            "features": run_feed(run, REFERENCE_ROWS, lab.store), "p_approved": p,
            "calibration": monitor.calibration(p, label_array(holdout) == 1),
            # The champion's own figures on its holdout, at its threshold and the costs CD chose it with.
            "holdout": monitor.holdout_figures(served["decision"].to_numpy() == "Approved", label_array(holdout) == 1,
                                               spec("cd_full_train").params()["costs"]),
            "about": {"version": version, "pipeline_run_id": run.id, "seed": run.seed,
                      "dataset_window": run.dataset_window, "shift": run.shift, "rows": REFERENCE_ROWS,
                      "predictions": "the champion's P(Approved) on its CD holdout"}}
    return _REFERENCES[key]
