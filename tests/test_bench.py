"""The benchmarks' own setup still fits the engine it loads: a bench that breaks is only found on a quiet
machine, an hour too late."""
from __future__ import annotations

from bench.dashboard import lab_env, seed_large
from engine import Lab, Settings


def test_the_dashboard_bench_seeds_its_large_store(tmp_path):
    seed_large(tmp_path, runs=3, log_lines=5, mlflow_runs=2)
    lab = Lab(Settings.from_env(lab_env(tmp_path)))
    try:
        runs = lab.store.list_runs(limit=10)
        assert len(runs) == 3
        real, *copies = sorted(runs, key=lambda r: r.id)
        assert [c.message for c in copies] == ["bench copy 0", "bench copy 1"]
        assert {c.status for c in copies} == {real.status}
        steps = lab.store.steps_of_runs([r.id for r in runs])
        assert {len(s) for s in steps.values()} == {len(steps[real.id])}
    finally:
        lab.close()
