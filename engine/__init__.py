"""The lab's engine: pipeline state, runner, steps and MLflow. It never imports streamlit."""
from engine.config import Settings
from engine.errors import BadInput, GateFailed, GateHeld, Refused
from engine.lab import Lab
from engine.states import IllegalTransition, RunStatus, StepStatus

__all__ = ["BadInput", "GateFailed", "GateHeld", "IllegalTransition", "Lab", "Refused", "RunStatus", "Settings",
           "StepStatus"]
