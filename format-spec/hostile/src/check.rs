//! The `reader` fuzz target's body: every reader entry point on one input, with the
//! invariants that hold for any input. Shared by the libFuzzer target
//! (`format-spec/fuzz`, nightly + cargo-fuzz), its stable random harness, and this crate's
//! tests, which replay the committed corpus and regression inputs on `cargo test`.
//!
//! Every input is exercised twice: as given, and with its frame lengths clamped to the input
//! and every frame and footer CRC recomputed ([`fix_crcs`]). Random bytes almost never carry
//! a valid CRC32C, so without the second pass the fuzzer would stop at the frame checks and
//! never reach the chunk, record, audio, index and summary decoders.

use std::io::Cursor;

use calltape_format::dump::dump;
use calltape_format::{open, read_chunk, records, recover_to, scan, Filter, OpenStep, Opener};

const PREAMBLE_LEN: usize = 12;
const FOOTER_LEN: usize = 40;
const FOOTER_MAGIC: &[u8; 8] = b"CTAPEEND";
/// Upper bound on chunks read back per opened archive (an index may claim millions).
const MAX_CHUNK_READS: usize = 4096;
/// Upper bound on records read in time order per opened archive.
const MAX_RECORD_READS: usize = 1 << 20;

/// Runs every reader entry point on `data` and on its CRC-fixed twin. Panics only on a bug.
pub fn check(data: &[u8]) {
    exercise(data);
    if let Some(fixed) = fix_crcs(data) {
        if fixed != data {
            exercise(&fixed);
        }
    }
}

/// The reader entry points, with the invariants that must hold for any input.
pub fn exercise(data: &[u8]) {
    // 1. the canonical dump never fails, and always has the seven fields
    let d = dump(data);
    for k in [
        "header",
        "chunks",
        "other_frames",
        "summary",
        "index",
        "footer",
        "damage",
    ] {
        assert!(d.get(k).is_some(), "dump lacks {k}");
    }

    // 2. forward scan
    let _ = scan(data);

    // 3. recovery into memory; whatever it writes must be a clean, closed archive
    let mut out = Vec::new();
    if let Ok(report) = recover_to(data, &mut out) {
        assert_eq!(report.kept_bytes + report.lost_bytes, data.len() as u64);
        let a = open(&mut Cursor::new(&out))
            .unwrap_or_else(|e| panic!("recovered archive does not open: {e}"));
        assert_eq!(a.index.len(), report.chunks_kept as usize);
        for e in &a.index {
            read_chunk(&mut Cursor::new(&out), e)
                .unwrap_or_else(|err| panic!("recovered chunk at {} unreadable: {err}", e.offset));
        }
        let d = dump(&out);
        // Known bug (reported, unfixed): recovery accepts a header whose unknown fields hold
        // JSON that serde_json's Value parser rejects (invalid UTF-8, 1e400, lone surrogate),
        // and copies it; the dump then says `malformed` at byte 12. CALLTAPE_FUZZ_KNOWN=1
        // skips just that case so a run can look for other bugs.
        let known = d["damage"]["offset"] == 12 && known_bugs_ok();
        assert!(
            d["damage"].is_null() || known,
            "recovered archive dumps with damage {}",
            d["damage"]
        );
    }

    // 4. the sans-io opener, fed exactly the ranges it asks for, then every chunk it indexes
    let len = data.len() as u64;
    let mut opener = Opener::new(len);
    let mut range = opener.first_range();
    for _ in 0..4 {
        assert!(
            range.start <= range.end && range.end <= len,
            "opener asked for {range:?} of {len}"
        );
        match opener.feed(range.start, &data[range.start as usize..range.end as usize]) {
            Ok(OpenStep::Need(next)) => range = next,
            Ok(OpenStep::Ready(a)) => {
                for e in a.index.iter().take(MAX_CHUNK_READS) {
                    let _ = read_chunk(&mut Cursor::new(data), e);
                }
                let _ = a.chunks_in(0, 0, u64::MAX).count();
                let _ = a.chunks_for_turn(1).count();
                break;
            }
            Err(_) => break,
        }
    }

    // 5. the seekable convenience wrapper, and the records in time order (the merge every
    //    viewer uses), which must end or fail within the reader's limits
    if let Ok(a) = open(&mut Cursor::new(data)) {
        for r in records(Cursor::new(data), &a, Filter::all()).take(MAX_RECORD_READS) {
            if r.is_err() {
                break;
            }
        }
    }
}

fn known_bugs_ok() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| std::env::var_os("CALLTAPE_FUZZ_KNOWN").is_some())
}

/// Copies `data` with each frame's length clamped to the bytes present and its CRC32C
/// recomputed, and a footer's CRC recomputed. `None` if there is not even a preamble.
pub fn fix_crcs(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < PREAMBLE_LEN {
        return None;
    }
    let mut out = data[..PREAMBLE_LEN].to_vec();
    let mut pos = PREAMBLE_LEN;
    let mut after_index = false;
    while pos < data.len() {
        let rest = &data[pos..];
        if after_index && rest.len() >= FOOTER_LEN && &rest[32..40] == FOOTER_MAGIC {
            let mut f = rest[..FOOTER_LEN].to_vec();
            let crc = crc32c::crc32c(&f[..28]);
            f[28..32].copy_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&f);
            out.extend_from_slice(&rest[FOOTER_LEN..]);
            return Some(out);
        }
        if rest.len() < 9 {
            out.extend_from_slice(rest);
            break;
        }
        let kind = rest[0];
        let len =
            (u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize).min(rest.len() - 9);
        let start = out.len();
        out.push(kind);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&rest[5..5 + len]);
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        pos += 9 + len;
        after_index = kind == 4;
    }
    Some(out)
}
