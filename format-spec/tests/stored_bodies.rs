//! Chunk bodies stored in a zstd frame of raw blocks (no compressor run): any zstd decoder
//! reads them, and an archive written that way reads back the same records.

mod common;

use std::io::Cursor;

use calltape_format::chunk::{stored_zstd_frame, stored_zstd_frame_len, ChunkEncoding};
use calltape_format::*;

fn bytes(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn stored_frames_of_every_block_count_inflate_to_their_data() {
    // empty, short, around the 128 KiB block limit, several blocks
    for n in [0, 1, 255, 256, 65_791, 131_071, 131_072, 131_073, 400_000] {
        let data = bytes(n);
        let mut frame = Vec::new();
        stored_zstd_frame(&data, &mut frame);
        assert_eq!(frame.len(), stored_zstd_frame_len(n), "{n} bytes");
        // the frame declares its content size
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame).ok(),
            Some(Some(n as u64)),
            "{n} bytes"
        );
        let back = zstd::bulk::decompress(&frame, n).unwrap();
        assert_eq!(back, data, "{n} bytes");
        // and a decoder given less room than the declared size refuses it
        if n > 0 {
            assert!(zstd::bulk::decompress(&frame, n - 1).is_err(), "{n} bytes");
        }
    }
}

#[test]
fn an_archive_with_stored_rice_bodies_reads_back_the_same_records() {
    let header = common::header(vec![
        common::rice_track(1, Speaker::User, 16_000),
        common::rice_track(2, Speaker::Agent, 16_000),
    ]);
    let records = common::merge(vec![
        common::full_records(),
        common::audio_records(1, 16_000, 150, 3),
        common::audio_records(2, 16_000, 150, 5),
    ]);
    let compressed = common::write(header.clone(), &records, WriterOptions::default());
    let stored = common::write(
        header,
        &records,
        WriterOptions {
            stored_encodings: &[ChunkEncoding::AudioPcm16Rice],
            ..WriterOptions::default()
        },
    );
    let read = |b: &[u8]| {
        let mut cur = Cursor::new(b);
        let a = open(&mut cur).unwrap();
        let mut out = Vec::new();
        let mut encodings = Vec::new();
        for e in &a.index {
            let c = read_chunk(&mut cur, e).unwrap();
            encodings.push(c.header.encoding);
            out.extend(c.records);
        }
        (out, encodings)
    };
    let (a, enc_a) = read(&compressed);
    let (b, enc_b) = read(&stored);
    assert_eq!(a, b);
    assert_eq!(enc_a, enc_b);
    assert!(enc_b.contains(&2), "audio chunks are pcm16_rice: {enc_b:?}");
    // the Rice bodies really are stored: their zstd frames are raw blocks
    let mut cur = Cursor::new(&stored[..]);
    let arch = open(&mut cur).unwrap();
    for e in arch.index.iter().filter(|e| e.lane != 0) {
        assert_eq!(
            u64::from(e.compressed_len),
            stored_zstd_frame_len(e.uncompressed_len as usize) as u64,
            "{e:?}"
        );
    }
}
