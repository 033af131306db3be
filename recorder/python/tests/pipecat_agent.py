"""A real Pipecat voice agent for the calltape observer tests: Pipecat's websocket server
transport, Silero VAD, Pipecat's context aggregators and turn strategies, and stand-in STT,
LLM and TTS services of ours built on Pipecat's service base classes (so every frame and
metric they produce is Pipecat's own). The TTS speaks with espeak-ng; the LLM follows a
script with real delays: a greeting, a weather question whose tool fails, a slow answer the
caller interrupts, and a goodbye.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import wave
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    LLMTextFrame,
    TranscriptionFrame,
    InterimTranscriptionFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.websocket.server import (
    WebsocketServerParams,
    WebsocketServerTransport,
)
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

#: What the caller says, in order (the caller process speaks these with espeak-ng).
CALLER_LINES = [
    "What is the weather in Paris?",
    "Please book a table for two tonight.",
    "Stop, thank you.",
]
GREETING = "Hello, this is the demo restaurant. How can I help?"
TOOL_APOLOGY = "Sorry, I could not reach the weather service."
SLOW_ANSWER = (
    "Certainly. I have booked a table for two at eight o'clock tonight. "
    "You will get a confirmation message in a few minutes. "
    "Is there anything else I can do for you, for example a taxi, or some flowers for the table?"
)
GOODBYE = "Okay, goodbye."
#: The failing tool.
WEATHER_TOOL = "get_weather"
#: First-token delays (s): ordinary, and the slow turn's.
LLM_TTFT = 0.25
SLOW_TTFT = 2.6
STT_DELAY = 0.15


class ScriptedSTT(SegmentedSTTService):
    """Transcribes each VAD segment as the caller's next scripted line, after a delay."""

    def __init__(self, lines: list[str], **kwargs: Any) -> None:
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)
        self._lines = list(lines)

    def can_generate_metrics(self) -> bool:
        return True

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        if not self._lines:
            return
        text = self._lines.pop(0)
        await self.start_processing_metrics()
        await self.start_ttfb_metrics()
        first_word = text.split()[0]
        yield InterimTranscriptionFrame(first_word, "caller", time_now_iso8601())
        await asyncio.sleep(STT_DELAY)
        await self.stop_ttfb_metrics()
        yield TranscriptionFrame(text, "caller", time_now_iso8601(), finalized=True)
        await self.stop_processing_metrics()


class ScriptedLLM(LLMService):
    """Answers from a script keyed by the caller's last line, streaming words with delays; asks
    for the weather tool once and apologises when it fails."""

    def __init__(self, **kwargs: Any) -> None:
        unset = dict.fromkeys(
            ["model", "system_instruction", "temperature", "max_tokens", "top_p", "top_k",
             "frequency_penalty", "presence_penalty", "seed", "filter_incomplete_user_turns",
             "user_turn_completion_config"]
        )
        super().__init__(settings=LLMSettings(**unset), **kwargs)

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._respond(frame.context)
        else:
            await self.push_frame(frame, direction)

    def _plan(self, context: LLMContext) -> tuple[float, str | None, bool]:
        messages = context.get_messages()
        last = messages[-1] if messages else {}
        role = last.get("role") if isinstance(last, dict) else None
        if role == "tool":
            return LLM_TTFT, TOOL_APOLOGY, False
        user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = str(user[-1].get("content", "")) if user else ""
        if not user or role == "system":
            return LLM_TTFT, GREETING, False
        if "weather" in text.lower():
            return LLM_TTFT, None, True
        if "table" in text.lower():
            return SLOW_TTFT, SLOW_ANSWER, False
        return LLM_TTFT, GOODBYE, False

    async def _respond(self, context: LLMContext) -> None:
        ttft, answer, call_tool = self._plan(context)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        await self.start_ttfb_metrics()
        await asyncio.sleep(ttft)
        await self.stop_ttfb_metrics()
        completion = 0
        if call_tool:
            await self.start_llm_usage_metrics(
                LLMTokenUsage(prompt_tokens=120, completion_tokens=12, total_tokens=132)
            )
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())
            await self.run_function_calls(
                [
                    FunctionCallFromLLM(
                        function_name=WEATHER_TOOL,
                        tool_call_id="call-weather-1",
                        arguments={"city": "Paris"},
                        context=context,
                    )
                ]
            )
            return
        assert answer is not None
        for i, word in enumerate(answer.split(" ")):
            await self.push_frame(LLMTextFrame(word if i == 0 else " " + word))
            completion += 1
            await asyncio.sleep(0.02)
        await self.start_llm_usage_metrics(
            LLMTokenUsage(
                prompt_tokens=100 + 10 * len(context.get_messages()),
                completion_tokens=completion,
                total_tokens=100 + 10 * len(context.get_messages()) + completion,
            )
        )
        await self.stop_processing_metrics()
        await self.push_frame(LLMFullResponseEndFrame())


async def fetch_weather(params: FunctionCallParams) -> None:
    """The weather tool: its backend is down."""
    await asyncio.sleep(0.2)
    raise ConnectionError("weather backend unreachable")


WEATHER_SCHEMA = FunctionSchema(
    name=WEATHER_TOOL,
    description="Current weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)


class EspeakTTS(TTSService):
    """Speaks with espeak-ng (22.05 kHz), resampled by Pipecat to the output rate."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice="en-us", language=None),
            **kwargs,
        )

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        await self.start_tts_usage_metrics(text)
        wav = await asyncio.to_thread(speak, text, None)

        async def chunks():
            step = 4410
            for i in range(0, len(wav), step):
                yield wav[i : i + step]

        async for frame in self._stream_audio_frames_from_iterator(
            chunks(), strip_wav_header=True, context_id=context_id
        ):
            await self.stop_ttfb_metrics()
            yield frame


def speak(text: str, rate: int | None) -> bytes:
    """espeak-ng's speech for ``text``: a WAV file, or raw 16-bit mono PCM at ``rate``
    (converted by sox)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "165", "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    if rate is None:
        return wav
    return subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16",
         "-c", "1", "-"],
        input=wav,
        check=True,
        capture_output=True,
    ).stdout


@dataclass
class AgentRun:
    """What one run of the agent saw through Pipecat's own observers."""

    turns_started: list[int] = field(default_factory=list)
    turns_ended: list[tuple[int, bool]] = field(default_factory=list)
    latencies: list[Any] = field(default_factory=list)


async def run_agent(
    port: int,
    observers: list[Any],
    ready: asyncio.Event,
    run: AgentRun,
    whisker: Any = None,
    wav_path: str | None = None,
) -> None:
    """Runs the agent until the caller hangs up; ``whisker``: a Whisker sink recording beside
    the observers; ``wav_path``: where Pipecat's AudioBufferProcessor writes the call (stereo,
    user left, bot right)."""
    transport = WebsocketServerTransport(
        params=WebsocketServerParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=16000,
            audio_out_sample_rate=24000,
            serializer=ProtobufFrameSerializer(),
        ),
        host="127.0.0.1",
        port=port,
    )
    context = LLMContext(
        messages=[{"role": "system", "content": "You are a restaurant's phone agent."}],
        tools=ToolsSchema(standard_tools=[WEATHER_SCHEMA]),
    )
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=UserTurnStrategies(
                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)]
            ),
        ),
    )
    audio_buffer = AudioBufferProcessor(num_channels=2, auto_start_recording=True)

    @audio_buffer.event_handler("on_audio_data")
    async def _audio(_buffer, audio: bytes, sample_rate: int, num_channels: int):
        if wav_path is not None:
            with wave.open(wav_path, "wb") as w:
                w.setnchannels(num_channels)
                w.setsampwidth(2)
                w.setframerate(sample_rate)
                w.writeframes(audio)

    llm = ScriptedLLM()
    llm.register_function(WEATHER_TOOL, fetch_weather)
    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.6))),
            ScriptedSTT(list(CALLER_LINES)),
            aggregators.user(),
            llm,
            EspeakTTS(sample_rate=24000),
            transport.output(),
            audio_buffer,
            aggregators.assistant(),
        ]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        observers=observers,
        idle_timeout_secs=60,
    )
    tracker = task.turn_tracking_observer
    assert tracker is not None

    @tracker.event_handler("on_turn_started")
    async def _started(_o, n):
        run.turns_started.append(n)

    @tracker.event_handler("on_turn_ended")
    async def _ended(_o, n, _secs, interrupted):
        run.turns_ended.append((n, interrupted))

    @transport.event_handler("on_client_connected")
    async def _connected(_t, _ws):
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def _disconnected(_t, _ws):
        await task.queue_frame(EndFrame())

    @transport.event_handler("on_websocket_ready")
    async def _ready(_t):
        ready.set()

    runner = WorkerRunner(handle_sigint=False)

    @task.event_handler("on_pipeline_finished")
    async def _finished(_task, _frame):
        await runner.end()

    if whisker is not None:
        await runner.add_workers(whisker)
        task.add_observer(whisker.create_observer(task))
    await runner.add_workers(task)
    await runner.run()


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)
