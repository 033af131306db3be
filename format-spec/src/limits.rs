//! Limits on what a value read from an archive may make a reader allocate, loop over or
//! write, in one place. The byte limits (frame, chunk body, record, tail) live next to their
//! decoders; these bound what bytes *expand into*: a 96-byte zstd frame inflates to 32 MiB,
//! and 32 MiB of 14-byte records would be 2.4 M structs. SPEC §8 "Limits" is the contract.

use crate::model::Track;

/// Records one chunk may hold. Writers close a chunk when it reaches this many (SPEC §4), and
/// a reader rejects a chunk whose header claims more before inflating it.
pub const MAX_CHUNK_RECORDS: u32 = 65_536;

/// JSON values (objects, arrays, members, elements) the records of one chunk may hold in
/// total: `[0,0,0,…]` costs 2 bytes on disk and about 32 bytes parsed.
pub const MAX_CHUNK_JSON_VALUES: usize = 1 << 20;

/// Turns a summary lists. A writer lists the first ones by id and sets
/// `totals.turns_truncated`; a reader rejects a summary listing more.
pub const MAX_SUMMARY_TURNS: usize = 20_000;

/// JSON values a summary may hold (a full turn table of [`MAX_SUMMARY_TURNS`] turns holds
/// about a million): checked before the summary is parsed.
pub const MAX_SUMMARY_JSON_VALUES: usize = 4 << 20;

/// The smallest chunk frame: frame overhead (9) + chunk header (36) + the smallest zstd frame
/// (9). An index cannot list more chunks than the data section could hold at this size.
pub const MIN_CHUNK_FRAME: u64 = 9 + 36 + 9;

/// Estimated decoded bytes ([`crate::cache::decoded_size`]) a record reader keeps in memory
/// at once: chunks fed ahead plus chunks being merged. Chunks overlapping in time are merged
/// together, so a file of many chunks over the same instant would otherwise all be held.
pub const MAX_LIVE_DECODED: u64 = 256 << 20;

/// The highest track sample rate a reader places audio for (Hz); 0 places nothing either.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// The longest silence a reader fills in between a track's recorded audio (or after it, to
/// the end of what was asked for): a frame whose `first_sample` lies further ahead is an
/// error naming it, not hours of zeros written to disk.
pub const MAX_SILENCE_S: u64 = 3600;

/// The track's sample rate when audio can be placed on the session clock with it
/// (1..=[`MAX_SAMPLE_RATE`] Hz), else what is wrong with it.
pub fn sample_rate(track: &Track) -> Result<u32, String> {
    match track.sample_rate {
        r @ 1..=MAX_SAMPLE_RATE => Ok(r),
        r => Err(format!(
            "audio track {} declares a sample rate of {r} Hz, outside 1..={MAX_SAMPLE_RATE}: \
             its audio cannot be placed on the session clock",
            track.id
        )),
    }
}

/// An upper bound on the JSON values `payload` parses into: one per `{`, `[`, `,` and `:`
/// outside strings, plus one. Linear, allocation-free; counted before parsing.
pub fn json_values(payload: &[u8]) -> usize {
    let (mut n, mut in_string, mut escaped) = (1usize, false, false);
    for &b in payload {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b',' | b':' => n += 1,
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_count_structure_not_strings() {
        assert_eq!(json_values(b"{}"), 2);
        assert_eq!(json_values(br#"{"a":[1,2,3]}"#), 6);
        // commas and brackets inside strings, and escaped quotes, are not structure
        assert_eq!(json_values(br#"{"a":"x,[{:\",y"}"#), 3);
        assert!(json_values(&b"[0,".repeat(1000)) > 2000);
    }
}
