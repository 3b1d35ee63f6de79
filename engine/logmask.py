"""Logs never print a password: every log record of the process is masked once, as it is made.

Streamlit gives each of its loggers its own handler (and re-creates them when its config changes), and MLflow
brings its own: a filter on today's handlers would miss tomorrow's. So the one filter runs where every record is
born, in the record factory, before any handler or formatter sees it.
"""
from __future__ import annotations

import logging
import threading

from engine.config import env_secrets, mask_exception, mask_text

_LOCK = threading.Lock()
_INSTALLED: list["MaskSecrets"] = []


class MaskSecrets(logging.Filter):
    """Masks a record in place (mask_text): its message with the arguments merged in, its traceback (chained
    causes included) and its stack text. Always lets the record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = env_secrets()
        try:
            record.msg, record.args = mask_text(record.getMessage(), secrets), ()
        except Exception:  # a broken format string: logging reports it when the record is emitted
            pass
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted here, masked; exc_info is dropped so that no formatter prints the raw one again.
            record.exc_text = mask_exception(record.exc_info[1], secrets, full=True).rstrip("\n")
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, secrets)
        return True


def install() -> MaskSecrets:
    """Mask every log record this process makes from now on; installed once, later calls return the same."""
    with _LOCK:
        if not _INSTALLED:
            _INSTALLED.append(MaskSecrets())
            make, mask = logging.getLogRecordFactory(), _INSTALLED[0]

            def masked_record(*args, **kwargs) -> logging.LogRecord:
                record = make(*args, **kwargs)
                mask.filter(record)
                return record

            logging.setLogRecordFactory(masked_record)
            # A handler that fails (a closed stream) makes logging print its own error to stderr, and with it the
            # exception being handled at the time, unmasked. Python's advice for production: ignore such errors.
            logging.raiseExceptions = False
        return _INSTALLED[0]
