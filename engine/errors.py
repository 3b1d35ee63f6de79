"""Errors the engine raises on purpose, each mapped to a CLI exit code and a dashboard message."""
from __future__ import annotations

from engine.states import IllegalTransition  # noqa: F401  (re-exported: exit code 3)


class BadInput(ValueError):
    """The caller passed something unusable; the message says what and how to fix it (exit code 2)."""


class GateFailed(Exception):
    """A gate said no. `outputs` carry the rule, the inputs and the margins so the decision can be explained."""

    def __init__(self, message: str, outputs: dict):
        super().__init__(message)
        self.outputs = outputs


class GateHeld(GateFailed):
    """A deploy gate stopped promotion: the run rests as `held`, and may be retried."""


class Refused(Exception):
    """An action that the current state does not allow (exit code 3); nothing was changed."""


class NotFound(BadInput):
    """The run (or other thing) asked for does not exist (exit code 2, like any bad input; HTTP 404)."""


class Limited(Refused):
    """The public demo's cap or pacing refused an action that may work a little later (exit code 3; HTTP 429)."""
