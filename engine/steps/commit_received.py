"""Record the commit that started this run: SHA, message, author, seed and dataset window."""
from engine.ml.claims import parse_window


def run(ctx) -> dict:
    r = ctx.run
    start, end = parse_window(r.dataset_window)
    ctx.log(f"commit {r.sha} by {r.author or 'unknown'}: {r.message!r}")
    ctx.log(f"seed {r.seed}; dataset window {start} .. {end} ({(end - start).days + 1} days)")
    if ctx.modes:
        ctx.log(f"failure modes on for this run: {', '.join(sorted(ctx.modes))}", "WARNING")
    return {
        "sha": r.sha, "message": r.message, "author": r.author, "seed": r.seed,
        "dataset_window": r.dataset_window, "window_days": (end - start).days + 1,
        "failure_modes": sorted(ctx.modes),
    }
