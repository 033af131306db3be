"""The caller of the Pipecat test agent, run as its own process: connects to the agent's
websocket server, streams a microphone in real time (20 ms frames of silence, or espeak-ng
speech when it talks), listens to the bot's audio and speaks its lines: after the greeting,
after the bot's answer, and once while the bot is still talking (a barge-in). Prints one JSON
line per thing it did, with unix times, and exits 0 when done.

    python pipecat_caller.py ws://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time

import numpy as np
import websockets
from pipecat.frames.frames import AudioRawFrame, OutputAudioRawFrame
from pipecat.serializers.protobuf import ProtobufFrameSerializer

from pipecat_agent import CALLER_LINES, speak

RATE = 16000
FRAME = RATE // 50  # 20 ms
#: RMS (16-bit) above which a bot audio frame is speech.
VOICED = 300.0
#: How long the bot must be quiet before the caller takes its turn (s).
QUIET = 1.2
#: How far into the bot's slow answer the caller barges in (s).
BARGE_IN_AFTER = 2.0
WAIT = 30.0


def log(what: str, **kw) -> None:
    print(json.dumps({"t": time.time(), "what": what, **kw}), flush=True)


class Caller:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.serializer = ProtobufFrameSerializer()
        self.pending = bytearray()
        self.bot_voiced_at: float | None = None
        self.bot_started_at: float | None = None
        #: (unix time, s) how late each 20 ms tick of the microphone woke: this process's own
        #: scheduling lag, which delays its stamps of what it hears as much
        self.ticks: collections.deque[tuple[float, float]] = collections.deque(maxlen=1000)

    async def mic(self) -> None:
        """Sends 20 ms of audio every 20 ms, on a steady clock."""
        start = time.monotonic()
        n = 0
        while True:
            chunk = bytes(self.pending[: FRAME * 2])
            del self.pending[: FRAME * 2]
            chunk += bytes(FRAME * 2 - len(chunk))
            # the wire's audio message is what the sender outputs
            frame = OutputAudioRawFrame(audio=chunk, sample_rate=RATE, num_channels=1)
            await self.ws.send(await self.serializer.serialize(frame))
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            self.ticks.append((time.time(), max(0.0, time.monotonic() - (start + n * 0.02))))

    def lag_around(self, t: float) -> float:
        """The most this process lagged (s) around unix time ``t``: the latest wake-up of a
        microphone tick within 300 ms before and 100 ms after."""
        return max((late for at, late in self.ticks if t - 0.3 <= at <= t + 0.1), default=0.0)

    async def ear(self) -> None:
        async for message in self.ws:
            frame = await self.serializer.deserialize(message)
            if isinstance(frame, AudioRawFrame) and frame.audio:
                pcm = np.frombuffer(frame.audio, dtype=np.int16).astype(np.float64)
                if pcm.size and float(np.sqrt(np.mean(pcm * pcm))) >= VOICED:
                    now = time.time()
                    if self.bot_voiced_at is None or now - self.bot_voiced_at > QUIET:
                        self.bot_started_at = now
                    self.bot_voiced_at = now

    async def bot_speech(self, since: float) -> None:
        """Waits until the bot has started speaking after ``since``."""
        deadline = time.time() + WAIT
        while self.bot_started_at is None or self.bot_started_at < since:
            if time.time() > deadline:
                raise TimeoutError("the bot never answered")
            await asyncio.sleep(0.02)

    async def bot_quiet(self) -> None:
        deadline = time.time() + WAIT
        while self.bot_voiced_at is None or time.time() - self.bot_voiced_at < QUIET:
            if time.time() > deadline:
                raise TimeoutError("the bot never stopped speaking")
            await asyncio.sleep(0.02)

    async def say(self, text: str) -> None:
        pcm = speak(text, RATE)
        log("say", text=text, seconds=len(pcm) / 2 / RATE)
        self.pending.extend(pcm)
        while self.pending:
            await asyncio.sleep(0.02)
        log("said", text=text)


async def main(url: str) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        caller = Caller(ws)
        tasks = [asyncio.create_task(caller.mic()), asyncio.create_task(caller.ear())]

        def check(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                log("failed", error=repr(task.exception()))
                sys.exit(2)

        for task in tasks:
            task.add_done_callback(check)
        try:
            t = time.time()
            await caller.bot_speech(0)
            await asyncio.sleep(0.1)
            log("greeting_heard", started=caller.bot_started_at,
                lag=caller.lag_around(caller.bot_started_at))
            await caller.bot_quiet()
            await caller.say(CALLER_LINES[0])
            t = time.time()
            await caller.bot_speech(t)
            await caller.bot_quiet()
            await caller.say(CALLER_LINES[1])
            t = time.time()
            await caller.bot_speech(t)
            await asyncio.sleep(0.1)
            log("slow_answer_heard", started=caller.bot_started_at,
                lag=caller.lag_around(caller.bot_started_at))
            await asyncio.sleep(BARGE_IN_AFTER - 0.1)
            await caller.say(CALLER_LINES[2])
            t = time.time()
            await caller.bot_speech(t)
            await caller.bot_quiet()
            log("done")
        finally:
            for task in tasks:
                task.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
