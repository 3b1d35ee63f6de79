"""Registry alias moves: MLflow's alias (and the version's tags) moved together with the store's history and audit
rows, all or nothing.

The store holds the rows (engine/store.py), MLflow the aliases (engine/tracking.py); this module is the one place
that changes both, so a failure on either side leaves neither changed.
"""
from __future__ import annotations

import contextlib
import logging

from engine.config import MODEL_NAME
from engine.errors import Refused

log = logging.getLogger(__name__)


class Undo:
    """Side effects outside the database (MLflow tags and aliases), each with the step that takes it back.

    Used as `with Undo() as undo, store.tx() as c:`: if anything in the block, or the commit after it, fails,
    the effects are undone newest first and the error propagates, so the registry is left as it was.
    """

    def __init__(self):
        self._steps: list = []

    def __enter__(self) -> "Undo":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None:
            self.undo()
        return False

    def undo(self) -> None:
        """Take back every recorded effect, newest first; a step that fails does not stop the others."""
        while self._steps:
            step = self._steps.pop()
            try:
                step()
            except Exception:  # reported; the original error is the one raised
                log.exception("could not undo a registry change")

    def tag_version(self, tracking, version: int, tags: dict) -> None:
        """Set model version tags, remembering the values they replace."""
        before = dict(tracking.client.get_model_version(MODEL_NAME, str(version)).tags)

        def restore():
            for key in tags:
                if key in before:
                    tracking.client.set_model_version_tag(MODEL_NAME, str(version), key, before[key])
                else:
                    with contextlib.suppress(Exception):
                        tracking.client.delete_model_version_tag(MODEL_NAME, str(version), key)
        self._steps.append(restore)  # registered first: a failure half-way through the tags is undone too
        tracking.set_version_tags(version, tags)

    def set_alias(self, tracking, alias: str, version: int, previous: int | None) -> None:
        """Move an alias, remembering where it pointed."""

        def restore():
            if previous is None:
                tracking.client.delete_registered_model_alias(MODEL_NAME, alias)
            else:
                tracking.set_alias(alias, previous)
        self._steps.append(restore)
        tracking.set_alias(alias, version)


def move_alias(store, tracking, alias: str, version: int, run_id: int | None, by: str, reason: str, action: str,
               expect_current: int | None = None, tags=None) -> int | None:
    """Point MLflow `alias` at `version` (tagging the version with `tags`, a dict or a function of the previous
    holder), record the move, serialised per alias; return the previous holder.

    All or nothing: the history and audit rows are written first in an open transaction, then the tags and the
    alias (each undone if anything after it fails), then the transaction commits. With `expect_current`, refuse
    (Refused, nothing changed) if another process moved the alias meanwhile. Repeating a move that failed is safe.
    """
    with Undo() as undo, store.tx() as c:  # the commit is inside Undo: a failed commit undoes too
        store.lock(c, f"alias:{alias}")
        previous = tracking.alias_version(alias)  # strict: an MLflow outage raises, never reads as "none"
        if expect_current is not None and previous != expect_current:
            raise Refused(f"{alias} moved to version {previous} meanwhile; look again before acting")
        store.record_alias(c, alias, version, run_id, by, reason, action)
        store.add_audit(c, by, f"{action}:{alias}", run_id, reason, {"from": previous, "to": version})
        tags = tags(previous) if callable(tags) else tags
        if tags:
            undo.tag_version(tracking, version, tags)
        undo.set_alias(tracking, alias, version, previous)
    return previous
