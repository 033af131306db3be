"""The exceptions of the calltape package. The Rust core raises them with its own messages."""

from __future__ import annotations

__all__ = [
    "CalltapeError",
    "RecorderError",
    "InvalidSessionIdError",
    "InvalidSessionInfoError",
    "DestinationError",
    "SpoolError",
    "DuplicateSessionError",
    "ShuttingDownError",
    "InvalidRedactionRuleError",
    "WriterLostError",
    "SessionFinishedError",
    "UnknownTrackError",
    "AudioFormatError",
    "ArchiveError",
]


class CalltapeError(Exception):
    """Base of every exception this package raises."""


class RecorderError(CalltapeError):
    """Recording failed: a bad argument, a bad destination, a finished session, ...

    The message says what failed, on which session, URL or path, and what to do."""


class InvalidSessionIdError(RecorderError, ValueError):
    """A session id is not 1-128 bytes of ``A-Z a-z 0-9 . _ : -`` (or contains ``..``)."""


class InvalidSessionInfoError(RecorderError, ValueError):
    """A session's tracks or other start information are invalid."""


class DestinationError(RecorderError, ValueError):
    """The destination URL is missing, malformed, or its object store cannot be set up."""


class SpoolError(RecorderError, OSError):
    """The spool directory cannot be used."""


class DuplicateSessionError(RecorderError, ValueError):
    """A session with this id is already recording in this recorder."""


class ShuttingDownError(RecorderError):
    """The recorder is shutting down and takes no new sessions."""


class InvalidRedactionRuleError(RecorderError, ValueError):
    """A redaction rule's regular expression does not compile."""


class WriterLostError(RecorderError):
    """A session's background writer stopped; its spool file is recovered on the next start."""


class SessionFinishedError(RecorderError):
    """A record was given to a session after ``finish()``: it was not recorded."""


class UnknownTrackError(RecorderError, ValueError):
    """Audio for a track the session did not declare in ``start_session(tracks=...)``."""


class AudioFormatError(RecorderError, TypeError):
    """Audio that is not 16-bit signed PCM (e.g. a float32 numpy array, an odd byte count)."""


class ArchiveError(CalltapeError):
    """An archive cannot be opened or read: not found, not a calltape archive, damaged."""
