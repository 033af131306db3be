"""The current session of an asyncio task or thread, for ``LoggingHandler``."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._calltape import Session

_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "calltape_session", default=None
)


def current_session() -> Session | None:
    """The session made current by ``session.activate()`` in this task or thread, or None."""
    return _current.get()


class Activation:
    """Returned by ``session.activate()``: the session stays current until the end of the
    task, or, used as a context manager, until the ``with`` block ends."""

    __slots__ = ("_token",)

    def __init__(self, token: contextvars.Token[Any]) -> None:
        self._token = token

    def __enter__(self) -> Activation:
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def activate(session: Session) -> Activation:
    return Activation(_current.set(session))
