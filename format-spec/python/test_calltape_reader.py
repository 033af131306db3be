"""Tests for calltape_reader.py. Run from this directory: python3 -m unittest"""

import io
import json
import os
import random
import struct
import unittest

import zstandard

import calltape_reader as ct

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors")


def vector(name: str) -> bytes:
    with open(os.path.join(VECTORS, name + ".calltape"), "rb") as f:
        return f.read()


def expected(name: str) -> dict:
    with open(os.path.join(VECTORS, name + ".json"), "rb") as f:
        return json.load(f)


# A tiny writer, to craft archives the Rust writer would never produce.
def frame(kind: int, payload: bytes) -> bytes:
    b = bytes([kind]) + struct.pack("<I", len(payload)) + payload
    return b + struct.pack("<I", ct.crc32c(b))


def record(kind: int, time_ns: int, payload: bytes) -> bytes:
    return struct.pack("<HQI", kind, time_ns, len(payload)) + payload


def chunk(body: bytes, count: int, lane=0, encoding=0, ulen=None, data=None) -> bytes:
    data = zstandard.ZstdCompressor().compress(body) if data is None else data
    head = struct.pack("<HBBQQIIII", lane, encoding, 0, 0, 0, count,
                       len(body) if ulen is None else ulen, 0, 0)
    return frame(2, head + data)


PREAMBLE = ct.MAGIC + b"\x01\x00\x00\x00"
HEADER = frame(1, b'{"session_id":"t","started_at":"","started_at_unix_ns":0,"tracks":[]}')
CHUNK_AT = len(PREAMBLE) + len(HEADER)


def encode_planes(x, channels):
    """pcm16_lpc2 encoder straight from SPEC §4.2, for round trips."""
    n = len(x)
    lo, hi = bytearray(n), bytearray(n)
    for i in range(n):
        p1 = x[i - channels] if i >= channels else 0
        p2 = x[i - 2 * channels] if i >= 2 * channels else 0
        r = (x[i] - 2 * p1 + p2) & 0xFFFF
        r = r - 0x10000 if r & 0x8000 else r
        z = ((r << 1) ^ (r >> 15)) & 0xFFFF
        lo[i], hi[i] = z & 0xFF, z >> 8
    return bytes(lo + hi)


def encode_rice(x, channels, order_of=lambda block: 2, k_of=lambda part: 3):
    """pcm16_rice encoder straight from SPEC §4.3, with the order and k chosen by the caller
    (any choice is valid; the reference writer picks the smallest)."""
    bits = []
    frames = len(x) // channels
    for ch in range(channels):
        xs = [0, 0, 0, 0] + [x[j * channels + ch] for j in range(frames)]
        for b, start in enumerate(range(0, frames, ct.RICE_BLOCK)):
            order = order_of(b)
            bits.append(format(order, "03b"))
            for pn, p in enumerate(range(start, min(start + ct.RICE_BLOCK, frames),
                                         ct.RICE_PARTITION)):
                k = k_of(pn)
                bits.append(format(k, "04b"))
                for j in range(p, min(p + ct.RICE_PARTITION, start + ct.RICE_BLOCK, frames)):
                    a, b1, b2, b3, b4 = xs[j + 4], xs[j + 3], xs[j + 2], xs[j + 1], xs[j]
                    pred = [0, b1, 2 * b1 - b2, 3 * b1 - 3 * b2 + b3,
                            4 * b1 - 6 * b2 + 4 * b3 - b4][order]
                    r = ((a - pred + 0x8000) & 0xFFFF) - 0x8000
                    z = ((r << 1) ^ (r >> 15)) & 0xFFFF
                    q = z >> k
                    if q >= 32:
                        bits.append("0" * 32 + format(z, "016b"))
                    else:
                        bits.append("0" * q + "1" + (format(z & ((1 << k) - 1), f"0{k}b") if k else ""))
        n = len("".join(bits))
        bits.append("0" * (-n % 8))
    s = "".join(bits)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def encode_qlpc(x, blocks, k=6):
    """pcm16_qlpc encoder straight from SPEC §4.4 for one channel: ``blocks`` is a list of
    (size code, kind, grid, params) with params the fixed order, or (coefficients, precision,
    shift) for LPC; one partition (po 0) of parameter ``k`` per block."""
    bits, xs, at = [], [0] * 32 + list(x), 0
    for size, kind, grid, params in blocks:
        n = min(256 << size, len(x) - at)
        bits.append(format(size, "03b") + format(kind, "02b"))
        if kind == 0:
            bits.append(format(x[at] & 0xFFFF, "016b"))
            at += n
            continue
        bits.append(format(grid, "02b"))
        if kind == 1:
            coefs, shift = ct.FIXED_PREDICTORS[params], 0
            bits.append(format(params, "03b"))
        else:
            coefs, prec, shift = params
            bits.append(format(len(coefs) - 1, "05b") + format(prec - 1, "04b") + format(shift, "04b"))
            bits.extend(format(c & ((1 << prec) - 1), f"0{prec}b") for c in coefs)
        bits.append("0000" + format(k, "04b"))
        g = ct.G711_GRIDS.get(grid)
        for j in range(32 + at, 32 + at + n):
            p = sum(c * xs[j - 1 - t] for t, c in enumerate(coefs))
            if kind == 2:
                p = (((p + 0x80000000) & 0xFFFFFFFF) - 0x80000000) >> shift
            if g is None:
                r = ((xs[j] - p + 0x8000) & 0xFFFF) - 0x8000
                z = ((r << 1) ^ (r >> 15)) & 0xFFFF
            else:
                d = g.index(xs[j]) - ct._near(g, p)
                z = (d << 1) ^ (d >> 31)
            q = z >> k
            bits.append("0" * 32 + format(z, "016b") if q >= 32 else
                        "0" * q + "1" + (format(z & ((1 << k) - 1), f"0{k}b") if k else ""))
        at += n
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


class Crc32c(unittest.TestCase):
    def test_check_value(self):
        self.assertEqual(ct.crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(ct.crc32c(b""), 0)

    def test_incremental(self):
        self.assertEqual(ct.crc32c(b"6789", ct.crc32c(b"12345")), 0xE3069283)

    def test_frames_of_the_vectors_check(self):
        d = vector("minimal")
        n = struct.unpack_from("<I", d, 13)[0]               # the header frame
        self.assertEqual(ct.crc32c(d[12:17 + n]), struct.unpack_from("<I", d, 17 + n)[0])


class Vectors(unittest.TestCase):
    def test_every_vector_dumps_as_committed(self):
        names = [n[:-9] for n in os.listdir(VECTORS) if n.endswith(".calltape")]
        self.assertGreaterEqual(len(names), 6)
        for name in names:
            with self.subTest(name):
                self.assertIsNone(ct._same(ct.dump(vector(name)), expected(name)))

    def test_open_reads_the_tail_and_agrees_with_the_dump(self):
        for name in ("minimal", "full", "audio", "unknown_kind", "bad_crc"):
            with self.subTest(name), ct.open_archive(os.path.join(VECTORS, name + ".calltape")) as a:
                # bad_crc is `full` with a bit flipped in a chunk: its tail is full's
                want = expected("full" if name == "bad_crc" else name)
                self.assertEqual(a.summary, want["summary"])
                self.assertEqual(a.footer, want["footer"])
                self.assertEqual([e.__dict__ for e in a.index], want["index"])
                self.assertEqual(a.header["session_id"], "vec-0001")

    def test_open_needs_only_the_tail(self):
        data = vector("full")
        reads = []

        class Spy(io.BytesIO):
            def read(self, n=-1):
                reads.append((self.tell(), n))
                return super().read(n)

        ct.open_archive(Spy(data)).close()
        self.assertEqual(len(reads), 1)                      # one read: the last 256 KiB

    def test_iter_records_by_lane_and_turn(self):
        with ct.open_archive(vector("audio")) as a:
            audio = list(a.iter_records(lanes=[1]))
            self.assertTrue(audio and all(r.kind == 32 for r in audio))
            firsts = [r.data["first_sample"] for r in audio]
            self.assertEqual(firsts, sorted(firsts))
            self.assertEqual(sum(len(r.data["samples"]) for r in audio),
                             a.summary["totals"]["audio_frames"]["1"])
            control = list(a.iter_records(turn=1))
            self.assertEqual(control[0].kind_name, "turn_start")

    def test_damaged_vectors(self):
        with self.assertRaises(ct.CalltapeError) as e:
            ct.open_archive(vector("truncated"))
        self.assertEqual(e.exception.code, "truncated")
        with ct.open_archive(vector("bad_crc")) as a:
            with self.assertRaises(ct.CalltapeError) as e:
                a.read_chunk(a.index[1])
            self.assertEqual((e.exception.code, e.exception.offset),
                             ("bad_checksum", a.index[1].offset))
        recs = list(ct.scan_records(vector("truncated")))
        self.assertEqual(len(recs), sum(len(c["records"]) for c in expected("truncated")["chunks"]))


class Hostile(unittest.TestCase):
    def check_never_raises(self, data: bytes):
        d = ct.dump(data)
        if d["damage"] is not None:
            self.assertIn(d["damage"]["error"], ct.CalltapeError.CODES)
        try:
            ct.open_archive(data).close()
        except ct.CalltapeError as e:
            self.assertIn(e.code, ct.CalltapeError.CODES)
        return d

    def test_every_truncation(self):
        for name in ("full", "unknown_kind"):
            data = vector(name)
            full = ct.dump(data)
            boundaries, at = {0, 12}, 12              # ends of whole units
            while at < len(data) - 40:
                at += 9 + struct.unpack_from("<I", data, at + 1)[0]
                boundaries.add(at)
            for n in range(len(data)):
                with self.subTest(name=name, at=n):
                    d = self.check_never_raises(data[:n])
                    if n in boundaries:               # a file cut between frames is undamaged
                        self.assertIsNone(d["damage"])
                    else:                             # damage named at the cut unit
                        self.assertEqual(d["damage"], {"error": "truncated",
                                                       "offset": max(b for b in boundaries if b <= n)})
                        # the units before the cut are all still there
                        self.assertEqual(d["chunks"], [c for c in full["chunks"]
                                                       if c["offset"] + 45 <= n][:len(d["chunks"])])

    def test_audio_vector_truncated_every_97_bytes(self):
        for name in ("audio", "audio_rice", "audio_lpc"):
            data = vector(name)
            for n in range(0, len(data), 97):
                self.check_never_raises(data[:n])

    def test_random_bit_flips(self):
        rng = random.Random(7)
        seeds = [vector(n) for n in ("full", "audio", "audio_rice", "audio_lpc", "unknown_kind",
                                     "minimal")]
        for _ in range(300):
            d = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            self.check_never_raises(bytes(d))

    def test_error_codes_and_offsets(self):
        cases = {
            b"": None,
            b"\x89CT": ("truncated", 0),
            b"GIF89a\x00\x00\x00\x00\x00\x00": ("not_an_archive", 0),
            ct.MAGIC + b"\x02\x00\x00\x00": ("unsupported_version", 0),
            PREAMBLE + b"\x00" * 9: ("malformed", 12),
            PREAMBLE + b"\x02" + struct.pack("<I", (64 << 20) + 1): ("too_large", 12),
            PREAMBLE + HEADER[:-1]: ("truncated", 12),
            PREAMBLE + HEADER[:-1] + b"\x00": ("bad_checksum", 12),
            PREAMBLE + HEADER + chunk(b"", 0, ulen=(32 << 20) + 1): ("too_large", CHUNK_AT),
            PREAMBLE + HEADER + chunk(b"{}", 1): ("malformed", CHUNK_AT),
        }
        for data, want in cases.items():
            with self.subTest(data=data[:40]):
                d = self.check_never_raises(data)
                got = d["damage"] and (d["damage"]["error"], d["damage"]["offset"])
                self.assertEqual(got, want)

    def test_zstd_bomb_is_refused_without_inflating_it(self):
        body = bytes(40 << 20)                  # 40 MiB of zeros, ~1 KiB compressed
        no_size = zstandard.ZstdCompressor(write_content_size=False).compress(body)
        for ulen in (1 << 20, 32 << 20):
            d = ct.dump(PREAMBLE + HEADER + chunk(body, 0, ulen=ulen, data=no_size))
            self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "malformed"})

    def test_record_limit(self):
        big = record(200, 0, bytes((16 << 20) + 1))
        d = ct.dump(PREAMBLE + HEADER + chunk(big, 1))
        self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "too_large"})

    def test_json_records_are_checked_against_their_kind(self):
        def dump_one(kind, payload):
            return ct.dump(PREAMBLE + HEADER + chunk(record(kind, 0, payload), 1))
        ok = dump_one(3, b'{"speaker":"user","text":"hi","mood":"calm"}')
        self.assertIsNone(ok["damage"])
        self.assertEqual(ok["chunks"][0]["records"][0]["data"]["mood"], "calm")
        for bad in (b'{"speaker":"user"}', b'{"speaker":"user","text":1}',
                    b'{"turn":-1,"speaker":"user","text":""}', b'{"speaker":"user","text":NaN}',
                    b'{"speaker":"user","text":"\\ud800"}', b"[1,2", b'"text"'):
            with self.subTest(bad):
                self.assertEqual(dump_one(3, bad)["damage"]["error"], "malformed")


class Audio(unittest.TestCase):
    def test_planes_round_trip_with_wrapping(self):
        rng = random.Random(1)
        for channels in (1, 2, 3):
            x = [rng.choice([-32768, 32767, 0, -1, 1]) if rng.random() < 0.3
                 else rng.randint(-32768, 32767) for _ in range(channels * 200)]
            self.assertEqual(list(ct._decode_planes(encode_planes(x, channels), len(x), channels)), x)

    def test_stereo_chunk(self):
        x = [100, -100, 32767, -32768, 5, 6, -7, 8]
        head = struct.pack("<HBBQI", 1, 2, 0, 48_000, 4)
        body = struct.pack("<I", 30) + record(32, 10, head) + encode_planes(x, 2)
        d = ct.dump(PREAMBLE + HEADER + chunk(body, 1, lane=1, encoding=1))
        self.assertIsNone(d["damage"])
        self.assertEqual(d["chunks"][0]["records"][0]["data"],
                         {"track": 1, "channels": 2, "first_sample": 48_000, "samples": x})

    def rice_chunk(self, x, channels, data):
        head = struct.pack("<HBBQI", 1, channels, 0, 0, len(x) // channels)
        body = struct.pack("<I", 30) + record(32, 0, head) + data
        return ct.dump(PREAMBLE + HEADER + chunk(body, 1, lane=1, encoding=2))

    def test_rice_round_trips_every_order_and_k(self):
        rng = random.Random(3)
        x = [rng.randint(-32768, 32767) if i % 97 == 0 else (i * 37) % 2000 - 1000
             for i in range(2 * 1300)]
        x[5], x[6] = 32767, -32768
        for order in range(5):
            for k in (0, 4, 15):
                with self.subTest(order=order, k=k):
                    data = encode_rice(x, 2, order_of=lambda b: order, k_of=lambda p: k)
                    d = self.rice_chunk(x, 2, data)
                    self.assertIsNone(d["damage"])
                    self.assertEqual(d["chunks"][0]["records"][0]["data"]["samples"], x)
        mixed = encode_rice(x[:1300], 1, order_of=lambda b: (b * 3) % 5,
                            k_of=lambda p: (p * 5) % 16)
        d = self.rice_chunk(x[:1300], 1, mixed)
        self.assertEqual(d["chunks"][0]["records"][0]["data"]["samples"], x[:1300])

    def test_rice_is_strict(self):
        x = [(i * i) % 3000 for i in range(700)]
        good = encode_rice(x, 1)
        for data in (good[:-1], good + b"\x00", b"\xe0" + good[1:]):
            self.assertEqual(self.rice_chunk(x, 1, data)["damage"],
                             {"offset": CHUNK_AT, "error": "malformed"})
        huge = struct.pack("<HBBQI", 1, 1, 0, 0, 0xFFFFFFFF)
        body = struct.pack("<I", 30) + record(32, 0, huge) + b"\xff" * 8
        d = ct.dump(PREAMBLE + HEADER + chunk(body, 1, lane=1, encoding=2))
        self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "too_large"})
        rng = random.Random(5)
        for _ in range(200):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            d = ct.dump(PREAMBLE + HEADER + chunk(
                struct.pack("<I", 30) + record(32, 0, struct.pack(
                    "<HBBQI", 1, rng.randrange(3), 0, 0, rng.randrange(300))) + data, 1, encoding=2))
            if d["damage"] is not None:
                self.assertIn(d["damage"]["error"], ct.CalltapeError.CODES)

    def qlpc_chunk(self, x, data):
        head = struct.pack("<HBBQI", 1, 1, 0, 0, len(x))
        body = struct.pack("<I", 30) + record(32, 0, head) + data
        return ct.dump(PREAMBLE + HEADER + chunk(body, 1, lane=1, encoding=3))

    def test_qlpc_block_kinds_and_wrapping(self):
        rng = random.Random(11)
        loud = [rng.choice((32767, -32768, 30000)) for _ in range(512)]
        grid = ct.G711_GRIDS[1]
        mu = [grid[(i * 7) % len(grid)] if i % 5 else grid[len(grid) // 2] for i in range(512)]
        x = [5] * 256 + loud + mu + [(i * 37) % 2000 - 1000 for i in range(600)]
        blocks = [(0, 0, 0, None),                                   # constant
                  # precision 15, all taps at the maximum: the 32-bit sum wraps
                  (0, 2, 0, ([16383] * 32, 15, 0)),
                  (0, 2, 0, ([-16384, 9000, -3], 15, 15)),
                  (0, 1, 1, 2),                                      # μ-law grid, fixed
                  (0, 2, 1, ([3000, -1000], 13, 11)),               # μ-law grid, LPC
                  (1, 1, 0, 4), (0, 1, 0, 0)]
        data = encode_qlpc(x, blocks)
        d = self.qlpc_chunk(x, data)
        self.assertIsNone(d["damage"])
        self.assertEqual(d["chunks"][0]["records"][0]["data"]["samples"], x)

    def test_qlpc_is_strict(self):
        x = [(i * i) % 3000 for i in range(700)]
        good = encode_qlpc(x, [(1, 1, 0, 2), (0, 2, 0, ([2, -1], 3, 0))])
        self.assertIsNone(self.qlpc_chunk(x, good)["damage"])
        # size 0, fixed, μ-law grid, order 0, po 0, k 0, then z = 600 (escaped): off the grid
        bits = "000" "01" "01" "000" "0000" "0000" + "0" * 32 + format(600, "016b")
        bits += "0" * (-len(bits) % 8)
        off_grid = int(bits, 2).to_bytes(len(bits) // 8, "big")
        with self.assertRaisesRegex(ct.CalltapeError, "grid index off the grid"):
            ct._decode_qlpc(off_grid, 1, 1, 0)
        for data in (good[:-1], good + b"\x00", b"\xe0" + good[1:], b"\x38" + good[1:]):
            self.assertEqual(self.qlpc_chunk(x, data)["damage"],
                             {"offset": CHUNK_AT, "error": "malformed"})
        rng = random.Random(5)
        for _ in range(200):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            d = ct.dump(PREAMBLE + HEADER + chunk(
                struct.pack("<I", 30) + record(32, 0, struct.pack(
                    "<HBBQI", 1, rng.randrange(3), 0, 0, rng.randrange(3000))) + data, 1,
                encoding=3))
            if d["damage"] is not None:
                self.assertIn(d["damage"]["error"], ct.CalltapeError.CODES)

    def test_plane_length_must_match(self):
        head = struct.pack("<HBBQI", 1, 1, 0, 0, 4)
        body = struct.pack("<I", 30) + record(32, 0, head) + encode_planes([1, 2, 3], 1)
        d = ct.dump(PREAMBLE + HEADER + chunk(body, 1, lane=1, encoding=1))
        self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "malformed"})

    def test_unknown_encoding_is_skipped(self):
        # SPEC §4: the body of an unknown encoding is not read (here: not even zstd), and a
        # huge uncompressed_len is no concern; the chunks after it read as usual
        future = chunk(b"", 3, lane=1, encoding=7, ulen=0xFFFFFFFF, data=b"not zstd at all")
        after = chunk(record(1, 5, b'{"turn":1,"speaker":"user"}'), 1)
        d = ct.dump(PREAMBLE + HEADER + future + after)
        self.assertIsNone(d["damage"])
        self.assertEqual(len(d["chunks"]), 2)
        self.assertEqual(d["chunks"][0]["records"], [])
        self.assertIs(d["chunks"][0]["skipped"], True)
        self.assertEqual(d["chunks"][0]["record_count"], 3)
        self.assertNotIn("skipped", d["chunks"][1])
        self.assertEqual(d["chunks"][1]["records"][0]["kind_name"], "turn_start")
        recs = list(ct.scan_records(PREAMBLE + HEADER + future + after, strict=True))
        self.assertEqual([r.kind for r in recs], [1])
        # the 36-byte header itself must still be there
        short = frame(2, future[5:5 + 35])
        d = ct.dump(PREAMBLE + HEADER + short)
        self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "malformed"})

    def test_unknown_encoding_vector(self):
        a = ct.open_archive(vector("unknown_encoding"))
        skipped = a.read_chunk(a.index[1])
        self.assertTrue(skipped.skipped)
        self.assertEqual(skipped.records, [])
        self.assertEqual([r.kind_name for r in a.iter_records()], ["turn_start", "session_end"])


def closed(chunks: bytes, summary: bytes, index_raw: bytes, chunk_count: int) -> bytes:
    """PREAMBLE + HEADER + chunks, closed with this summary JSON and raw index."""
    data = PREAMBLE + HEADER + chunks
    pack = lambda raw: struct.pack("<I", len(raw)) + zstandard.ZstdCompressor().compress(raw)
    s_frame, i_frame = frame(3, pack(summary)), frame(4, pack(index_raw))
    footer = struct.pack("<QQIII", len(data), len(data) + len(s_frame), chunk_count, 0, 0)
    footer += struct.pack("<I", ct.crc32c(footer)) + ct.FOOTER_MAGIC
    return data + s_frame + i_frame + footer


SUMMARY = b'{"header":{"session_id":"t","started_at":"","started_at_unix_ns":0,"tracks":[]},' \
          b'"duration_ns":0,"turns":[],"totals":{}}'


class HostileInputs(unittest.TestCase):
    """SPEC §8 *Limits*: small hostile files end in the error the limit names, before the work
    they ask for (millions of records, entries or JSON values). Each file is a few KB."""

    def test_a_chunk_claiming_too_many_records_is_refused_before_inflating(self):
        body = record(200, 5, b"") * ((32 << 20) // 14)
        d = ct.dump(PREAMBLE + HEADER + chunk(body, len(body) // 14))
        self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "too_large"})

    def test_records_past_the_header_count_stop_the_chunk(self):
        body = record(200, 5, b"") * ((32 << 20) // 14)
        with self.assertRaises(ct.CalltapeError) as e:
            ct._decode_chunk(chunk(body, ct.MAX_CHUNK_RECORDS)[5:-4], CHUNK_AT)
        self.assertIn("more records than the 65536", str(e.exception))

    def test_a_chunk_of_a_million_json_values_is_refused_before_parsing(self):
        payload = b'{"turn":1,"speaker":"user","attributes":{"a":[' + b"0," * (1 << 20) + b"0]}}"
        d = ct.dump(PREAMBLE + HEADER + chunk(record(1, 0, payload), 1))
        self.assertEqual(d["damage"], {"offset": CHUNK_AT, "error": "too_large"})
        # commas inside strings are not values
        quoted = b'{"turn":1,"speaker":"user","attributes":{"a":"' + b"," * (2 << 20) + b'"}}'
        d = ct.dump(PREAMBLE + HEADER + chunk(record(1, 0, quoted), 1))
        self.assertIsNone(d["damage"])

    def test_an_index_of_millions_of_entries_is_refused_by_the_file_size(self):
        n = 7_000_000
        raw = bytes([n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, (n >> 14) & 0x7F | 0x80, n >> 21])
        raw += bytes(9 * n)
        f = closed(b"", SUMMARY, raw, 0)
        self.assertLess(len(f), 16 << 10)
        with self.assertRaises(ct.CalltapeError) as e:
            ct.open_archive(f)
        self.assertIn("claims 7000000 chunks", str(e.exception))
        self.assertEqual(ct.dump(f)["damage"]["error"], "malformed")

    def test_a_summary_of_too_many_turns_is_refused(self):
        turn = b'{"turn":1,"speaker":"user","start_ns":0,"latency":{}}'
        summary = SUMMARY.replace(b'"turns":[]', b'"turns":[' + b",".join([turn] * 20_001) + b"]")
        with self.assertRaises(ct.CalltapeError) as e:
            ct.open_archive(closed(b"", summary, b"\x00", 0))
        self.assertIn("20001 turns", str(e.exception))

    def test_repeated_rice_partitions_decode_like_distinct_ones(self):
        # the same samples coded twice: once as one repeated pattern, once with a block that
        # differs, so the partition cache is both hit and missed
        x = [0] * 256 + list(range(256)) + [0] * 256
        for order in (0, 1, 2, 4):
            coded = encode_rice(x, 1, order_of=lambda block: order, k_of=lambda part: 0)
            self.assertEqual(list(ct._decode_rice(coded, len(x), 1, 0)), x)


class Cli(unittest.TestCase):
    def test_check_passes_on_the_vectors(self):
        out = io.StringIO()
        import contextlib
        with contextlib.redirect_stdout(out):
            rc = ct.main(["--check", VECTORS])
        self.assertEqual(rc, 0, out.getvalue())
        self.assertRegex(out.getvalue().splitlines()[-1], r"^\d+ passed, 0 failed$")


if __name__ == "__main__":
    unittest.main()
