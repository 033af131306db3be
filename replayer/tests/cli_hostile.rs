//! Hostile archives of a few KB (issues 17 and 18) through every command that reads one, run
//! as a user would, in a child limited to 2 GiB of address space: each ends with a clear
//! error (or a bounded result), never an abort, a panic or gigabytes written.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calltape_hostile::cases::{self, Lie};
use cli_support::s;

/// `calltape args...` under `ulimit -v` 2 GiB.
fn limited(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_calltape"))
        .args(args)
        .env_remove("CALLTAPE_CATALOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run calltape")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Exited by itself (no signal: no abort on a failed allocation), not with a panic (101),
/// with `codes`, and saying `says` somewhere.
fn ends_cleanly(out: &Output, codes: &[i32], says: &str) {
    let t = text(out);
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {t}"));
    assert!(codes.contains(&code), "exit {code}, wanted {codes:?}: {t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(t.contains(says), "wanted {says:?}: {t}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn an_index_of_millions_of_entries_costs_an_error_not_gigabytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "index.calltape",
        &cases::index_bomb(7_000_000, 0),
    );
    let out = limited(&["verify", s(&p), "--json"]);
    ends_cleanly(&out, &[1, 3], "claims 7000000 chunks");
    let out = limited(&["inspect", s(&p)]);
    // the tail is refused; what a forward scan finds (no chunks) is shown
    ends_cleanly(&out, &[0, 1, 3], "claims 7000000 chunks");
}

#[test]
fn a_chunk_of_millions_of_empty_records_costs_an_error_not_gigabytes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, count) in [("lying", 2_396_745), ("honest", 65_536)] {
        let p = write(dir.path(), name, &cases::empty_record_bomb(count));
        ends_cleanly(&limited(&["verify", s(&p)]), &[3], "record");
        ends_cleanly(
            &limited(&["inspect", s(&p), "--json"]),
            &[0, 1, 3],
            "record",
        );
        let t = dir.path().join(format!("{name}.txt"));
        ends_cleanly(
            &limited(&["export", s(&p), "--transcript", s(&t), "--to", "1s"]),
            &[1],
            "chunk",
        );
        let r = dir.path().join(format!("{name}.recovered"));
        ends_cleanly(&limited(&["recover", s(&p), "-o", s(&r)]), &[0, 1, 3], "");
    }
}

#[test]
fn recovering_200_000_turns_gives_a_file_that_opens_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "flood.calltape", &cases::turn_flood(200_000));
    let r = dir.path().join("flood.recovered.calltape");
    ends_cleanly(&limited(&["recover", s(&p), "-o", s(&r)]), &[0], "");
    let out = limited(&["verify", s(&r), "--json"]);
    ends_cleanly(&out, &[0], "intact");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "intact", "{v}");
    let out = limited(&["inspect", s(&r), "--json"]);
    ends_cleanly(&out, &[0], "turns_truncated");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totals"]["turns_truncated"], true, "{}", v["totals"]);
}

#[test]
fn verify_names_a_chunk_header_that_lies() {
    let dir = tempfile::tempdir().unwrap();
    for (lie, says) in [
        (Lie::FirstTurn(u32::MAX), "header says turns 4294967295..2"),
        (Lie::Lane(3), "header says lane 3"),
        (
            Lie::StartNs(u64::MAX),
            "header says records span 18446744073709551615",
        ),
    ] {
        let p = write(dir.path(), "lie.calltape", &cases::lying_header(lie));
        let out = limited(&["verify", s(&p)]);
        ends_cleanly(&out, &[3], says);
        assert!(text(&out).contains("chunk (chunk #1"), "{}", text(&out));
    }
    let p = write(
        dir.path(),
        "honest.calltape",
        &cases::lying_header(Lie::FirstTurn(2)),
    );
    ends_cleanly(&limited(&["verify", s(&p)]), &[0], "INTACT");
}

#[test]
fn bogus_sample_rates_and_first_samples_are_refused_by_the_wav_export() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, first, says) in [
        (0, 0, "sample rate of 0 Hz"),
        (u32::MAX, 0, "sample rate of 4294967295 Hz"),
        (16_000, 1 << 40, "s of silence"),
    ] {
        let p = write(
            dir.path(),
            "audio.calltape",
            &cases::audio_call(rate, first),
        );
        let wav = dir.path().join("out.wav");
        let out = limited(&["export", s(&p), "--wav", s(&wav), "--track", "user"]);
        ends_cleanly(&out, &[1], says);
        assert!(!wav.exists(), "a partial WAV was left behind");
        ends_cleanly(&limited(&["inspect", s(&p)]), &[0], "");
    }
}

#[test]
fn chunks_piled_on_one_instant_and_json_bombs_end_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let piled = write(
        dir.path(),
        "piled.calltape",
        &cases::pile_on_one_instant(60),
    );
    let t = dir.path().join("piled.txt");
    let out = limited(&["export", s(&piled), "--transcript", s(&t), "--to", "1s"]);
    ends_cleanly(&out, &[1], "records overlapping in time");
    let bomb = write(
        dir.path(),
        "json.calltape",
        &cases::json_value_bomb(2 << 20),
    );
    ends_cleanly(&limited(&["verify", s(&bomb)]), &[3], "chunk JSON values");
    let out = limited(&["export", s(&bomb), "--transcript", s(&t), "--to", "1s"]);
    ends_cleanly(&out, &[1], "chunk JSON values");
}

/// What an attacker puts in a transcript: clear screen, window title (OSC 0), clipboard write
/// (OSC 52), an 8-bit CSI and a bidi override.
const ESCAPES: &str = "hi \x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\u{9b}31m\u{202e}x";

fn assert_inert(what: &str, out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let t = String::from_utf8_lossy(stream);
        assert!(
            !t.chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}'),
            "{what} printed a raw control character: {t:?}"
        );
    }
}

#[test]
fn archive_text_reaches_the_terminal_inert() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.calltape", &cases::text_call(ESCAPES));
    let b = write(dir.path(), "b.calltape", &cases::text_call("hello"));
    let out = limited(&["inspect", s(&a)]);
    ends_cleanly(&out, &[0], "␛[2J");
    assert_inert("inspect", &out);
    let out = limited(&["inspect", s(&a), "--json"]);
    assert_inert("inspect --json", &out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["turns"][0]["user_text"], ESCAPES,
        "JSON keeps the text as recorded"
    );
    let out = limited(&["diff", s(&a), s(&b)]);
    assert_inert("diff", &out);
    assert!(text(&out).contains("␛]0;pwned␇"), "{}", text(&out));
    let out = limited(&["diff", s(&a), s(&b), "--json"]);
    assert_inert("diff --json", &out);
    let catalog = dir.path().join("catalog.sqlite");
    let out = limited(&["index", s(dir.path()), "--catalog", s(&catalog)]);
    ends_cleanly(&out, &[0], "");
    let out = limited(&["ls", "--catalog", s(&catalog)]);
    ends_cleanly(&out, &[0], "");
    assert_inert("ls", &out);
}
