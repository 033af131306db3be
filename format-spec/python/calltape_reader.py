#!/usr/bin/env python3
"""An independent reader for calltape archives (format 1.x), written from ../SPEC.md.

Python 3.11 standard library plus ``zstandard``. Library use::

    import calltape_reader as ct
    with ct.open_archive("call.calltape") as a:        # reads only the tail (SPEC §8)
        print(a.header["session_id"], len(a.index), "chunks")
        for rec in a.iter_records(lanes=[0]):           # fetches only the chunks it needs
            print(rec.time_ns, rec.kind_name, rec.data)
    ct.dump(open("x.calltape", "rb").read())            # canonical dump, SPEC §10
    for rec in ct.scan_records(data): ...               # unclosed files, forward scan

Every failure is a ``CalltapeError`` whose ``code`` is one of the SPEC §8 codes.

CLI::

    python3 calltape_reader.py dump FILE      # canonical dump as JSON
    python3 calltape_reader.py --check DIR    # compare DIR/*.calltape with DIR/*.json
"""

from __future__ import annotations

import json
import os
import re
import sys
from array import array
from bisect import bisect_left
from itertools import accumulate
from operator import mul
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator

import zstandard

__all__ = [
    "CalltapeError", "crc32c", "dump", "open_archive", "scan_records", "decode_chunk_frame",
    "Archive", "ChunkEntry", "Chunk", "Record", "KIND_NAMES",
]

MAGIC = b"\x89CTAPE\r\n"
MAJOR = 1
PREAMBLE_LEN = 12
FOOTER_LEN = 40
FOOTER_MAGIC = b"CTAPEEND"
FRAME_OVERHEAD = 9            # kind u8 + len u32 + crc u32
CHUNK_HEADER_LEN = 36
RECORD_HEADER_LEN = 14
AUDIO_HEAD_LEN = 16
MAX_FRAME_LEN = 64 << 20
MAX_CHUNK_BODY = 32 << 20
MAX_RECORD_LEN = 16 << 20
MAX_TAIL_RAW = 64 << 20       # inflated summary / chunk index
TAIL_FETCH = 256 * 1024
# SPEC §8 "Limits": what bytes may expand into, checked before the work
MAX_CHUNK_RECORDS = 65_536
MAX_CHUNK_JSON_VALUES = 1 << 20
MAX_SUMMARY_JSON_VALUES = 4 << 20
MAX_SUMMARY_TURNS = 20_000
MIN_CHUNK_FRAME = 9 + 36 + 9   # frame overhead + chunk header + the smallest zstd frame
U64 = (1 << 64) - 1

FRAME_HEADER, FRAME_CHUNK, FRAME_SUMMARY, FRAME_INDEX = 1, 2, 3, 4
KNOWN_ENCODINGS = (0, 1, 2, 3)   # chunk encodings this reader decodes; others are skipped
RICE_BLOCK, RICE_PARTITION, RICE_ESCAPE_Q = 256, 32, 32
MAX_RICE_SAMPLES = 16 << 20   # samples in one encoding-2 or encoding-3 chunk
QLPC_MAX_BLOCK, QLPC_MIN_BLOCK_BITS = 4096, 21   # SPEC §4.4: a block's most samples, fewest bits
KIND_AUDIO = 32
KIND_NAMES = {1: "turn_start", 2: "turn_end", 3: "transcript", 4: "stage_timing",
              5: "tool_call", 6: "state_snapshot", 7: "event", 8: "log", 9: "usage",
              10: "dropped", 11: "session_end", 32: "audio"}


class CalltapeError(Exception):
    """A failed check: ``code`` is a SPEC §8 error code, ``offset`` the byte it applies to."""

    CODES = ("not_an_archive", "unsupported_version", "bad_checksum", "too_large",
             "malformed", "truncated")

    def __init__(self, code: str, offset: int | None, message: str):
        assert code in self.CODES, code
        super().__init__(f"{code} at byte {offset}: {message}" if offset is not None
                         else f"{code}: {message}")
        self.code, self.offset, self.message = code, offset, message


# ---------------------------------------------------------------------------------------
# CRC32C (Castagnoli), table-driven, reflected polynomial 0x82F63B78

def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of ``data``; pass a previous result as ``crc`` to continue it."""
    t = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _u16(b, i): return int.from_bytes(b[i:i + 2], "little")
def _u32(b, i): return int.from_bytes(b[i:i + 4], "little")
def _u64(b, i): return int.from_bytes(b[i:i + 8], "little")


# ---------------------------------------------------------------------------------------
# zstd, bounded: never holds more than `limit` (+ one step) inflated bytes

_ZSTD = zstandard.ZstdDecompressor()
_FEED = 16   # compressed bytes per step: a step inflates to at most ~512 KiB


def _inflate(data: bytes, limit: int, what: str, offset: int) -> bytes:
    """Inflates zstd frames back to back (skippable frames are skipped), as libzstd's
    one-shot decoder does; refuses output over ``limit`` without producing it."""
    out = bytearray()
    data = memoryview(data)
    pos = 0
    while pos < len(data):
        if len(data) - pos < 5:
            raise CalltapeError("malformed", offset, f"{what}: zstd input cut short")
        magic = _u32(data, pos)
        if magic & 0xFFFFFFF0 == 0x184D2A50:          # skippable frame
            if len(data) - pos < 8 or _u32(data, pos + 4) > len(data) - pos - 8:
                raise CalltapeError("malformed", offset, f"{what}: zstd skippable frame cut short")
            pos += 8 + _u32(data, pos + 4)
            continue
        obj = _ZSTD.decompressobj()
        try:
            # A frame that declares its size (every writer's does) inflates in one step:
            # libzstd refuses to produce more than the declared size. Others go in small
            # steps so a bomb is stopped within one step of the limit.
            declared = zstandard.get_frame_parameters(bytes(data[pos:pos + 18])).content_size
            feed = len(data) if declared <= limit - len(out) else _FEED
            while not obj.eof:
                if pos >= len(data):
                    raise CalltapeError("malformed", offset, f"{what}: zstd frame cut short")
                step = bytes(data[pos:pos + feed])
                pos += len(step)
                out += obj.decompress(step)
                if len(out) > limit:
                    raise CalltapeError("malformed", offset,
                                        f"{what}: inflates past {limit} bytes")
        except zstandard.ZstdError as e:
            raise CalltapeError("malformed", offset, f"{what}: zstd: {e}") from None
        pos -= len(obj.unused_data)
    return bytes(out)


# ---------------------------------------------------------------------------------------
# JSON, as strict as the reference reader (serde_json): UTF-8, no NaN/Infinity, finite
# numbers, no lone surrogates, at most 127 levels of nesting; integers outside i64/u64
# become floats.

class _Obj(dict):
    """A JSON object that remembers which keys it saw twice (last value wins)."""
    dups: frozenset = frozenset()


def _pairs(pairs):
    d = _Obj(pairs)
    if len(d) != len(pairs):
        seen, dups = set(), set()
        for k, _ in pairs:
            (dups if k in seen else seen).add(k)
        d.dups = frozenset(dups)
    return d


def _bad_constant(s):
    raise ValueError(f"{s} is not JSON")


def _int(s):
    if s == "-0":
        return -0.0                                  # serde_json reads -0 as a float
    v = int(s)
    return v if -(1 << 63) <= v <= U64 else float(s)


_SURROGATE = re.compile("[\ud800-\udfff]")
_INF = (float("inf"), float("-inf"))


def _strict(v, depth=1) -> bool:
    """What serde_json accepts as a value: finite numbers, no lone surrogates, at most 127
    levels of nesting (``depth`` is the level of ``v`` itself)."""
    if isinstance(v, str):
        return not _SURROGATE.search(v)
    if isinstance(v, float):
        return v not in _INF
    if isinstance(v, dict):
        return depth <= 127 and all(not _SURROGATE.search(k) and _strict(x, depth + 1)
                                    for k, x in v.items())
    if isinstance(v, list):
        return depth <= 127 and all(_strict(x, depth + 1) for x in v)
    return True


def _parse(raw, what: str, offset: int):
    """JSON syntax (RFC 8259, UTF-8, no NaN/Infinity); numbers out of range parse as inf."""
    try:
        # invalid UTF-8 becomes lone surrogates: rejected by _strict, but (as in serde_json)
        # tolerated inside fields a record type does not know
        return json.loads(bytes(raw).decode("utf-8", "surrogateescape"), object_pairs_hook=_pairs,
                          parse_constant=_bad_constant, parse_int=_int)
    except (ValueError, RecursionError) as e:    # JSONDecodeError, UnicodeDecodeError too
        raise CalltapeError("malformed", offset, f"{what}: bad JSON: {e}") from None


def _json(raw, what: str, offset: int):
    """A JSON value exactly as strict as the reference reader (serde_json)."""
    v = _parse(raw, what, offset)
    if not _strict(v):
        raise CalltapeError("malformed", offset,
                            f"{what}: bad JSON: number out of range, lone surrogate or too deep")
    return v


# Field types of the JSON records (SPEC §7), in declaration order, as the reference reader
# checks them: (name, type, required). "?x" also accepts null. A payload must be an object.
_T = {
    "u32": lambda v: type(v) is int and 0 <= v <= 0xFFFFFFFF,
    "u64": lambda v: type(v) is int and 0 <= v <= U64,
    "f64": lambda v: type(v) in (int, float),
    "bool": lambda v: type(v) is bool,
    "str": lambda v: type(v) is str,
    "map": lambda v: type(v) is _Obj,
    "any": lambda v: True,
    # a unit enum: a string, or serde's {"variant": null} form
    "enum": lambda v: type(v) is str or (type(v) is _Obj and len(v) == 1
                                          and next(iter(v.values())) is None),
}
_R, _O = True, False
_SCHEMA = {
    1: [("turn", "u32", _R), ("speaker", "enum", _R), ("attributes", "map", _O)],
    2: [("turn", "u32", _R), ("speaker", "?enum", _O), ("attributes", "map", _O)],
    3: [("turn", "?u32", _O), ("speaker", "enum", _R), ("text", "str", _R),
        ("is_final", "bool", _O), ("confidence", "?f64", _O), ("language", "?str", _O),
        ("interrupted", "bool", _O), ("heard_text", "?str", _O), ("start_ns", "?u64", _O),
        ("end_ns", "?u64", _O), ("attributes", "map", _O)],
    4: [("turn", "?u32", _O), ("stage", "str", _R), ("start_ns", "u64", _R),
        ("end_ns", "u64", _R), ("ttft_ns", "?u64", _O), ("ttfb_ns", "?u64", _O),
        ("prompt_tokens", "?u64", _O), ("completion_tokens", "?u64", _O),
        ("characters", "?u64", _O), ("model", "?str", _O), ("provider", "?str", _O),
        ("cancelled", "bool", _O), ("attributes", "map", _O)],
    5: [("turn", "?u32", _O), ("call_id", "?str", _O), ("name", "str", _R),
        ("arguments", "any", _O), ("output", "any", _O), ("is_error", "bool", _O),
        ("start_ns", "u64", _R), ("end_ns", "u64", _R), ("attributes", "map", _O)],
    6: [("turn", "?u32", _O), ("scope", "str", _R), ("value", "any", _R)],
    7: [("turn", "?u32", _O), ("name", "str", _R), ("attributes", "map", _O)],
    8: [("turn", "?u32", _O), ("level", "str", _R), ("target", "str", _O),
        ("message", "str", _R), ("fields", "map", _O)],
    9: [("turn", "?u32", _O), ("prompt_tokens", "u64", _O), ("completion_tokens", "u64", _O),
        ("cached_tokens", "u64", _O), ("stt_audio_seconds", "f64", _O),
        ("tts_audio_seconds", "f64", _O), ("tts_characters", "u64", _O),
        ("model", "?str", _O), ("provider", "?str", _O)],
    10: [("what", "str", _R), ("count", "u64", _R), ("unit", "str", _R), ("reason", "str", _O)],
    11: [("reason", "str", _R), ("outcome", "?str", _O)],
}


def _type_ok(t: str, v) -> bool:
    if t.startswith("?"):
        return v is None or (_T[t[1:]](v) and _strict(v, 2))
    return _T[t](v) and _strict(v, 2)


def _check_record_json(kind: int, v, offset: int) -> None:
    schema = _SCHEMA[kind]

    def bad(why):
        raise CalltapeError("malformed", offset, f"{KIND_NAMES[kind]} record: {why}")

    if type(v) is not _Obj:
        bad("payload is not a JSON object")
    if not _strict(v):
        # the whole payload is validated, unknown fields too (as the reference reader does)
        bad("bad JSON: number out of range, lone surrogate or too deep")
    if any(_SURROGATE.search(k) for k in v):
        bad("lone surrogate in a field name")
    for name, t, required in schema:
        if name not in v:
            if required:
                bad(f"missing field {name}")
        elif not _type_ok(t, v[name]):
            bad(f"field {name} has the wrong type")


# ---------------------------------------------------------------------------------------
# Frames, footer, chunks, index

def _check_preamble(b: bytes) -> None:
    if len(b) < PREAMBLE_LEN:
        if MAGIC.startswith(bytes(b[:8])):
            raise CalltapeError("truncated", len(b), "file ends inside the preamble")
        raise CalltapeError("not_an_archive", 0, "no calltape magic")
    if bytes(b[:8]) != MAGIC:
        raise CalltapeError("not_an_archive", 0, "no calltape magic")
    if b[8] != MAJOR:
        raise CalltapeError("unsupported_version", 0, f"format version {b[8]}.{b[9]}")


def _decode_frame(buf, pos: int, offset: int):
    """The frame at ``buf[pos:]`` (file offset ``offset``): (kind, payload view, total length),
    or None if ``buf`` ends before it does."""
    if len(buf) - pos < 5:
        return None
    kind, n = buf[pos], _u32(buf, pos + 1)
    if kind == 0:
        raise CalltapeError("malformed", offset, "frame kind 0 (zeroed or unwritten bytes)")
    if n > MAX_FRAME_LEN:
        raise CalltapeError("too_large", offset, f"frame of {n} bytes")
    if len(buf) - pos < n + FRAME_OVERHEAD:
        return None
    end = pos + 5 + n
    if crc32c(buf[pos:end]) != _u32(buf, end):
        raise CalltapeError("bad_checksum", offset, f"frame kind {kind}")
    return kind, buf[pos + 5:end], n + FRAME_OVERHEAD


def _decode_footer(b, offset: int) -> dict:
    if crc32c(b[:28]) != _u32(b, 28):
        raise CalltapeError("bad_checksum", offset, "footer")
    f = {"summary_offset": _u64(b, 0), "index_offset": _u64(b, 8),
         "chunk_count": _u32(b, 16), "flags": _u32(b, 20)}
    if not PREAMBLE_LEN <= f["summary_offset"] < f["index_offset"] < offset:
        raise CalltapeError("malformed", offset, "footer offsets do not fit the file")
    return f


@dataclass
class Record:
    time_ns: int
    kind: int
    #: JSON kinds: the payload as stored; audio: {track, channels, first_sample, samples}
    #: with ``samples`` an ``array('h')``; unknown kinds: {payload_hex}.
    data: Any
    payload: bytes = field(repr=False, default=b"")

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, "unknown")


@dataclass
class Chunk:
    offset: int
    lane: int
    encoding: int
    start_ns: int
    end_ns: int
    record_count: int
    uncompressed_len: int
    first_turn: int
    last_turn: int
    records: list[Record]
    #: the encoding is unknown to this reader: the body was not read, ``records`` is empty
    skipped: bool = False


def _decode_planes(planes: bytes, count: int, channels: int) -> array:
    """Inverts pcm16_lpc2 (SPEC §4.2): byte planes -> zigzag residuals -> order-2 predictor."""
    inter = bytearray(2 * count)
    inter[0::2] = planes[:count]
    inter[1::2] = planes[count:]
    z = array("H")
    z.frombytes(bytes(inter))
    if sys.byteorder == "big":
        z.byteswap()
    x = array("H", bytes(2 * count))
    for c in range(channels):
        a = b = 0                                   # x[i-C], x[i-2C]
        for i in range(c, count, channels):
            zi = z[i]
            v = (((zi >> 1) ^ -(zi & 1)) + 2 * a - b) & 0xFFFF
            x[i] = v
            b, a = a, v
    if sys.byteorder == "big":
        x.byteswap()
    out = array("h")
    out.frombytes(x.tobytes())
    if sys.byteorder == "big":
        out.byteswap()
    return out


def _integrate(residuals: list[int], order: int, history: tuple) -> list[int]:
    """The samples whose order-th differences are ``residuals``, after ``history`` (x[n-1],
    x[n-2], ...): the fixed predictors of SPEC §4.3 (x[n] = pred + residual, pred the
    polynomial extrapolation of the last ``order`` samples), unwrapped; mod 2^16 it is the
    same as wrapping at every step, since the predictors are integer linear."""
    seq = list(history[:order][::-1])              # oldest first
    lasts = []                                     # last value of each difference level
    for _ in range(order):
        lasts.append(seq[-1])
        seq = [b - a for a, b in zip(seq, seq[1:])]
    out = residuals
    for last in reversed(lasts):
        out = list(accumulate(out, initial=last))[1:]
    return out


def _decode_rice(data: bytes, count: int, channels: int, offset: int) -> array:
    """Inverts pcm16_rice (SPEC §4.3): per channel, blocks of a 3-bit order and partitions of
    a 4-bit Rice parameter and Rice-coded zigzagged residuals, MSB first."""
    def bad(why):
        return CalltapeError("malformed", offset, f"pcm16_rice: {why}")
    c = max(channels, 1)
    if count % c:
        raise bad("sample count is not a multiple of the channels")
    if count > MAX_RICE_SAMPLES:
        raise bad("more samples than a chunk may hold")
    if count > 8 * len(data):
        raise bad("bitstream shorter than one bit per sample")
    end = 8 * len(data)
    # the bits as a string of '0'/'1'; reads past the end see zeros (checked afterwards)
    bits = (format(int.from_bytes(data, "big"), f"0{end}b") if data else "") + "0" * 64
    out = array("h", bytes(2 * count))
    frames, pos = count // c, 0
    # Partitions repeated bit for bit (what compresses best, so what a small hostile file
    # holds most of) are decoded once: (k, samples, the bits they may span) -> (residuals,
    # bits used, the samples they give at order 0).
    window = RICE_ESCAPE_Q + 16
    parts: dict = {}

    def partition(at: int, k: int, n: int):
        key = (k, n, bits[at:at + n * window])
        hit = parts.get(key)
        if hit is None:
            rs, p0 = [], at
            for _ in range(n):
                one = bits.find("1", at, at + RICE_ESCAPE_Q)
                if one < 0:                         # escape: 32 zeros, z in 16 bits
                    z = int(bits[at + RICE_ESCAPE_Q:at + RICE_ESCAPE_Q + 16], 2)
                    at += RICE_ESCAPE_Q + 16
                else:
                    z = ((one - at) << k) | (int(bits[one + 1:one + 1 + k], 2) if k else 0)
                    at = one + 1 + k
                    if z > 0xFFFF:
                        raise bad("Rice residual over 16 bits")
                if at > end:                        # (the reference reader checks this
                    raise bad("bitstream cut short")   # per partition: same outcome)
                rs.append((z >> 1) ^ -(z & 1))
            hit = (rs, at - p0, array("h", [((r + 0x8000) & 0xFFFF) - 0x8000 for r in rs]))
            parts[key] = hit
        return hit

    for ch in range(c):
        h1 = h2 = h3 = h4 = 0                       # x[n-1] .. x[n-4] of this channel
        for start in range(0, frames, RICE_BLOCK):
            block_end = min(start + RICE_BLOCK, frames)
            order = int(bits[pos:pos + 3], 2)
            pos += 3
            for p in range(start, block_end, RICE_PARTITION):
                k = int(bits[pos:pos + 4], 2)
                pos += 4
                if order > 4:
                    raise bad("predictor order over 4")
                n = min(p + RICE_PARTITION, block_end) - p
                residuals, used, plain = partition(pos, k, n)
                pos += used
                if pos > end:
                    raise bad("bitstream cut short")
                if order == 0:
                    xs = plain
                else:
                    xs = array("h", [((x + 0x8000) & 0xFFFF) - 0x8000
                                     for x in _integrate(residuals, order, (h1, h2, h3, h4))])
                out[p * c + ch:(p + n) * c:c] = xs
                h1, h2, h3, h4 = ([h4, h3, h2, h1] + list(xs[-4:]))[:-5:-1]
        pad = -pos % 8
        if "1" in bits[pos:pos + pad]:
            raise bad("non-zero padding bits")
        pos += pad
    if pos != end:
        raise bad("bytes left over after the last channel")
    return out


def _g711_grids():
    """The μ-law and A-law grids of SPEC §4.4: the distinct values of the 256 codes, ascending."""
    def ulaw(u):
        v = ~u & 0xFF
        t = (((v & 15) << 3) + 132) << ((v >> 4) & 7)
        return 132 - t if v & 128 else t - 132

    def alaw(a):
        v = a ^ 0x55
        t, seg = (v & 15) << 4, (v >> 4) & 7
        t = t + 8 if seg == 0 else t + 264 if seg == 1 else (t + 264) << (seg - 1)
        return t if v & 128 else -t
    return {1: sorted({ulaw(c) for c in range(256)}), 2: sorted({alaw(c) for c in range(256)})}


G711_GRIDS = _g711_grids()
FIXED_PREDICTORS = ([], [1], [2, -1], [3, -3, 1], [4, -6, 4, -1])   # c[t] times x[j-1-t]


def _near(grid, p: int) -> int:
    """Index of the grid value nearest to p clamped to i16, the lower on a tie (SPEC §4.4)."""
    p = min(max(p, -32768), 32767)
    i = bisect_left(grid, p)
    if i == 0:
        return 0
    if i == len(grid):
        return i - 1
    return i if grid[i] - p < p - grid[i - 1] else i - 1


def _decode_qlpc(data: bytes, count: int, channels: int, offset: int) -> array:
    """Inverts pcm16_qlpc (SPEC §4.4): per channel, blocks that are a constant, or a fixed or
    quantized linear predictor with partitioned Rice residuals, linear or in G.711 grid steps."""
    def bad(why):
        return CalltapeError("malformed", offset, f"pcm16_qlpc: {why}")
    c = max(channels, 1)
    if count % c:
        raise bad("sample count is not a multiple of the channels")
    if count > MAX_RICE_SAMPLES:
        raise bad("more samples than a chunk may hold")
    if count * QLPC_MIN_BLOCK_BITS > QLPC_MAX_BLOCK * 8 * len(data):
        raise bad("bitstream shorter than its blocks")
    end = 8 * len(data)
    bits = format(int.from_bytes(data, "big"), f"0{end}b") if data else ""
    pos = 0

    def take(n: int) -> int:                        # reads past the end see zero bits
        nonlocal pos
        v = int(bits[pos:pos + n].ljust(n, "0"), 2)
        pos += n
        return v

    def residual(k: int) -> int:
        nonlocal pos
        one = bits.find("1", pos, pos + RICE_ESCAPE_Q)
        if one < 0:                                 # escape: 32 zeros, z in 16 bits
            pos += RICE_ESCAPE_Q
            return take(16)
        z = ((one - pos) << k) | (int(bits[one + 1:one + 1 + k].ljust(k, "0"), 2) if k else 0)
        pos = one + 1 + k
        if z > 0xFFFF:
            raise bad("Rice residual over 16 bits")
        return z

    out = array("h", bytes(2 * count))
    frames = count // c
    for ch in range(c):
        x = [0] * 32                                # history: zero before the chunk
        while len(x) - 32 < frames:
            size = take(3)
            if size > 4:
                raise bad("block size code over 4")
            n = min(256 << size, frames - (len(x) - 32))
            kind = take(2)
            if kind == 0:
                v = take(16)
                x.extend([v - 65536 if v >= 32768 else v] * n)
            elif kind == 3:
                raise bad("block kind 3")
            else:
                grid_code = take(2)
                if grid_code == 3:
                    raise bad("lattice code 3")
                grid = G711_GRIDS.get(grid_code)
                if kind == 1:
                    order = take(3)
                    if order > 4:
                        raise bad("fixed predictor order over 4")
                    coefs, shift = FIXED_PREDICTORS[order], 0
                else:
                    order = take(5) + 1
                    prec = take(4) + 1
                    if prec > 15:
                        raise bad("coefficient precision over 15 bits")
                    shift = take(4)
                    coefs = []
                    for _ in range(order):
                        v = take(prec)
                        coefs.append(v - (1 << prec) if v >> (prec - 1) else v)
                oldest_first = coefs[::-1]
                po = take(4)
                if po > 8:
                    raise bad("partition order over 8")
                for j in range(1 << po):
                    k = take(4)
                    for _ in range((j + 1) * n // (1 << po) - j * n // (1 << po)):
                        z = residual(k)
                        p = sum(map(mul, oldest_first, x[len(x) - order:])) if order else 0
                        if kind == 2:               # wrapping 32-bit sum, arithmetic shift
                            p = (((p + 0x80000000) & 0xFFFFFFFF) - 0x80000000) >> shift
                        d = (z >> 1) ^ -(z & 1)
                        if grid is None:
                            x.append(((p + d + 0x8000) & 0xFFFF) - 0x8000)
                        else:
                            i = _near(grid, p) + d
                            if not 0 <= i < len(grid):
                                raise bad("grid index off the grid")
                            x.append(grid[i])
                    if pos > end:
                        raise bad("bitstream cut short")
            if pos > end:
                raise bad("bitstream cut short")
        pad = -pos % 8
        if "1" in bits[pos:pos + pad]:
            raise bad("non-zero padding bits")
        pos += pad
        out[ch::c] = array("h", x[32:])
    if pos != end:
        raise bad("bytes left over after the last channel")
    return out


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _json_values(raw) -> int:
    """An upper bound on the JSON values ``raw`` parses into (SPEC §8 *Limits*): one per
    ``{ [ , :`` outside strings, plus one. Counted with C-speed string operations."""
    raw = bytes(raw)
    if sum(raw.count(c) for c in b"{[,:") == 0:
        return 1
    bare = _STRINGS.sub(b"", raw)
    return 1 + sum(bare.count(c) for c in b"{[,:")


def _checked_json(kind: int, payload: bytes, offset: int):
    """Like the reference reader: the record's fields must be valid for its kind; unknown
    fields need only be JSON syntax. The payload as a JSON value, or None if it is not one
    serde_json accepts (e.g. 1e400 in an unknown field)."""
    data = _parse(payload, KIND_NAMES[kind] + " record", offset)
    _check_record_json(kind, data, offset)
    return data if _strict(data) else None


def _decode_records(body, planes, offset: int, rice: bool = False,
                    max_records: int = MAX_CHUNK_RECORDS, qlpc: bool = False) -> list[Record]:
    """``rice``: the samples are a bitstream (encodings 2 and 3), ``qlpc`` the one of encoding 3."""
    if planes is not None and not rice and len(planes) % 2:
        raise CalltapeError("malformed", offset, "odd sample plane length")
    out: list[Record] = []
    heads = []                                      # (record, sample count, channels)
    json_values = 0
    parsed: dict = {}                               # (kind, payload) -> (values, data)
    pos = 0
    while pos < len(body):
        if len(out) == max_records:
            raise CalltapeError("malformed", offset, "holds more records than the "
                                                     f"{max_records} its header says")
        if len(body) - pos < RECORD_HEADER_LEN:
            raise CalltapeError("malformed", offset, "record header cut short")
        kind, time_ns, n = _u16(body, pos), _u64(body, pos + 2), _u32(body, pos + 10)
        pos += RECORD_HEADER_LEN
        if n > len(body) - pos:
            raise CalltapeError("malformed", offset, f"record of {n} bytes overruns the body")
        if n > MAX_RECORD_LEN:       # SPEC §4.1; the Rust reader does not check this (yet)
            raise CalltapeError("too_large", offset, f"record of {n} bytes")
        payload = bytes(body[pos:pos + n])
        pos += n
        if kind in _SCHEMA:
            # Records repeated byte for byte (what compresses best, so what a small hostile
            # file holds most of) are parsed and checked once per chunk and share `data`:
            # treat a record's data as read-only.
            seen = parsed.get((kind, payload))
            values = seen[0] if seen else _json_values(payload)
            json_values += values
            if json_values > MAX_CHUNK_JSON_VALUES:      # counted before parsing
                raise CalltapeError("too_large", offset, f"{json_values} JSON values in a chunk")
            if seen is None:
                seen = (values, _checked_json(kind, payload, offset))
                parsed[(kind, payload)] = seen
            data = seen[1]
        elif kind == KIND_AUDIO:
            if n < AUDIO_HEAD_LEN:
                raise CalltapeError("malformed", offset, "audio record head cut short")
            channels = max(payload[2], 1)
            count = _u32(payload, 12) * channels
            data = {"track": _u16(payload, 0), "channels": channels,
                    "first_sample": _u64(payload, 4), "samples": None}
            if planes is not None:
                heads.append((data, count, channels))
            else:
                if n - AUDIO_HEAD_LEN != 2 * count:
                    raise CalltapeError("malformed", offset,
                                        "inline audio length does not match its frame count")
                s = array("h")
                s.frombytes(payload[AUDIO_HEAD_LEN:])
                if sys.byteorder == "big":
                    s.byteswap()
                data["samples"] = s
        else:
            data = parsed.get((kind, payload))
            if data is None:
                data = parsed[(kind, payload)] = {"payload_hex": payload.hex()}
        out.append(Record(time_ns, kind, data, payload))
    if planes is not None and rice:
        codec = "pcm16_qlpc" if qlpc else "pcm16_rice"
        channels = heads[0][2] if heads else 1
        if any(h[2] != channels for h in heads):
            raise CalltapeError("malformed", offset,
                                f"{codec} audio records differ in channels")
        wanted = sum(h[1] for h in heads)
        if wanted > MAX_RICE_SAMPLES:
            raise CalltapeError("too_large", offset, f"{wanted} audio samples in one chunk")
        decode = _decode_qlpc if qlpc else _decode_rice
        samples = decode(bytes(planes), wanted, channels, offset)
        at = 0
        for data, count, _ in heads:
            data["samples"] = samples[at:at + count]
            at += count
    elif planes is not None:
        total = len(planes) // 2
        wanted = sum(h[1] for h in heads)
        if wanted != total:
            raise CalltapeError("malformed", offset,
                                f"audio records want {wanted} samples, planes hold {total}")
        samples = _decode_planes(bytes(planes), total, heads[0][2] if heads else 1)
        at = 0
        for data, count, _ in heads:
            data["samples"] = samples[at:at + count]
            at += count
    return out


def _decode_chunk(payload, offset: int) -> Chunk:
    """A chunk frame's payload (SPEC §4), fully checked."""
    if len(payload) < CHUNK_HEADER_LEN:
        raise CalltapeError("malformed", offset, "payload shorter than the 36-byte chunk header")
    p = payload
    c = Chunk(offset, _u16(p, 0), p[2], _u64(p, 4), _u64(p, 12), _u32(p, 20), _u32(p, 24),
              _u32(p, 28), _u32(p, 32), [])
    if c.encoding not in KNOWN_ENCODINGS:
        # SPEC §4: a chunk of an encoding this reader does not know is skipped, body unread
        c.skipped = True
        return c
    if c.record_count > MAX_CHUNK_RECORDS:
        raise CalltapeError("too_large", offset, f"chunk of {c.record_count} records")
    if c.uncompressed_len > MAX_CHUNK_BODY:
        raise CalltapeError("too_large", offset, f"chunk body of {c.uncompressed_len} bytes")
    body = _inflate(p[CHUNK_HEADER_LEN:], c.uncompressed_len, "chunk", offset)
    if len(body) != c.uncompressed_len:
        raise CalltapeError("malformed", offset, "chunk body inflates to another length")
    if c.encoding == 0:
        c.records = _decode_records(body, None, offset, max_records=c.record_count)
    else:                                   # 1 pcm16_lpc2, 2 pcm16_rice, 3 pcm16_qlpc
        if len(body) < 4:
            raise CalltapeError("malformed", offset, "audio body too short")
        n = _u32(body, 0)
        if n > len(body) - 4:
            raise CalltapeError("malformed", offset, "audio records section overruns the body")
        c.records = _decode_records(body[4:4 + n], body[4 + n:], offset,
                                    rice=c.encoding in (2, 3), qlpc=c.encoding == 3,
                                    max_records=c.record_count)
    if len(c.records) != c.record_count:
        raise CalltapeError("malformed", offset,
                            f"holds {len(c.records)} records, header says {c.record_count}")
    return c


def _summary_json(raw: bytes, offset: int):
    """The summary's JSON within SPEC §8's limits (values counted before parsing, turns)."""
    values = _json_values(raw)
    if values > MAX_SUMMARY_JSON_VALUES:
        raise CalltapeError("too_large", offset, f"summary of {values} JSON values")
    summary = _json(raw, "summary", offset)
    turns = summary.get("turns") if isinstance(summary, dict) else None
    if isinstance(turns, list) and len(turns) > MAX_SUMMARY_TURNS:
        raise CalltapeError("malformed", offset, f"summary lists {len(turns)} turns")
    return summary


def _unpack_tail(payload, what: str, offset: int) -> bytes:
    if len(payload) < 4:
        raise CalltapeError("malformed", offset, f"{what} shorter than its length prefix")
    n = _u32(payload, 0)
    if n > MAX_TAIL_RAW:
        raise CalltapeError("too_large", offset, f"{what} of {n} bytes")
    raw = _inflate(payload[4:], n, what, offset)
    if len(raw) != n:
        raise CalltapeError("malformed", offset, f"{what} inflates to another length")
    return raw


@dataclass(frozen=True)
class ChunkEntry:
    lane: int
    start_ns: int
    end_ns: int
    offset: int
    compressed_len: int
    uncompressed_len: int
    record_count: int
    first_turn: int
    last_turn: int

    @property
    def frame_len(self) -> int:
        return self.compressed_len + CHUNK_HEADER_LEN + FRAME_OVERHEAD

    def overlaps(self, from_ns: int, to_ns: int) -> bool:
        return self.start_ns <= to_ns and self.end_ns >= from_ns


def _unzigzag(u: int) -> int:
    return (u >> 1) ^ -(u & 1)


def _max_chunks(data_len: int) -> int:
    """The most chunk frames (each at least 54 bytes) a data section can hold (SPEC §8)."""
    return max(data_len, 0) // MIN_CHUNK_FRAME


def _decode_index(raw: bytes, offset: int, max_count: int) -> list[ChunkEntry]:
    pos = 0

    def varint() -> int:
        nonlocal pos
        v = 0
        for shift in range(0, 70, 7):
            if pos >= len(raw):
                raise CalltapeError("malformed", offset, "chunk index entries cut short")
            b = raw[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v & U64       # bits past 64 in a 10th byte are dropped
        raise CalltapeError("malformed", offset, "varint longer than 10 bytes")

    def u32() -> int:
        v = varint()
        if v > 0xFFFFFFFF:
            raise CalltapeError("malformed", offset, "value does not fit 32 bits")
        return v

    count = varint()
    if count > len(raw) // 9:
        raise CalltapeError("malformed", offset, f"claims {count} entries in {len(raw)} bytes")
    if count > max_count:
        raise CalltapeError("malformed", offset, f"claims {count} chunks, more than the "
                                                 f"{max_count} the data section can hold")
    out, prev_start, prev_off = [], 0, 0
    for _ in range(count):
        lane = varint()
        if lane > 0xFFFF:
            raise CalltapeError("malformed", offset, "lane over 65535")
        start = (prev_start + _unzigzag(varint())) & U64
        end = (start + varint()) & U64
        off = (prev_off + _unzigzag(varint())) & U64
        clen, ulen, rcount, first = u32(), u32(), u32(), u32()
        last = first + _unzigzag(varint())
        if not 0 <= last <= 0xFFFFFFFF:
            raise CalltapeError("malformed", offset, "turn range out of bounds")
        out.append(ChunkEntry(lane, start, end, off, clen, ulen, rcount, first, last))
        prev_start, prev_off = start, off
    return out


# ---------------------------------------------------------------------------------------
# Forward scan and the canonical dump (SPEC §8 scanning, §10)

def _units(data: bytes) -> Iterator[tuple]:
    """Yields ("frame", offset, kind, payload) and ("footer", offset, footer) in file order,
    then ("end", offset, None) or ("damage", offset, CalltapeError)."""
    buf = memoryview(data)
    if not buf:
        yield ("end", 0, None)        # an empty input is not damaged (as the reference reader)
        return
    try:
        _check_preamble(buf)
    except CalltapeError as e:
        yield ("damage", 0, e)
        return
    pos, after_index = PREAMBLE_LEN, False
    while pos < len(buf):
        rest = len(buf) - pos
        try:
            if after_index and rest >= FOOTER_LEN and buf[pos + 32:pos + 40] == FOOTER_MAGIC:
                footer = _decode_footer(buf[pos:pos + FOOTER_LEN], pos)
                yield ("footer", pos, footer)
                pos += FOOTER_LEN
                if pos < len(buf):
                    yield ("damage", pos, CalltapeError("truncated", pos,
                                                        "bytes after the footer"))
                    return
                break
            frame = None if after_index and rest < FOOTER_LEN else _decode_frame(buf, pos, pos)
        except CalltapeError as e:
            yield ("damage", pos, e)
            return
        if frame is None:
            yield ("damage", pos, CalltapeError("truncated", pos, "file ends inside a frame"))
            return
        kind, payload, total = frame
        yield ("frame", pos, kind, payload)
        pos += total
        after_index = kind == FRAME_INDEX
    yield ("end", pos, None)


def _index_json(entries: list[ChunkEntry]) -> list[dict]:
    return [dict(e.__dict__) for e in entries]


def _record_json(r: Record) -> dict:
    data = r.data
    if r.kind == KIND_AUDIO:
        data = dict(data, samples=list(data["samples"]))
    return {"time_ns": r.time_ns, "kind": r.kind, "kind_name": r.kind_name, "data": data}


def _chunk_json(c: Chunk) -> dict:
    d = {k: v for k, v in c.__dict__.items() if k not in ("records", "skipped")}
    d["records"] = [_record_json(r) for r in c.records]
    if c.skipped:                                   # only skipped chunks say so (SPEC §10)
        d["skipped"] = True
    return d


def dump(data: bytes) -> dict:
    """The canonical dump of SPEC §10. Never raises: damage ends it with {offset, error}."""
    out = {"header": None, "chunks": [], "other_frames": [], "summary": None,
           "index": None, "footer": None, "damage": None}
    for unit in _units(data):
        tag, offset = unit[0], unit[1]
        try:
            if tag == "frame":
                kind, payload = unit[2], unit[3]
                if kind == FRAME_HEADER:
                    out["header"] = _json(payload, "header", offset)
                elif kind == FRAME_CHUNK:
                    out["chunks"].append(_chunk_json(_decode_chunk(payload, offset)))
                elif kind == FRAME_SUMMARY:
                    try:
                        out["summary"] = _summary_json(_unpack_tail(payload, "summary", offset),
                                                       offset)
                    except CalltapeError as e:       # every summary failure is `malformed`
                        raise CalltapeError("malformed", offset, e.message) from None
                elif kind == FRAME_INDEX:
                    out["index"] = _index_json(
                        _decode_index(_unpack_tail(payload, "chunk index", offset), offset,
                                      _max_chunks(offset)))
                else:
                    out["other_frames"].append(
                        {"offset": offset, "kind": kind, "payload_hex": bytes(payload).hex()})
            elif tag == "footer":
                out["footer"] = unit[2]
            elif tag == "damage":
                out["damage"] = {"offset": offset, "error": unit[2].code}
        except CalltapeError as e:
            out["damage"] = {"offset": offset, "error": e.code}
            break
    return out


def scan_records(data: bytes, lanes: Iterable[int] | None = None,
                 strict: bool = False) -> Iterator[Record]:
    """Records of every chunk in file order, by scanning forward (works on unclosed files).
    Stops quietly at the first damage, or raises it if ``strict``."""
    lanes = None if lanes is None else set(lanes)
    for unit in _units(data):
        if unit[0] == "frame" and unit[2] == FRAME_CHUNK:
            payload = unit[3]
            if lanes is not None and len(payload) >= 2 and _u16(payload, 0) not in lanes:
                continue
            try:
                c = _decode_chunk(payload, unit[1])
            except CalltapeError:
                if strict:
                    raise
                return
            yield from c.records
        elif unit[0] == "damage" and strict:
            raise unit[2]


# ---------------------------------------------------------------------------------------
# Opening a closed archive from its tail (SPEC §8)

def decode_chunk_frame(entry: ChunkEntry, frame: bytes) -> Chunk:
    """Decodes the bytes of ``entry.offset .. entry.offset + entry.frame_len``."""
    f = _decode_frame(frame, 0, entry.offset)
    if f is None:
        raise CalltapeError("truncated", entry.offset, "chunk frame cut short")
    if f[0] != FRAME_CHUNK:
        raise CalltapeError("malformed", entry.offset, f"the index points at a kind {f[0]} frame")
    c = _decode_chunk(f[1], entry.offset)
    if c.lane != entry.lane:
        raise CalltapeError("malformed", entry.offset, "lane differs from the index entry")
    return c


class Archive:
    """A closed archive opened from its tail: ``summary``, ``index``, ``footer``, ``header``.
    Chunks are read on demand from the underlying binary file."""

    def __init__(self, f: BinaryIO, file_len: int, summary: dict, index: list[ChunkEntry],
                 footer: dict, owns: bool):
        self._f, self._owns = f, owns
        self.file_len, self.summary, self.index, self.footer = file_len, summary, index, footer

    @property
    def header(self) -> dict:
        return self.summary["header"]

    @property
    def recovered(self) -> bool:
        return bool(self.footer["flags"] & 1)

    def close(self) -> None:
        if self._owns:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def chunks_in(self, lane: int, from_ns: int = 0, to_ns: int = U64) -> list[ChunkEntry]:
        return [e for e in self.index if e.lane == lane and e.overlaps(from_ns, to_ns)]

    def chunks_for_turn(self, turn: int) -> list[ChunkEntry]:
        return [e for e in self.index
                if e.lane == 0 and e.first_turn and e.first_turn <= turn <= e.last_turn]

    def read_chunk(self, entry: ChunkEntry) -> Chunk:
        return decode_chunk_frame(entry, _read_range(self._f, entry.offset,
                                                     entry.offset + entry.frame_len))

    def iter_records(self, lanes: Iterable[int] | None = None, from_ns: int = 0,
                     to_ns: int = U64, turn: int | None = None) -> Iterator[Record]:
        """Records of the chunks of ``lanes`` (all if None) overlapping [from_ns, to_ns]
        (or naming ``turn``), chunk by chunk in file order; records outside the range
        are dropped."""
        lanes = None if lanes is None else set(lanes)
        entries = self.chunks_for_turn(turn) if turn is not None else self.index
        for e in entries:
            if (lanes is None or e.lane in lanes) and e.overlaps(from_ns, to_ns):
                for r in self.read_chunk(e).records:
                    if from_ns <= r.time_ns <= to_ns or r.kind == KIND_AUDIO:
                        yield r


def _read_range(f: BinaryIO, start: int, end: int) -> bytes:
    if end - start > 2 * MAX_FRAME_LEN + 64:
        raise CalltapeError("too_large", start, f"read of {end - start} bytes")
    f.seek(start)
    b = f.read(max(0, end - start))
    if len(b) < end - start:
        raise CalltapeError("truncated", start + len(b), "file ends early")
    return b


def open_archive(source: str | os.PathLike | BinaryIO | bytes) -> Archive:
    """Opens a closed archive reading only its tail: the last 256 KiB, plus one more read if
    the summary starts before that. ``source``: a path, a seekable binary file or bytes."""
    import io
    owns = False
    if isinstance(source, (bytes, bytearray, memoryview)):
        f: BinaryIO = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        f, owns = open(source, "rb"), True
    else:
        f = source
    try:
        return _open(f, owns)
    except BaseException:
        if owns:
            f.close()
        raise


def _open(f: BinaryIO, owns: bool) -> Archive:
    n = f.seek(0, os.SEEK_END)
    start = max(0, n - TAIL_FETCH)
    buf = _read_range(f, start, n)
    if start == 0:
        _check_preamble(buf)
    if n < PREAMBLE_LEN + FOOTER_LEN:
        raise CalltapeError("truncated", None, "no valid footer: the archive was not closed")
    footer_at = n - FOOTER_LEN
    fb = buf[footer_at - start:]
    if fb[32:40] != FOOTER_MAGIC:
        raise CalltapeError("truncated", None, "no valid footer: the archive was not closed")
    footer = _decode_footer(fb, footer_at)
    so, io_ = footer["summary_offset"], footer["index_offset"]
    if footer_at - so > 2 * (MAX_FRAME_LEN + FRAME_OVERHEAD):
        raise CalltapeError("malformed", footer_at, "summary offset implausibly far from the end")
    if so < start:                                    # the one possible second read
        buf = _read_range(f, so, start) + buf
        start = so

    def tail_frame(frm: int, to: int, want: int, what: str):
        fr = _decode_frame(buf[frm - start:to - start], 0, frm)
        if fr is None:
            raise CalltapeError("truncated", frm, f"{what} frame cut short")
        if fr[0] != want or fr[2] != to - frm:
            raise CalltapeError("malformed", frm, f"no {what} frame where the footer points")
        return fr[1]

    summary = _summary_json(
        _unpack_tail(tail_frame(so, io_, FRAME_SUMMARY, "summary"), "summary", so), so)
    if type(summary) is not _Obj or type(summary.get("header")) is not _Obj:
        raise CalltapeError("malformed", so, "summary is not an object with a header")
    max_count = _max_chunks(so - PREAMBLE_LEN)
    if footer["chunk_count"] > max_count:
        raise CalltapeError("malformed", footer_at, f"claims {footer['chunk_count']} chunks, "
                                                    f"more than the {max_count} it can hold")
    index = _decode_index(_unpack_tail(tail_frame(io_, footer_at, FRAME_INDEX, "chunk index"),
                                       "chunk index", io_), io_, max_count)
    if len(index) != footer["chunk_count"]:
        raise CalltapeError("malformed", io_, f"{len(index)} entries, footer says "
                                              f"{footer['chunk_count']}")
    for e in index:
        if e.offset + e.frame_len > so:
            raise CalltapeError("malformed", io_, f"chunk at {e.offset} runs past the data")
    return Archive(f, n, summary, index, footer, owns)


# ---------------------------------------------------------------------------------------
# CLI

def _same(a, b, path="$") -> str | None:
    """First difference between two JSON values (types compared strictly), or None."""
    ta = type(a) if not isinstance(a, dict) else dict
    tb = type(b) if not isinstance(b, dict) else dict
    if ta is not tb:
        return f"{path}: {a!r:.80} != {b!r:.80}"
    if ta is dict:
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: present on one side only"
            d = _same(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if ta is list:
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _same(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r:.80} != {b!r:.80}"


def _check_vector(path: str) -> str | None:
    with open(path, "rb") as f:
        data = f.read()
    with open(path[:-len(".calltape")] + ".json", "rb") as f:
        expected = json.loads(f.read())
    got = dump(data)
    diff = _same(got, expected)
    if diff:
        return "dump: " + diff
    if got["footer"] is not None:                     # closed: the tail must agree
        try:
            with open_archive(path) as a:
                diff = (_same(a.summary, got["summary"], "open.summary")
                        or _same(_index_json(a.index), got["index"], "open.index")
                        or _same(a.footer, got["footer"], "open.footer"))
                if diff:
                    return diff
                for e, c in zip(a.index, got["chunks"]):
                    ch = a.read_chunk(e)
                    diff = _same(_chunk_json(ch), c, f"read_chunk@{e.offset}")
                    if diff:
                        return diff
        except CalltapeError as e:
            if got["damage"] is None or e.offset != got["damage"]["offset"]:
                return f"open_archive: {e}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "dump":
        with open(argv[1], "rb") as f:
            json.dump(dump(f.read()), sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    if len(argv) == 2 and argv[0] == "--check":
        names = sorted(n for n in os.listdir(argv[1]) if n.endswith(".calltape"))
        passed = failed = 0
        for n in names:
            try:
                diff = _check_vector(os.path.join(argv[1], n))
            except Exception as e:                     # noqa: BLE001 - report, keep going
                diff = f"{type(e).__name__}: {e}"
            if diff:
                failed += 1
                print(f"FAIL {n}: {diff}")
            else:
                passed += 1
                print(f"ok   {n}")
        print(f"{passed} passed, {failed} failed")
        return 1 if failed or not names else 0
    print(__doc__.split("CLI::", 1)[1].rstrip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
