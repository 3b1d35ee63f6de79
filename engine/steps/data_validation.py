"""Check this run's data feed against the data contract; any violated check fails the run."""
from engine.errors import GateFailed
from engine.ml.validation import validate


def run(ctx) -> dict:
    frame = ctx.feed(ctx.params["rows"])
    ctx.log(f"validating {len(frame):,} claims, {frame.shape[1]} columns")
    report = validate(frame)
    for check in report.checks:
        ctx.log(f"{'PASS' if check.passed else 'FAIL'} {check.name}"
                + (f": {check.detail}" if check.detail else ""), "INFO" if check.passed else "ERROR")
    outputs = report.to_dict()
    if not report.passed:
        failed = report.failed_checks
        raise GateFailed(f"data contract violated in {len(failed)} checks ({', '.join(c.name for c in failed)}); "
                         f"first: {failed[0].detail}", outputs)
    return outputs
