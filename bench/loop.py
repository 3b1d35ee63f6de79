"""Loop bench: how soon each scenario raises an input alert and a performance alert, how often no drift raises
anything, and how far the label-free accuracy estimate is from the realised accuracy without drift.

    python -m bench.loop [--rate 1000] [--none-snapshots 100] [--max-claims 20000] [--scenarios a,b,...]
                         [--closed-loop concept_drift,inflation] [--after 3000] [--results PATH]

Setup (not timed): a lab with one promoted version (a real CI and CD run: the model is calibrated in CD). The
stream is driven as the worker drives it at `--rate` claims/s with its 1 s tick: one `Stream.produce(rate)` a
tick, each ending with a snapshot (engine/stream.py), so nothing here depends on the machine's speed. Then:

- per scenario (none excepted): the window is first filled with no-drift claims (WINDOW of them); the scenario
  starts with the stream's default ramp and label delay; claims from its onset to the first snapshot whose input
  level is major ("input alert") and to the first whose performance level is alert ("performance alert"), up to
  `--max-claims` (blank where none came);
- under `none`, `--none-snapshots` snapshots: false alarms per 100 snapshots, counted three ways (input level
  above none, performance level above none, any per-feature test significant after the Holm correction), and
  the mean of estimated minus realised accuracy (both on the same labelled claims; target |bias| <= 0.01).

- with the closed loop on (`--closed-loop` scenarios, each on a fresh lab): a first model is promoted, WINDOW
  undrifted claims stream, the loop is turned on and the scenario switched on at once. When the loop commits its
  retrain (on the labelled production claims since the alarm), the run goes through CI, CD, approval and
  deployment; then `--after` more drifted claims are served by the new champion and, once labelled, rescored by
  the old one: the retrain's gate verdict, and cost per claim before (old champion) and after (new one) on the
  very same claims.

Writes bench/results/loop.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "loop.json"
SCENARIOS = ("none", "inflation", "telehealth_surge", "aging", "case_mix", "concept_drift")
TARGETS = {"false_alarms_per_100": 5, "abs_bias": 0.01}
CLOSED_LOOP_MAX_CLAIMS = 60_000  # drifted claims searched for the closed loop's trigger


def ticks(lab, rate: int, claims: int):
    """Produce `claims` claims as the worker's ticks at `rate`/s do; yield each tick's snapshot."""
    done = 0
    while done < claims:
        batch = min(rate, claims - done)
        lab.stream.produce(batch)
        done += batch
        yield lab.stream.snapshots(limit=1)[0]


def settle(lab, rate: int) -> None:
    """Fill the window with no-drift claims, so a scenario starts from a clean one."""
    from engine.stream import DEFAULT_LABEL_DELAY, DEFAULT_RAMP, WINDOW
    lab.stream.start(rate=rate, scenario="none", ramp=DEFAULT_RAMP, label_delay=DEFAULT_LABEL_DELAY, by="bench")
    for _ in ticks(lab, rate, WINDOW):
        pass


def onset_to_alerts(lab, scenario: str, rate: int, max_claims: int) -> dict:
    """Claims from a scenario's onset to its first input alert and first performance alert (None: not seen)."""
    from engine.stream import DEFAULT_LABEL_DELAY, DEFAULT_RAMP
    settle(lab, rate)
    onset = lab.stream.start(rate=rate, scenario=scenario, ramp=DEFAULT_RAMP, label_delay=DEFAULT_LABEL_DELAY,
                             by="bench")["next_seq"]
    first = {"input": None, "performance": None}
    for snap in ticks(lab, rate, max_claims):
        if first["input"] is None and snap["level"] == "major":
            first["input"] = snap["seq"] + 1 - onset
        if first["performance"] is None and snap["performance_level"] == "alert":
            first["performance"] = snap["seq"] + 1 - onset
        if None not in first.values():
            break
    return {"claims_to_input_alert": first["input"], "claims_to_performance_alert": first["performance"],
            "searched_claims": max_claims}


def no_drift(lab, rate: int, snapshots: int) -> dict:
    """False alarms per 100 no-drift snapshots and the estimate's bias, over `snapshots` snapshots."""
    settle(lab, rate)
    seen = [s for s in ticks(lab, rate, snapshots * rate) if s["status"] == "ok"]
    gaps = [s["estimated_accuracy"] - s["realised_accuracy"] for s in seen
            if s["estimated_accuracy"] is not None and s["realised_accuracy"] is not None]
    per_100 = 100 / len(seen) if seen else float("nan")
    return {"snapshots": len(seen),
            "input_alarms_per_100": per_100 * sum(s["level"] != "none" for s in seen),
            "performance_alarms_per_100": per_100 * sum((s["performance_level"] or "none") != "none" for s in seen),
            "test_alarms_per_100": per_100 * sum(bool(s["detail"].get("flagged")) for s in seen),
            "mean_estimate_minus_realised": statistics.fmean(gaps) if gaps else None,
            "realised_accuracy": statistics.fmean(s["realised_accuracy"] for s in seen) if seen else None}


def through(lab, run_id: int, approve: bool = True):
    """Take a run through CI, CD and (if its gate passed) approval and deployment; return it."""
    lab.runner.run_until_idle()
    lab.continue_run(run_id, by="bench")
    lab.runner.run_until_idle()
    if approve and lab.run(run_id).status == "awaiting_approval":
        lab.approve(run_id, by="bench", comment="bench")
        lab.runner.run_until_idle()
    return lab.run(run_id)


def closed_loop(scenario: str, after: int, seed: int = 31) -> dict:
    """The closed loop under `scenario` on a fresh lab: claims to its trigger, the retrain's gate verdict and checks,
    and cost per claim on the same `after` drifted claims served by the new champion, before (old champion)
    and after (new one)."""
    from engine.config import Settings
    from engine.lab import Lab
    from engine.ml.claims import label_array, stored_frame
    from engine.ml.threshold import Costs
    from engine.pipeline import spec
    from engine.stream import WINDOW
    with tempfile.TemporaryDirectory(prefix="loop-closed-") as tmp:
        lab = Lab(Settings.from_env({}, data_dir=Path(tmp)))
        try:
            first = lab.commit(message="bench: first model", seed=seed, author="bench")
            old = through(lab, first).outputs_of("promote_prod")["version"]
            stream = lab.stream
            stream.start(rate=1000, scenario="none", ramp=0, by="bench")
            stream.produce(WINDOW)
            stream.set_closed_loop(True, by="bench")
            onset = stream.state()["next_seq"]
            stream.start(scenario=scenario, by="bench")
            while lab.open_drift_run() is None and stream.state()["next_seq"] - onset < CLOSED_LOOP_MAX_CLAIMS:
                stream.produce(500)
            run_id = lab.open_drift_run()
            out = {"scenario": scenario, "claims_to_trigger": stream.state()["next_seq"] - onset, "run": run_id}
            if run_id is None:
                return {**out, "verdict": "no trigger"}
            run = through(lab, run_id)
            gate = run.outputs_of("evaluate_vs_champion").get("gate") or {}
            out.update(status=run.status.value, verdict=gate.get("verdict"),
                       checks=[{k: c.get(k) for k in ("name", "value", "interval", "threshold", "passed")}
                               for c in gate.get("checks", [])])
            if run.status != "promoted":
                return out
            new = run.outputs_of("promote_prod")["version"]
            start = stream.state()["next_seq"]
            stream.produce(after + stream.state()["label_delay"])
            claims = lab.stream.claims(limit=after + stream.state()["label_delay"])
            claims = claims[(claims["seq"] >= start) & claims["outcome"].notna()].sort_values("seq")
            frame = stored_frame(claims.to_dict("records"))
            costs = Costs(**spec("cd_full_train").params()["costs"])
            y = label_array(frame)
            before = lab.tracking.load_model(old).predict(frame, enforce_schema=False)["decision"] == "Approved"
            out.update(claims=len(frame), old_version=old, new_version=new,
                       cost_before=round(costs.per_claim(y, before.to_numpy()), 4),
                       cost_after=round(costs.per_claim(y, claims["approved"].to_numpy(bool)), 4))
            return out
        finally:
            lab.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=1000, help="claims per second (claims per 1 s tick)")
    ap.add_argument("--none-snapshots", type=int, default=100)
    ap.add_argument("--max-claims", type=int, default=20_000, help="claims searched for an alert after onset")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--closed-loop", default="concept_drift,inflation",
                    help="scenarios to run the whole closed loop under (empty: none)")
    ap.add_argument("--after", type=int, default=3000, help="drifted claims served after the retrain's promotion")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes (a smoke run: elsewhere)")
    args = ap.parse_args()
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; use some of: {', '.join(SCENARIOS)}")
    from bench.stream import make_lab
    results: dict = {"targets": TARGETS, "machine": f"{os.cpu_count()} cores", "rate": args.rate, "scenarios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        lab = make_lab(Path(tmp), seeds=(11,), stream_retention=20_000)
        try:
            for scenario in chosen:
                results["scenarios"][scenario] = (no_drift(lab, args.rate, args.none_snapshots)
                                                  if scenario == "none" else
                                                  onset_to_alerts(lab, scenario, args.rate, args.max_claims))
        finally:
            lab.close()
    results["closed_loop"] = {s: closed_loop(s, args.after) for s in args.closed_loop.split(",") if s}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))

    def shown(value, fmt="{:,.0f}") -> str:
        return "-" if value is None else fmt.format(value)

    print(f"{'scenario':18} {'to input alert':>15} {'to perf. alert':>15}  (claims after onset, at {args.rate:,}/s)")
    for scenario, r in results["scenarios"].items():
        if scenario != "none":
            first_input, first_perf = r["claims_to_input_alert"], r["claims_to_performance_alert"]
            print(f"{scenario:18} {shown(first_input):>15} {shown(first_perf):>15}")
    calm = results["scenarios"].get("none")
    if calm:
        print(f"\nno drift, {calm['snapshots']} snapshots: false alarms per 100 snapshots: input "
              f"{shown(calm['input_alarms_per_100'], '{:.1f}')}, performance "
              f"{shown(calm['performance_alarms_per_100'], '{:.1f}')}, tests after Holm "
              f"{shown(calm['test_alarms_per_100'], '{:.1f}')} (target <= {TARGETS['false_alarms_per_100']}); "
              f"estimate - realised {shown(calm['mean_estimate_minus_realised'], '{:+.4f}')} "
              f"(target |bias| <= {TARGETS['abs_bias']})")
    if results["closed_loop"]:
        print(f"\n{'closed loop':18} {'trigger after':>14} {'gate':>6} {'status':>10} {'cost before':>12} "
              f"{'cost after':>11}  (same drifted claims)")
    for scenario, r in results["closed_loop"].items():
        print(f"{scenario:18} {shown(r['claims_to_trigger']):>14} {str(r.get('verdict')):>6} "
              f"{str(r.get('status')):>10} {shown(r.get('cost_before'), '{:.4f}'):>12} "
              f"{shown(r.get('cost_after'), '{:.4f}'):>11}")


if __name__ == "__main__":
    main()
