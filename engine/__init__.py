"""The lab's engine: pipeline state, runner, steps and MLflow. It never imports streamlit."""
from engine.config import Settings
from engine.errors import BadInput, GateFailed, GateHeld, Refused
from engine.records import AuditEntry, Run, Step
from engine.states import IllegalTransition, RunStatus, StepStatus

__all__ = ["AuditEntry", "BadInput", "GateFailed", "GateHeld", "IllegalTransition", "Lab", "Refused", "Run",
           "RunStatus", "Settings", "Step", "StepStatus"]


def __getattr__(name: str):
    """`Lab` is imported when first asked for: the store, runner and MLflow client behind it take half a second to
    import, which the ci_tests suite's subprocess (it needs only engine.ml and engine.pipeline) should not pay."""
    if name == "Lab":
        from engine.lab import Lab
        return Lab
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
