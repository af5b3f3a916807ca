"""Logging to a file in the data dir: tracebacks belong there, not on the trader's screen."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from trii_term.credentials import install_log_filter
from trii_term.paths import Paths

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(paths: Paths, level: int = logging.INFO) -> str | None:
    """Send logs to `<data dir>/logs/trii-term.log` (rotated). Returns a warning if the log file
    cannot be written, in which case only warnings and errors go to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    try:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = LogFile(
            paths.log_file, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
        problem = None
    except OSError as exc:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(_OneLine(FORMAT))
        problem = f"cannot write the log file {paths.log_file} ({exc.strerror}); logging to stderr"
    else:
        handler.setFormatter(logging.Formatter(FORMAT))
    install_log_filter(handler)  # secrets read from the keyring or environment never reach the log
    root.addHandler(handler)
    logging.captureWarnings(True)
    return problem


class _OneLine(logging.Formatter):
    """For logging to stderr when the log file cannot be written: the message, never a
    traceback (tracebacks belong in a file, not on the trader's screen)."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(
            {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
        )
        return super().format(record)


class LogFile(logging.handlers.RotatingFileHandler):
    """The rotated log file. A record that cannot be written (a full disk) is counted, not
    reported: logging's default prints a traceback on stderr for every such record, which on a
    full disk is every record. The count is written once the file takes records again."""

    lost = 0

    def handleError(self, record: logging.LogRecord) -> None:
        self.lost += 1

    def emit(self, record: logging.LogRecord) -> None:
        lost = self.lost
        super().emit(record)
        if lost and self.lost == lost:  # written again: say what was not
            self.lost = 0
            note = logging.makeLogRecord(
                {"name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                 "msg": "%d log records before this one could not be written (disk full?)",
                 "args": (lost,)}
            )  # fmt: skip
            super().emit(note)
