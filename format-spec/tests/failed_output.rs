//! An output that fails to take a chunk loses nothing: the chunk stays open, and once the
//! output is cut back to `position()` and takes bytes again, writing goes on and every record
//! added before reads back.

mod common;

use std::cell::Cell;
use std::io::{self, Cursor, Write};
use std::rc::Rc;

use calltape_format::*;

/// A `Vec` that, while `full` is set, takes half of a write and then fails.
struct Flaky {
    buf: Vec<u8>,
    full: Rc<Cell<bool>>,
}

impl Write for Flaky {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.write_all(b).map(|_| b.len())
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        if self.full.get() {
            self.buf.extend_from_slice(&b[..b.len() / 2]);
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_chunk_the_output_refused_is_written_once_the_output_takes_bytes_again() {
    let full = Rc::new(Cell::new(false));
    let header = common::header(vec![common::rice_track(1, Speaker::User, 16_000)]);
    let records = common::merge(vec![
        common::full_records(),
        common::audio_records(1, 16_000, 300, 9),
    ]);
    let out = Flaky {
        buf: Vec::new(),
        full: full.clone(),
    };
    let mut w = ArchiveWriter::with_options(out, header, WriterOptions::default()).unwrap();
    let mut kept = Vec::new();
    let mut refused = 0;
    for (i, r) in records.iter().enumerate() {
        // the output is full for a stretch in the middle
        full.set((records.len() / 3..records.len() / 2).contains(&i));
        match w.write(r) {
            Ok(_) => kept.push(r.clone()),
            Err(FormatError::Io(_)) => {
                refused += 1;
                // cut the partial frame off, as the recorder's spool file does
                let pos = w.position() as usize;
                w.get_mut().buf.truncate(pos);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0, "the output refused some chunk");
    full.set(false);
    let bytes = w.finish().unwrap().0.buf;
    let mut cur = Cursor::new(&bytes[..]);
    let a = open(&mut cur).unwrap();
    let mut back = Vec::new();
    for e in &a.index {
        back.extend(read_chunk(&mut cur, e).unwrap().records);
    }
    // every record the writer took is there (an `Err` means the record was not taken)
    assert_eq!(back.len(), kept.len());
    let key = |r: &TimedRecord| format!("{r:?}");
    let mut want: Vec<String> = kept.iter().map(key).collect();
    let mut got: Vec<String> = back.iter().map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
}
