"""A Tail session file, written the way Pipecat Tail's unreleased main branch writes one, for
testing ``calltape import pipecat`` on Tail files.

Tail's main branch (pipecat-ai/tail, ``src/pipecat_tail/session.py``) cannot be installed here
(the released 0.0.5 on PyPI has no session writer, and the repository's source is not
reachable from this machine), so this module reproduces its wire format from what its source
says, while every payload comes from Pipecat's own code: an ``RTVIObserver`` subclass whose
RTVI messages are captured as Tail's observer captures them, and Pipecat's observers that Tail
runs beside it (turn tracking, user-to-bot latency, speaking, function calls, service metrics,
errors), whose events are dumped with ``model_dump(mode="json", exclude_none=True)``. Each
line is ``{"t": <unix seconds>, "message": ...}``; Tail's own messages carry
``label: "tail"``, ``type: "tail-…"``, ``timestamp`` and ``data``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipecat.frames.frames import MetricsFrame
from pipecat.metrics.metrics import ProcessingMetricsData
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.observers.error_observer import ErrorObserver
from pipecat.observers.function_call_observer import FunctionCallObserver
from pipecat.observers.service_metrics_observer import ServiceMetricsObserver
from pipecat.observers.speaking_observer import SpeakingObserver
from pipecat.observers.turn_tracking_observer import TurnTrackingObserver
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.processors.frameworks.rtvi.observer import (
    RTVIFunctionCallReportLevel,
    RTVIObserver,
    RTVIObserverParams,
)
from pydantic import BaseModel


class TailSessionFile(RTVIObserver):
    """Writes what a Tail app would record of the observed pipeline to ``path``."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            params=RTVIObserverParams(
                metrics_enabled=False,
                system_logs_enabled=False,
                function_call_report_level={"*": RTVIFunctionCallReportLevel.DISABLED},
            )
        )
        self._file = open(path, "w", encoding="utf-8")
        self._metrics_seen: set[int] = set()
        latency = UserBotLatencyObserver()
        latency.add_event_handler("on_latency_breakdown", self._latency)
        errors = ErrorObserver()
        errors.add_event_handler("on_error", self._tail("tail-error"))
        speaking = SpeakingObserver()
        speaking.add_event_handler("on_speech_event", self._tail("tail-speech"))
        turns = TurnTrackingObserver()
        turns.add_event_handler("on_turn_started", self._turn_started)
        turns.add_event_handler("on_turn_ended", self._turn_ended)
        calls = FunctionCallObserver(include_arguments=True, include_results=True)
        calls.add_event_handler("on_function_call_event", self._tail("tail-function-call"))
        metrics = ServiceMetricsObserver()
        metrics.add_event_handler("on_service_latency", self._tail("tail-service-latency"))
        metrics.add_event_handler("on_service_usage", self._tail("tail-service-usage"))
        self._children: list[BaseObserver] = [latency, errors, speaking, turns, calls, metrics]

    def _write(self, message: dict[str, Any]) -> None:
        if not self._file.closed:
            self._file.write(json.dumps({"t": time.time(), "message": message}, default=str))
            self._file.write("\n")

    def _send_tail(self, kind: str, data: dict[str, Any]) -> None:
        self._write({"label": "tail", "type": kind, "timestamp": time.time(), "data": data})

    def _tail(self, kind: str):
        async def handler(_observer: Any, event: BaseModel) -> None:
            self._send_tail(kind, event.model_dump(mode="json", exclude_none=True))

        return handler

    async def _latency(self, _observer: Any, breakdown: BaseModel) -> None:
        data = breakdown.model_dump(mode="json", exclude_none=True)
        data["latency_secs"] = data.get("total_secs")
        self._send_tail("tail-latency", data)

    async def _turn_started(self, _observer: Any, turn: int) -> None:
        self._send_tail("tail-turn", {"kind": "started", "turn": turn})

    async def _turn_ended(self, _observer: Any, turn: int, secs: float, interrupted: bool) -> None:
        self._send_tail(
            "tail-turn",
            {"kind": "ended", "turn": turn, "duration_secs": secs, "was_interrupted": interrupted},
        )

    async def send_rtvi_message(self, model: BaseModel, exclude_none: bool = True) -> None:
        self._write(model.model_dump(exclude_none=exclude_none))

    async def setup(self, task_manager) -> None:
        await super().setup(task_manager)
        for child in self._children:
            await child.setup(task_manager)

    async def on_pipeline_started(self) -> None:
        await super().on_pipeline_started()
        self._send_tail("tail-pipeline-started", {"processors": []})
        for child in self._children:
            await child.on_pipeline_started()

    async def on_process_frame(self, data: FrameProcessed) -> None:
        await super().on_process_frame(data)
        for child in self._children:
            await child.on_process_frame(data)

    async def on_push_frame(self, data: FramePushed) -> None:
        await super().on_push_frame(data)
        for child in self._children:
            if data.first_push or child.observe_every_push:
                await child.on_push_frame(data)
        frame = data.frame
        if isinstance(frame, MetricsFrame) and frame.id not in self._metrics_seen:
            self._metrics_seen.add(frame.id)
            for m in frame.data:
                if isinstance(m, ProcessingMetricsData):
                    self._send_tail(
                        "tail-service-latency",
                        {"kind": "processing", "processor": m.processor, "model": m.model,
                         "timestamp": time.time(), "seconds": m.value},
                    )

    async def cleanup(self) -> None:
        for child in self._children:
            await child.cleanup()
        self._send_tail("tail-pipeline-finished", {})
        self._file.close()
        await super().cleanup()
