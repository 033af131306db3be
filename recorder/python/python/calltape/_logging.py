"""``calltape.LoggingHandler``: Python log records of a session into its archive (the Python
twin of the Rust ``tracing`` layer)."""

from __future__ import annotations

import logging
from typing import Any

from ._context import current_session
from ._errors import SessionFinishedError

# attributes every LogRecord has: not copied into the record's fields
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _level(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


class LoggingHandler(logging.Handler):
    """Records each log record into the archive of the session it belongs to, as a ``log``
    record (level, logger name as target, message, extra fields).

    The session is the record's ``calltape_session`` extra (a ``Session``), else the current
    session (``session.activate()`` in this asyncio task or thread), else ``session`` given
    here. Records with no session are ignored. An integer ``turn`` extra sets the record's
    turn; other ``extra`` values are kept as fields (JSON-like ones as they are, others as
    their ``repr``). Like every recording call, ``emit`` never blocks.

        logging.getLogger().addHandler(calltape.LoggingHandler())
        session.activate()
        log.info("booking confirmed", extra={"turn": 3, "booking_id": "B-17"})
    """

    def __init__(self, session: Any = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._session = session

    def emit(self, record: logging.LogRecord) -> None:
        session = getattr(record, "calltape_session", None) or current_session() or self._session
        if session is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                if not record.exc_text:
                    record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                message = f"{message}\n{record.exc_text}"
            fields: dict[str, Any] = {}
            turn = None
            for key, value in vars(record).items():
                if key in _STANDARD or key == "calltape_session":
                    continue
                if key == "turn" and isinstance(value, int) and not isinstance(value, bool):
                    turn = value
                    continue
                fields[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
            session.log(
                _level(record.levelno),
                message,
                target=record.name,
                turn=turn,
                fields=fields or None,
            )
        except SessionFinishedError:
            pass  # logging after the call ended: nothing to record it in
        except Exception:  # a bad field: never break the caller's logging
            self.handleError(record)
