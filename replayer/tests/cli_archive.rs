//! The single-archive commands run as a user would: inspect, verify, recover and diff on
//! synthetic calls, the format's conformance vectors and the committed samples.

mod cli_support;

use cli_support::*;

#[test]
fn inspect_json_has_the_turn_breakdown_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_call(dir.path(), &three_turn_call("inspect-1"));
    let v = json_of(&["inspect", s(&path), "--json"]);
    assert_eq!(v["schema"], "calltape.inspect/1");
    assert_eq!(v["read_from"], "footer");
    assert!(v["notice"].is_null());
    assert_eq!(v["header"]["session_id"], "inspect-1");
    assert_eq!(v["totals"]["turns"], 3);
    let turns = v["turns"].as_array().unwrap();
    let e2e: Vec<i64> = turns
        .iter()
        .map(|t| t["latency"]["e2e_ns"].as_i64().unwrap())
        .collect();
    assert_eq!(e2e, vec![800_000_000, 2_400_000_000, 1_000_000_000]);
    let slow: Vec<bool> = turns.iter().map(|t| t["slow"].as_bool().unwrap()).collect();
    assert_eq!(slow, vec![false, true, false]);
    let l = &turns[1]["latency"];
    assert_eq!(l["eou_ns"], 400_000_000);
    assert_eq!(l["llm_ttft_ns"], 1_000_000_000);
    assert_eq!(l["tool_ns"], 400_000_000);
    assert_eq!(l["tts_ttfb_ns"], 400_000_000);
    assert_eq!(l["rest_ns"], 200_000_000);
    let kinds: Vec<(&str, Option<u64>)> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["turn"].as_u64()))
        .collect();
    assert!(kinds.contains(&("slow_turn", Some(2))), "{kinds:?}");
    assert!(kinds.contains(&("tool_errors", Some(2))), "{kinds:?}");

    // a lower threshold flags more turns
    let v = json_of(&["inspect", s(&path), "--json", "--slow", "900ms"]);
    let slow: Vec<bool> = v["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slow"].as_bool().unwrap())
        .collect();
    assert_eq!(slow, vec![false, true, true]);
}

#[test]
fn inspect_table_shows_turns_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_call(dir.path(), &three_turn_call("inspect-2"));
    let out = ok(&["inspect", s(&path)]);
    assert!(out.contains("turn  speaker"), "{out}");
    assert!(out.contains("2.40s"), "{out}");
    assert!(out.contains("SLOW"), "{out}");
    assert!(
        out.contains("turn 2: slow turn: e2e 2.40s > 1.50s"),
        "{out}"
    );
}

#[test]
fn inspect_of_a_damaged_archive_scans_and_says_so() {
    let v = json_of(&["inspect", s(&vector("truncated.calltape")), "--json"]);
    assert_eq!(v["read_from"], "scan");
    assert!(
        v["notice"].as_str().unwrap().contains("no usable footer"),
        "{v}"
    );
    assert!(v["recovery"]["lost_bytes"].as_u64().unwrap() > 0);
    assert!(v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "scanned"));
    let out = ok(&["inspect", s(&vector("truncated.calltape"))]);
    assert!(
        out.starts_with("NOTICE: this archive has no usable footer"),
        "{out}"
    );
}

#[test]
fn inspect_marks_metric_flags_from_the_archive() {
    // a sample whose e2e metrics are impossible: playback before the user stopped talking
    let mut spec = three_turn_call("neg-1");
    spec.turns.truncate(1);
    let dir = tempfile::tempdir().unwrap();
    let mut recs = records(&spec);
    for r in &mut recs {
        if let calltape_format::Record::StageTiming(st) = &mut r.record {
            if st.stage == calltape_format::Stage::Playback {
                st.start_ns = 1_000 * MS; // before the vad end at 2.0 s
            }
        }
    }
    let mut w = calltape_format::ArchiveWriter::new(Vec::new(), header(&spec)).unwrap();
    for r in &recs {
        w.write(r).unwrap();
    }
    let path = dir.path().join("neg.calltape");
    std::fs::write(&path, w.finish().unwrap().0).unwrap();
    let v = json_of(&["inspect", s(&path), "--json"]);
    let metrics: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "metric")
        .map(|f| f["metric"].as_str().unwrap())
        .collect();
    assert!(metrics.contains(&"negative_e2e"), "{v}");
}

#[test]
fn verify_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_call(dir.path(), &three_turn_call("verify-1"));
    let out = run(&["verify", s(&good)], &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("summary  matches the records"));

    let out = run(&["verify", s(&vector("truncated.calltape"))], &[]);
    assert_eq!(code(&out), 3);
    let out = run(&["verify", s(&vector("bad_crc.calltape")), "--json"], &[]);
    assert_eq!(code(&out), 3);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "damaged");
    assert_eq!(v["chunks"]["bad"], 1);
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "chunk")
        .unwrap()
        .clone();
    assert_eq!(p["chunk"], 1);
    assert_eq!(p["lane"], 0);
    assert!(p["message"].as_str().unwrap().contains("checksum"), "{p}");
    assert!(p["offset"].as_u64().unwrap() > 12);

    let garbage = dir.path().join("garbage.calltape");
    std::fs::write(&garbage, vec![0x42u8; 5000]).unwrap();
    assert_eq!(code(&run(&["verify", s(&garbage)], &[])), 1);
    assert_eq!(
        code(&run(
            &["verify", s(&dir.path().join("missing.calltape"))],
            &[]
        )),
        1
    );

    // a truncated copy of a good archive
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.calltape");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = run(&["verify", s(&cut)], &[]);
    assert_eq!(code(&out), 3);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PROBLEM"));
}

#[test]
fn verify_detects_a_summary_that_disagrees_with_the_records() {
    // the stored summary claims one more error than the records hold
    let spec = three_turn_call("verify-sum");
    let bytes = archive_bytes(&spec);
    let archive = calltape_format::open(&mut std::io::Cursor::new(&bytes)).unwrap();
    let mut summary = archive.summary.clone();
    summary.totals.errors += 1;
    let data_end = archive.footer.summary_offset as usize;
    let mut forged = bytes[..data_end].to_vec();
    forged.extend(
        calltape_format::writer::encode_tail(data_end as u64, &summary, &archive.index, 0).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forged.calltape");
    std::fs::write(&path, forged).unwrap();
    let out = run(&["verify", s(&path), "--json"], &[]);
    assert_eq!(code(&out), 3);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary_matches"], false);
    let msg = v["problems"][0]["message"].as_str().unwrap();
    assert!(msg.contains("totals.errors"), "{msg}");
}

#[test]
fn recover_writes_a_closed_copy_and_reports_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cut.calltape");
    std::fs::copy(vector("truncated.calltape"), &input).unwrap();
    let v = json_of(&["recover", s(&input), "--json"]);
    let out = dir.path().join("cut.recovered.calltape");
    assert_eq!(v["output"], s(&out));
    assert_eq!(v["intact"], false);
    assert_eq!(v["chunks_kept"], 3);
    assert!(v["lost_bytes"].as_u64().unwrap() > 0);
    assert!(v["reason"].as_str().unwrap().contains("truncated"));
    // the copy is intact, flagged recovered
    assert_eq!(code(&run(&["verify", s(&out)], &[])), 0);
    let i = json_of(&["inspect", s(&out), "--json"]);
    assert_eq!(i["file"]["recovered"], true);
    assert!(i["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "recovered"));
    // refuses to overwrite without --force
    let again = run(&["recover", s(&input)], &[]);
    assert_eq!(code(&again), 2);
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let explicit = dir.path().join("x.calltape");
    let text = ok(&["recover", s(&input), "-o", s(&explicit)]);
    assert!(text.contains("kept") && text.contains("lost"), "{text}");
}

#[test]
fn samples_inspect_and_verify() {
    let crash = sample("crash_truncated.calltape");
    if !crash.exists() {
        eprintln!("samples not there yet: skipped");
        return;
    }
    assert_eq!(code(&run(&["verify", s(&crash)], &[])), 3);
    for name in ["slow_llm", "barge_in", "misheard", "tool_failure"] {
        let p = sample(&format!("{name}.calltape"));
        assert_eq!(code(&run(&["verify", s(&p)], &[])), 0, "{name}");
    }
    let v = json_of(&["inspect", s(&sample("slow_llm.calltape")), "--json"]);
    assert!(v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "slow_turn"));
}

#[test]
fn diff_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_call(dir.path(), &three_turn_call("diff-a"));
    let b = write_call(dir.path(), &three_turn_call("diff-b"));
    let out = run(&["diff", s(&a), s(&b)], &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));

    // 500 ms slower LLM in turn 3
    let mut slower = three_turn_call("diff-c");
    slower.turns[2].llm += 500;
    let c = write_call(dir.path(), &slower);
    let out = run(&["diff", s(&a), s(&c), "--json"], &[]);
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["differs"], true);
    assert_eq!(v["pairs"][2]["latency_ms"]["llm"]["delta"], 500.0);
    assert_eq!(v["pairs"][2]["latency_ms"]["e2e"]["delta"], 500.0);
    // within a looser threshold it is the same
    assert_eq!(
        code(&run(
            &["diff", s(&a), s(&c), "--max-latency-delta", "600ms"],
            &[]
        )),
        0
    );

    // an extra turn inserted in B: turns still align by text
    let mut extra = three_turn_call("diff-d");
    extra.turns.insert(
        1,
        TurnSpec::new("Can you hear me?", "Yes, I can hear you.", 900),
    );
    let d = write_call(dir.path(), &extra);
    let out = run(&["diff", s(&a), s(&d), "--json"], &[]);
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pairs: Vec<(Option<u64>, Option<u64>)> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["a_turn"].as_u64(), p["b_turn"].as_u64()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Some(1), Some(1)),
            (None, Some(2)),
            (Some(2), Some(3)),
            (Some(3), Some(4))
        ]
    );

    // misheard text
    let mut misheard = three_turn_call("diff-e");
    misheard.turns[1].user_text = "I want a refill for my prescription".into();
    let e = write_call(dir.path(), &misheard);
    let out = run(&["diff", s(&a), s(&e)], &[]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user text"), "{text}");

    // unreadable input
    assert_eq!(
        code(&run(
            &["diff", s(&a), s(&dir.path().join("nope.calltape"))],
            &[]
        )),
        2
    );
}

#[test]
fn inspect_audio_check_measures_the_heard_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = three_turn_call("heard-1");
    spec.audio = true;
    let path = write_call(dir.path(), &spec);
    let v = json_of(&["inspect", s(&path), "--json", "--audio-check"]);
    for t in v["turns"].as_array().unwrap() {
        assert_eq!(t["audio_gap_ns"], t["latency"]["e2e_ns"], "{t}");
    }
    assert!(!v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "audio_gap_mismatch"));

    // the agent's audio really starts 600 ms after what its playback metric says
    spec.session_id = "heard-2".into();
    spec.agent_audio_delay_ms = 600;
    let path = write_call(dir.path(), &spec);
    let v = json_of(&["inspect", s(&path), "--json", "--audio-check"]);
    let t = &v["turns"][0];
    assert_eq!(
        t["audio_gap_ns"].as_i64().unwrap(),
        t["latency"]["e2e_ns"].as_i64().unwrap() + 600_000_000
    );
    let turns: Vec<u64> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "audio_gap_mismatch")
        .map(|f| f["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, vec![1, 2, 3]);
    let text = ok(&["inspect", s(&path), "--audio-check"]);
    assert!(text.contains("heard") && text.contains("HEARD≠"), "{text}");
}
