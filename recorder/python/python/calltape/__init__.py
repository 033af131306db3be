"""calltape: record real-time voice-agent calls into calltape archives and read them back.

A binding of the Rust recorder and reader. Recording never blocks the event loop: every
recording method queues its record and returns; a background writer compresses, spools to
disk (crash-safe) and uploads to your bucket.

    import calltape

    recorder = calltape.Recorder("s3://my-bucket/calls", spool_dir="/var/spool/calltape")
    session = recorder.start_session("call-42", agent=("front-desk", "1.0"),
                                     tracks=[("user", 16000, 1), ("agent", 24000, 1)])
    session.turn_start(1)
    session.audio("user", pcm_int16)                 # bytes, memoryview, numpy int16, ...
    session.transcript("user", "I'd like to book a table", turn=1)
    with session.stage(1, "llm") as llm:
        ...; llm.first_token(); ...
    session.turn_end(1)
    report = await session.finish()                  # closes and uploads the archive
    await recorder.shutdown(10)

    call = calltape.open("s3://my-bucket/calls/2026/11/21/call-42.calltape")
    call.turns[0]["latency"]                         # the e2e breakdown, ns
    for rec in call.records(lane=0): ...
"""

from __future__ import annotations

from ._calltape import (
    MAX_SESSION_ID_LEN,
    Call,
    CallRecord,
    FinishReport,
    Health,
    Issue,
    Recorder,
    RecordIter,
    Session,
    SessionAt,
    SessionStatus,
    ShutdownReport,
    StageTimer,
    UploadReport,
    open,
    validate_session_id,
)
from ._context import Activation, current_session
from ._errors import (
    ArchiveError,
    AudioFormatError,
    CalltapeError,
    DestinationError,
    DuplicateSessionError,
    InvalidRedactionRuleError,
    InvalidSessionIdError,
    InvalidSessionInfoError,
    RecorderError,
    SessionFinishedError,
    ShuttingDownError,
    SpoolError,
    UnknownTrackError,
    WriterLostError,
)
from ._logging import LoggingHandler

__all__ = [
    "MAX_SESSION_ID_LEN",
    "Activation",
    "ArchiveError",
    "AudioFormatError",
    "Call",
    "CallRecord",
    "CalltapeError",
    "DestinationError",
    "DuplicateSessionError",
    "FinishReport",
    "Health",
    "InvalidRedactionRuleError",
    "InvalidSessionIdError",
    "InvalidSessionInfoError",
    "Issue",
    "LoggingHandler",
    "RecordIter",
    "Recorder",
    "RecorderError",
    "Session",
    "SessionAt",
    "SessionFinishedError",
    "SessionStatus",
    "ShutdownReport",
    "ShuttingDownError",
    "SpoolError",
    "StageTimer",
    "UnknownTrackError",
    "UploadReport",
    "WriterLostError",
    "current_session",
    "open",
    "validate_session_id",
]
