//! Writes one file per hostile case of `calltape_hostile::cases` into a directory, to try
//! other readers on them (e.g. `python3 format-spec/python/calltape_reader.py dump FILE`):
//!
//!     cargo run -p calltape-hostile --example write_cases -- DIR

use calltape_hostile::cases::{self, Lie};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: write_cases DIR");
    std::fs::create_dir_all(&dir).expect("create DIR");
    let all: Vec<(&str, Vec<u8>)> = vec![
        ("index-bomb", cases::index_bomb(7_000_000, 0)),
        (
            "empty-records-lying-count",
            cases::empty_record_bomb(2_396_745),
        ),
        ("empty-records", cases::empty_record_bomb(65_536)),
        ("json-values", cases::json_value_bomb(2 << 20)),
        ("pile-on-one-instant", cases::pile_on_one_instant(60)),
        ("turn-flood-unclosed", cases::turn_flood(200_000)),
        (
            "lying-first-turn",
            cases::lying_header(Lie::FirstTurn(u32::MAX)),
        ),
        ("lying-lane", cases::lying_header(Lie::Lane(3))),
        ("lying-start", cases::lying_header(Lie::StartNs(u64::MAX))),
        ("rate-0", cases::audio_call(0, 0)),
        ("rate-max", cases::audio_call(u32::MAX, 0)),
        ("first-sample-huge", cases::audio_call(16_000, 1 << 40)),
        (
            "escapes",
            cases::text_call("\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}"),
        ),
    ];
    for (name, bytes) in all {
        let path = std::path::Path::new(&dir).join(format!("{name}.calltape"));
        std::fs::write(&path, bytes).expect("write");
        println!("{}", path.display());
    }
}
