"""A LiveKit Agents call that runs without a room, for the calltape.livekit tests.

Everything here implements LiveKit's own interfaces (livekit-agents from PyPI, nothing of it
mocked): an energy VAD and a streaming STT that detect speech in the audio they are given, a
scripted LLM with real delays (one slow turn, one text-then-tool reply, a failing tool, a
handoff), a TTS that speaks with espeak-ng, a microphone (AudioInput) that plays espeak-ng
speech in real time, and a speaker (AudioOutput) that plays the agent's audio in real time and
remembers exactly what was heard.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import shutil
import subprocess
import time
import uuid
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    Agent,
    APIConnectionError,
    APIConnectOptions,
    RunContext,
    function_tool,
    llm,
    stt,
    tts,
    vad,
)
from livekit.agents.llm import ToolError
from livekit.agents.voice import io as lk_io

USER_RATE = 16_000
AGENT_RATE = 22_050  # espeak-ng's native rate
FRAME_MS = 20
LOUD = 300.0  # RMS (int16) above which a 20 ms frame holds speech
SPEECH_START = 0.06  # s of loud audio that starts speech
SPEECH_END = 0.45  # s of quiet audio that ends it


def require_tools() -> None:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed: the LiveKit tests speak with it")


def speak(text: str, rate: int) -> np.ndarray:
    """espeak-ng speech of ``text`` as mono int16 at ``rate``."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    raw = subprocess.run(
        ["sox", "-t", "wav", "-", "-r", str(rate), "-t", "raw", "-e", "signed", "-b", "16",
         "-c", "1", "-"],
        input=wav, check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.int16).copy()


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


# -- speech detection shared by the VAD and the STT ------------------------------------------


@dataclasses.dataclass
class Detection:
    kind: str  # "start" | "frame" | "end"
    speaking: bool
    speech: float
    silence: float
    raw_speech: float
    raw_silence: float
    frames: list[rtc.AudioFrame]


class Detector:
    """Energy speech detection on 20 ms frames (speech starts after SPEECH_START s of loud
    audio and ends after SPEECH_END s of quiet audio)."""

    def __init__(self) -> None:
        self.speaking = False
        self.speech = 0.0
        self.raw_speech = 0.0
        self.raw_silence = 0.0
        self.frames: list[rtc.AudioFrame] = []

    def push(self, frame: rtc.AudioFrame) -> list[Detection]:
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        dur = frame.samples_per_channel / frame.sample_rate
        loud = rms(pcm) > LOUD
        out: list[Detection] = []
        if loud:
            self.raw_speech += dur
            self.raw_silence = 0.0
        else:
            self.raw_silence += dur
            self.raw_speech = 0.0
        if not self.speaking:
            self.frames = (self.frames + [frame])[-10:]
            if self.raw_speech >= SPEECH_START:
                self.speaking, self.speech = True, self.raw_speech
                out.append(self._det("start"))
        else:
            self.frames.append(frame)
            self.speech += dur
            if self.raw_silence >= SPEECH_END:
                end = self._det("end")
                self.speaking, self.speech, self.frames = False, 0.0, []
                out.append(self._det("frame"))
                out.append(end)
                return out
        out.append(self._det("frame"))
        return out

    def _det(self, kind: str) -> Detection:
        return Detection(kind, self.speaking, self.speech if self.speaking else 0.0,
                         self.raw_silence, self.raw_speech, self.raw_silence, list(self.frames))


# -- VAD --------------------------------------------------------------------------------------


class EnergyVAD(vad.VAD):
    def __init__(self) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=FRAME_MS / 1000))

    @property
    def model(self) -> str:
        return "energy-vad"

    def stream(self) -> vad.VADStream:
        return EnergyVADStream(self)


class EnergyVADStream(vad.VADStream):
    async def _main_task(self) -> None:
        det = Detector()
        index = 0
        async for item in self._input_ch:
            if isinstance(item, vad.VADStream._FlushSentinel):
                continue
            index += item.samples_per_channel
            for d in det.push(item):
                kind = {"start": vad.VADEventType.START_OF_SPEECH,
                        "frame": vad.VADEventType.INFERENCE_DONE,
                        "end": vad.VADEventType.END_OF_SPEECH}[d.kind]
                self._event_ch.send_nowait(vad.VADEvent(
                    type=kind, samples_index=index, timestamp=time.time(),
                    speech_duration=d.speech, silence_duration=d.silence,
                    frames=d.frames if d.kind != "frame" else [item],
                    probability=1.0 if d.speaking else 0.0, inference_duration=0.0,
                    speaking=d.speaking, raw_accumulated_silence=d.raw_silence,
                    raw_accumulated_speech=d.raw_speech,
                ))


# -- STT --------------------------------------------------------------------------------------


class ScriptedSTT(stt.STT):
    """A streaming STT that detects each utterance in the audio and "recognizes" it as the next
    line of its script (an interim with the first words, then the final), after a real delay."""

    def __init__(self, script: list[str], delay: float = 0.15) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self.script = collections.deque(script)
        self.delay = delay
        self.recognized: list[str] = []

    @property
    def model(self) -> str:
        return "scripted-stt"

    @property
    def provider(self) -> str:
        return "calltape-tests"

    async def _recognize_impl(self, buffer: Any, *, language: Any = None,
                              conn_options: APIConnectOptions) -> stt.SpeechEvent:
        raise NotImplementedError("ScriptedSTT streams only")

    def stream(self, *, language: Any = None,
               conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.RecognizeStream:
        return ScriptedSTTStream(stt=self, conn_options=conn_options)


class ScriptedSTTStream(stt.RecognizeStream):
    async def _run(self) -> None:
        owner: ScriptedSTT = self._stt  # type: ignore[assignment]
        det = Detector()
        text = ""
        interim_sent = False
        pending: list[asyncio.Task[None]] = []

        async def final(text: str, started: float) -> None:
            await asyncio.sleep(owner.delay)
            data = stt.SpeechData(language="en", text=text, confidence=0.92)
            self._event_ch.send_nowait(stt.SpeechEvent(
                type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[data]))
            self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))

        async for item in self._input_ch:
            if isinstance(item, stt.RecognizeStream._FlushSentinel):
                continue
            for d in det.push(item):
                if d.kind == "start":
                    text = owner.script.popleft() if owner.script else "(unscripted speech)"
                    owner.recognized.append(text)
                    interim_sent = False
                    self._event_ch.send_nowait(stt.SpeechEvent(
                        type=stt.SpeechEventType.START_OF_SPEECH))
                elif d.kind == "frame" and d.speaking and d.speech > 0.5 and not interim_sent:
                    interim_sent = True
                    words = text.split()
                    partial = " ".join(words[: max(1, len(words) // 2)])
                    self._event_ch.send_nowait(stt.SpeechEvent(
                        type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                        alternatives=[stt.SpeechData(language="en", text=partial, confidence=0.6)]))
                elif d.kind == "end":
                    pending.append(asyncio.create_task(final(text, time.time())))
        for t in pending:
            await t


# -- LLM --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    text: str = ""
    tool: tuple[str, dict[str, Any]] | None = None
    first_token_delay: float = 0.2


def pick_reply(chat_ctx: llm.ChatContext) -> Reply:
    """The script: what the agent answers, from the last item of the chat."""
    items = [i for i in chat_ctx.items if i.type in ("message", "function_call_output")]
    last = items[-1] if items else None
    if last is not None and last.type == "function_call_output":
        return {
            "get_weather": Reply("It is sunny and twenty degrees in Paris today."),
            "lookup_order": Reply("Sorry, I could not find that order in our system."),
            "transfer_to_billing": Reply(""),
        }.get(last.name, Reply("Done."))
    said = (last.text_content or "").lower() if last is not None and last.type == "message" else ""
    if "weather" in said:
        return Reply(tool=("get_weather", {"city": "Paris"}))
    if "order" in said:
        return Reply("Let me check that order for you.", tool=("lookup_order", {"order_id": "A123"}))
    if "table" in said:
        return Reply("Your table for two at eight tonight is booked.", first_token_delay=1.6)
    if "story" in said:
        return Reply(
            "Once upon a time there was a small lighthouse on a rocky island, and every night "
            "its keeper climbed the long stairs to light the lamp for the passing ships, "
            "while the wind sang around the tower and the waves crashed on the stones below."
        )
    if "billing" in said:
        return Reply(tool=("transfer_to_billing", {}))
    if "goodbye" in said:
        return Reply("Goodbye, have a nice evening.")
    return Reply("Sorry, could you say that again?")


class ScriptedLLM(llm.LLM):
    def __init__(self) -> None:
        super().__init__()
        self.failed_once = False

    @property
    def model(self) -> str:
        return "scripted-llm"

    @property
    def provider(self) -> str:
        return "calltape-tests"

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             **_: Any) -> llm.LLMStream:
        return ScriptedLLMStream(self, chat_ctx=chat_ctx, tools=tools or [],
                                 conn_options=conn_options)


class ScriptedLLMStream(llm.LLMStream):
    async def _run(self) -> None:
        reply = pick_reply(self._chat_ctx)
        owner: ScriptedLLM = self._llm  # type: ignore[assignment]
        if reply.text.startswith("Goodbye") and not owner.failed_once:
            # the provider drops the first request of the goodbye turn: LiveKit retries
            owner.failed_once = True
            await asyncio.sleep(0.05)
            raise APIConnectionError("upstream connection reset")
        await asyncio.sleep(reply.first_token_delay)
        rid = f"chatcmpl-{uuid.uuid4().hex[:8]}"
        words = reply.text.split(" ") if reply.text else []
        for i in range(0, len(words), 4):
            piece = " ".join(words[i:i + 4]) + (" " if i + 4 < len(words) else "")
            self._event_ch.send_nowait(llm.ChatChunk(
                id=rid, delta=llm.ChoiceDelta(role="assistant", content=piece)))
            await asyncio.sleep(0.02)
        if reply.tool is not None:
            name, args = reply.tool
            import json

            self._event_ch.send_nowait(llm.ChatChunk(id=rid, delta=llm.ChoiceDelta(
                role="assistant",
                tool_calls=[llm.FunctionToolCall(name=name, arguments=json.dumps(args),
                                                 call_id=f"call_{uuid.uuid4().hex[:8]}")])))
        self._event_ch.send_nowait(llm.ChatChunk(id=rid, usage=llm.CompletionUsage(
            completion_tokens=max(1, len(words)), prompt_tokens=40 + 10 * len(self._chat_ctx.items),
            total_tokens=40 + 10 * len(self._chat_ctx.items) + max(1, len(words)))))


# -- TTS --------------------------------------------------------------------------------------


class EspeakTTS(tts.TTS):
    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                         sample_rate=AGENT_RATE, num_channels=1)

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def provider(self) -> str:
        return "calltape-tests"

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.ChunkedStream:
        return EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class EspeakStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        proc = await asyncio.create_subprocess_exec(
            "espeak-ng", "--stdout", self._input_text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        wav, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {err.decode(errors='replace')}")
        output_emitter.initialize(request_id=uuid.uuid4().hex, sample_rate=AGENT_RATE,
                                  num_channels=1, mime_type="audio/pcm")
        output_emitter.push(wav[44:])  # espeak-ng writes a 44-byte RIFF header, then PCM
        output_emitter.flush()


# -- the room-less audio I/O ------------------------------------------------------------------


class Microphone(lk_io.AudioInput):
    """Plays a queue of utterances in real time as 20 ms frames, silence between them."""

    sample_rate = USER_RATE

    def __init__(self) -> None:
        super().__init__(label="test-microphone")
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._current: np.ndarray | None = None
        self._pos = 0
        self._next_at: float | None = None
        self._closed = False
        self.fed: list[np.ndarray] = []  # every frame handed out, in order
        self.fed_at: list[tuple[float, int]] = []  # (wall time it plays, index in fed)
        self.utterance_starts: list[float] = []  # wall time of each utterance's first sample
        self.frame = USER_RATE * FRAME_MS // 1000

    def say(self, pcm: np.ndarray) -> None:
        self._queue.append(pcm)

    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.time()
        if self._next_at is None:
            self._next_at = now
        # a frame is delivered once it has been captured: at the end of its 20 ms
        ready = self._next_at + FRAME_MS / 1000
        if ready > now:
            await asyncio.sleep(ready - now)
        out = np.zeros(self.frame, dtype=np.int16)
        filled = 0
        while filled < self.frame:
            if self._current is None:
                if not self._queue:
                    break
                self._current, self._pos = self._queue.popleft(), 0
                self.utterance_starts.append(
                    self._next_at + filled / USER_RATE)
            n = min(self.frame - filled, len(self._current) - self._pos)
            out[filled:filled + n] = self._current[self._pos:self._pos + n]
            filled += n
            self._pos += n
            if self._pos >= len(self._current):
                self._current = None
        self.fed_at.append((self._next_at, len(self.fed)))
        self._next_at += FRAME_MS / 1000
        self.fed.append(out)
        return rtc.AudioFrame(out.tobytes(), USER_RATE, 1, self.frame)


@dataclasses.dataclass
class Segment:
    frames: collections.deque
    flushed: bool = False
    cleared: bool = False


class Speaker(lk_io.AudioOutput):
    """Plays captured audio in real time in 10 ms pieces; ``clear_buffer`` stops it at once.
    ``heard`` keeps (wall time, int16 samples) of each played segment."""

    def __init__(self) -> None:
        super().__init__(label="test-speaker", capabilities=lk_io.AudioOutputCapabilities(pause=False),
                         sample_rate=AGENT_RATE)
        self._segments: collections.deque[Segment] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.heard: list[tuple[float, np.ndarray, bool]] = []

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._segments or self._segments[-1].flushed:
            self._segments.append(Segment(collections.deque()))
        self._segments[-1].frames.append(frame)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._play())
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        if self._segments and not self._segments[-1].flushed:
            self._segments[-1].flushed = True
        self._wake.set()

    def clear_buffer(self) -> None:
        for seg in self._segments:
            seg.cleared = True
            seg.flushed = True
        self._wake.set()

    async def _play(self) -> None:
        while self._segments:
            seg = self._segments[0]
            started: float | None = None
            played: list[np.ndarray] = []
            pos = 0
            while not seg.cleared:
                if seg.frames:
                    frame = seg.frames.popleft()
                    pcm = np.frombuffer(frame.data, dtype=np.int16)
                    piece = AGENT_RATE // 100
                    for i in range(0, len(pcm), piece):
                        if seg.cleared:
                            break
                        if started is None:
                            started = time.time()
                            self.on_playback_started(created_at=started)
                        chunk = pcm[i:i + piece]
                        played.append(chunk)
                        pos += len(chunk)
                        wait = started + pos / AGENT_RATE - time.time()
                        if wait > 0:
                            await asyncio.sleep(wait)
                elif seg.flushed:
                    break
                else:
                    self._wake.clear()
                    await self._wake.wait()
            self._segments.popleft()
            if started is not None:
                self.heard.append((started, np.concatenate(played), seg.cleared))
            self.on_playback_finished(playback_position=pos / AGENT_RATE, interrupted=seg.cleared)


class Screen(lk_io.TextOutput):
    """The agent's transcript as a user's screen receives it (after LiveKit's
    TranscriptSynchronizer, which paces it with the audio)."""

    def __init__(self) -> None:
        super().__init__(label="test-screen", next_in_chain=None)
        self.text: list[str] = []

    async def capture_text(self, text: str) -> None:
        self.text.append(text)

    def flush(self) -> None:
        pass


# -- the agents -------------------------------------------------------------------------------


@dataclasses.dataclass
class CallData:
    city: str | None = None
    order_checked: bool = False
    transferred: bool = False


class FrontDesk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the front desk of a restaurant.")

    @function_tool
    async def get_weather(self, context: RunContext[CallData], city: str) -> str:
        """Looks up the weather of a city."""
        context.userdata.city = city
        await asyncio.sleep(0.3)
        return f"sunny, 20 C in {city}"

    @function_tool
    async def lookup_order(self, context: RunContext[CallData], order_id: str) -> str:
        """Looks up an order."""
        context.userdata.order_checked = True
        await asyncio.sleep(0.2)
        raise ToolError(f"order {order_id} not found")

    @function_tool
    async def transfer_to_billing(self, context: RunContext[CallData]) -> Agent:
        """Transfers the caller to billing."""
        context.userdata.transferred = True
        return Billing()


class Billing(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the billing desk.")

    async def on_enter(self) -> None:
        self.session.say("Billing desk here, how can I help?")
