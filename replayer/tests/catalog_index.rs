//! The catalog built from real archives in a directory: incremental indexing, damaged
//! archives, ls filters, stats numbers against hand-computed values, read-only SQL, and
//! resolving a session id for `replay`.

mod cli_support;

use std::path::Path;

use cli_support::*;
use serde_json::Value;

const DAY_NS: i64 = 86_400_000_000_000;

/// Six calls over three days and two agents, plus one damaged file.
///
/// | call | day | agent@version | e2e per turn (ms)   | notes                         |
/// |------|-----|---------------|---------------------|-------------------------------|
/// | c1   | 0   | bot-a@1       | 800, 2400, 1000     | lookup_order fails (turn 2)   |
/// | c2   | 0   | bot-a@1       | 500, 600            |                               |
/// | c3   | 1   | bot-a@2       | 1200                | outcome escalated             |
/// | c4   | 1   | bot-b@1       | 3000, 700           | error event, "refund" text    |
/// | c5   | 2   | bot-b@1       | 900                 | lookup_order ok               |
/// | c6   | 2   | bot-b@1       | 1600, 1100          |                               |
fn corpus(dir: &Path) {
    let mk = |id: &str, day: i64, agent: &str, version: &str, e2e: &[u64]| {
        let turns = e2e
            .iter()
            .enumerate()
            .map(|(i, &ms)| {
                TurnSpec::new(&format!("question {i} of {id}"), &format!("answer {i}"), ms)
            })
            .collect();
        let mut c = CallSpec::new(id, turns);
        c.started_unix_ns = T0_UNIX_NS + day * DAY_NS;
        c.agent = agent.into();
        c.version = version.into();
        c
    };
    let mut c1 = three_turn_call("c1");
    c1.agent = "bot-a".into();
    c1.version = "1".into();
    let c2 = mk("c2", 0, "bot-a", "1", &[500, 600]);
    let mut c3 = mk("c3", 1, "bot-a", "2", &[1200]);
    c3.outcome = "escalated".into();
    let mut c4 = mk("c4", 1, "bot-b", "1", &[3000, 700]);
    c4.turns[0].user_text = "I need a refund now".into();
    c4.turns[0].error = true;
    let mut c5 = mk("c5", 2, "bot-b", "1", &[900]);
    c5.turns[0].tool = Some(("lookup_order", false, 50));
    c5.turns[0].rest -= 50;
    let c6 = mk("c6", 2, "bot-b", "1", &[1600, 1100]);
    for c in [c1, c2, c3, c4, c5, c6] {
        write_call(dir, &c);
    }
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::copy(
        vector("truncated.calltape"),
        dir.join("nested/broken.calltape"),
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not an archive, not indexed").unwrap();
}

fn cat_args<'a>(catalog: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--catalog", catalog]);
    v
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn index_is_incremental_and_lists_damaged_archives() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    corpus(&calls);
    let catalog = dir.path().join("cat/catalog.sqlite");
    let c = s(&catalog);
    let v = json_of(&cat_args(c, &["index", s(&calls), "--json"]));
    assert_eq!(
        (
            v["listed"].as_u64(),
            v["indexed"].as_u64(),
            v["damaged"].as_u64()
        ),
        (Some(7), Some(6), Some(1))
    );
    let damaged = v["damaged_archives"].as_array().unwrap();
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0]["location"]
        .as_str()
        .unwrap()
        .ends_with("nested/broken.calltape"));
    assert!(damaged[0]["reason"].as_str().unwrap().contains("footer"));

    let v = json_of(&cat_args(c, &["index", s(&calls), "--json"]));
    assert_eq!(
        (
            v["indexed"].as_u64(),
            v["unchanged"].as_u64(),
            v["damaged"].as_u64()
        ),
        (Some(0), Some(7), Some(0))
    );

    // one archive rewritten (different size), one deleted
    let mut c2 = CallSpec::new("c2", vec![TurnSpec::new("only one turn now", "ok", 450)]);
    c2.agent = "bot-a".into();
    c2.version = "1".into();
    write_call(&calls, &c2);
    std::fs::remove_file(calls.join("c6.calltape")).unwrap();
    let v = json_of(&cat_args(c, &["index", s(&calls), "--json"]));
    assert_eq!(
        (
            v["indexed"].as_u64(),
            v["unchanged"].as_u64(),
            v["removed"].as_u64()
        ),
        (Some(1), Some(5), Some(1))
    );
    let turns = json_of(&cat_args(
        c,
        &[
            "sql",
            "SELECT turns FROM sessions WHERE session_id = 'c2'",
            "--json",
        ],
    ));
    assert_eq!(turns[0]["turns"], 1);
    let n = json_of(&cat_args(
        c,
        &["sql", "SELECT count(*) AS n FROM sessions", "--json"],
    ));
    assert_eq!(n[0]["n"], 5);
}

#[test]
fn ls_filters() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let catalog = dir.path().join("catalog.sqlite");
    let c = s(&catalog);
    ok(&cat_args(c, &["index", s(dir.path())]));
    let ls = |args: &[&str]| ids(&json_of(&cat_args(c, &[&["ls", "--json"], args].concat())));
    assert_eq!(ls(&[]), ["c1", "c2", "c3", "c4", "c5", "c6"]);
    assert_eq!(ls(&["--since", "2026-11-22"]), ["c3", "c4", "c5", "c6"]);
    assert_eq!(ls(&["--until", "2026-11-22"]), ["c1", "c2", "c3", "c4"]);
    assert_eq!(
        ls(&["--since", "2026-11-22", "--until", "2026-11-22"]),
        ["c3", "c4"]
    );
    assert_eq!(ls(&["--agent", "bot-a"]), ["c1", "c2", "c3"]);
    assert_eq!(ls(&["--agent", "bot-a@2"]), ["c3"]);
    assert_eq!(ls(&["--outcome", "escalated"]), ["c3"]);
    assert_eq!(ls(&["--slow", "1.5s"]), ["c1", "c4", "c6"]);
    assert_eq!(ls(&["--slow", "2.5s"]), ["c4"]);
    assert_eq!(ls(&["--errors"]), ["c1", "c4"]);
    assert_eq!(ls(&["--text", "refund"]), ["c1", "c4"]);
    assert_eq!(ls(&["--text", "refund now"]), ["c4"]);
    assert_eq!(ls(&["--id", "c"]).len(), 6);
    assert_eq!(ls(&["--id", "c5"]), ["c5"]);
    assert_eq!(ls(&["--limit", "2"]).len(), 2);
    // relative times: everything is in the past
    assert_eq!(ls(&["--since", "100000d"]).len(), 6);
    // newest first in the table
    let table = ok(&cat_args(c, &["ls"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("session"), "{table}");
    assert!(
        lines[1].starts_with("c5") || lines[1].starts_with("c6"),
        "{table}"
    );
    let damaged = ok(&cat_args(c, &["ls", "--damaged", "--id", "zzz"]));
    assert!(damaged.contains("broken.calltape"), "{damaged}");
}

#[test]
fn stats_match_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let catalog = dir.path().join("catalog.sqlite");
    let c = s(&catalog);
    ok(&cat_args(c, &["index", s(dir.path()), "--deep"]));
    let prices = dir.path().join("prices.toml");
    std::fs::write(
        &prices,
        "currency = \"EUR\"\nstt_per_minute = 0.01\ntts_per_character = 0.001\n\
         [models.\"gpt-test\"]\nprompt_per_1m_tokens = 1000.0\ncompletion_per_1m_tokens = 2000.0\ncached_per_1m_tokens = 500.0\n",
    )
    .unwrap();
    let v = json_of(&cat_args(c, &["stats", "--json", "--prices", s(&prices)]));
    assert_eq!(v["schema"], "calltape.stats/1");
    let g = &v["groups"][0];
    assert_eq!(g["key"], "all");
    assert_eq!(g["sessions"], 6);
    assert_eq!(g["turns"], 11);
    // e2e sorted: 500 600 700 800 900 1000 1100 1200 1600 2400 3000 (c1 turn 2 is 2000 + 400 tool)
    let e2e = &g["latency_ms"]["e2e"];
    assert_eq!(e2e["count"], 11);
    assert_eq!(e2e["p50"], 1000.0); // rank ceil(5.5) = 6
    assert_eq!(e2e["p95"], 3000.0); // rank ceil(10.45) = 11
    assert_eq!(e2e["p99"], 3000.0);
    assert_eq!(e2e["max"], 3000.0);
    // llm = e2e / 2 (c1 turn 2: 1000); sorted 250 300 350 400 450 500 550 600 800 1000 1500
    let llm = &g["latency_ms"]["llm"];
    assert_eq!(llm["p50"], 500.0);
    assert_eq!(llm["p95"], 1500.0);
    // slow (> 1.5 s): 2400, 3000, 1600
    assert_eq!(g["slow_turns"], 3);
    assert!((g["slow_turn_rate"].as_f64().unwrap() - 3.0 / 11.0).abs() < 1e-12);
    assert_eq!(g["tool_calls"], 2);
    assert_eq!(g["tool_errors"], 1);
    assert_eq!(g["tool_failure_rate"], 0.5);
    assert_eq!(g["errors"], 1);
    let tools = v["tool_failures_by_tool"].as_array().unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["tool"], "lookup_order");
    assert_eq!(
        (tools[0]["calls"].as_i64(), tools[0]["errors"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["tools_incomplete"], false);
    // usage: 11 turns × (100 prompt, 50 cached, 20 completion, 1.5 s STT)
    assert_eq!(g["usage"]["prompt_tokens"], 1100);
    assert_eq!(g["usage"]["completion_tokens"], 220);
    assert_eq!(g["usage"]["cached_tokens"], 550);
    assert!((g["usage"]["stt_audio_seconds"].as_f64().unwrap() - 16.5).abs() < 1e-9);
    let chars = g["usage"]["tts_characters"].as_f64().unwrap();
    let cost = &g["cost"];
    assert_eq!(v["currency"], "EUR");
    let llm_cost = 550.0 * 1000.0 / 1e6 + 550.0 * 500.0 / 1e6 + 220.0 * 2000.0 / 1e6;
    assert!(
        (cost["llm"].as_f64().unwrap() - llm_cost).abs() < 1e-9,
        "{cost}"
    );
    assert!((cost["tts"].as_f64().unwrap() - chars * 0.001).abs() < 1e-9);
    assert!((cost["stt"].as_f64().unwrap() - 16.5 / 60.0 * 0.01).abs() < 1e-9);

    // by agent
    let v = json_of(&cat_args(c, &["stats", "--json", "--by", "agent"]));
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["key"], "bot-a");
    // bot-a e2e: 500 600 800 1000 1200 2400 → p50 rank 3 = 800, p95 rank 6 = 2400
    assert_eq!(groups[0]["latency_ms"]["e2e"]["p50"], 800.0);
    assert_eq!(groups[0]["latency_ms"]["e2e"]["p95"], 2400.0);
    assert_eq!(groups[1]["key"], "bot-b");
    assert_eq!(groups[1]["turns"], 5);
    // by day and version
    let v = json_of(&cat_args(c, &["stats", "--json", "--by", "day"]));
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["2026-11-21", "2026-11-22", "2026-11-23"]);
    let v = json_of(&cat_args(
        c,
        &["stats", "--json", "--by", "version", "--agent", "bot-a"],
    ));
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["bot-a@1", "bot-a@2"]);
    let text = ok(&cat_args(c, &["stats"]));
    assert!(
        text.contains("p95") && text.contains("lookup_order"),
        "{text}"
    );
}

#[test]
fn sql_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let catalog = dir.path().join("catalog.sqlite");
    let c = s(&catalog);
    ok(&cat_args(c, &["index", s(dir.path())]));
    for stmt in [
        "DELETE FROM sessions",
        "UPDATE turns SET e2e_ms = 0",
        "DROP TABLE turns",
        "INSERT INTO damaged VALUES ('x', 1, NULL, NULL, 'r', 'now')",
        "CREATE TABLE x (a)",
    ] {
        let out = run(&cat_args(c, &["sql", stmt]), &[]);
        assert_ne!(code(&out), 0, "{stmt} was allowed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("read-only") || err.contains("readonly"),
            "{stmt}: {err}"
        );
    }
    let v = json_of(&cat_args(
        c,
        &["sql", "SELECT count(*) AS n FROM sessions", "--json"],
    ));
    assert_eq!(v[0]["n"], 6);
    let table = ok(&cat_args(
        c,
        &[
            "sql",
            "SELECT session_id, turns FROM sessions ORDER BY session_id",
        ],
    ));
    assert!(
        table.starts_with("session_id  turns\nc1              3\n"),
        "{table}"
    );
    let bad = run(&cat_args(c, &["sql", "SELEC nonsense"]), &[]);
    assert_eq!(code(&bad), 2);
}

#[test]
fn resolve_session_finds_locations_by_id_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["sess-aaa-1", "sess-aab-2", "other"] {
        write_call(dir.path(), &three_turn_call(id));
    }
    let catalog = dir.path().join("catalog.sqlite");
    ok(&cat_args(s(&catalog), &["index", s(dir.path())]));
    let found = calltape::catalog::resolve_session(Some(&catalog), "other")
        .unwrap()
        .unwrap();
    assert!(found.ends_with("other.calltape"), "{found}");
    let found = calltape::catalog::resolve_session(Some(&catalog), "sess-aaa")
        .unwrap()
        .unwrap();
    assert!(found.ends_with("sess-aaa-1.calltape"));
    let err = calltape::catalog::resolve_session(Some(&catalog), "sess-aa").unwrap_err();
    assert!(
        err.to_string().contains("sess-aaa-1") && err.to_string().contains("sess-aab-2"),
        "{err}"
    );
    assert_eq!(
        calltape::catalog::resolve_session(Some(&catalog), "nope").unwrap(),
        None
    );
    assert_eq!(
        calltape::catalog::resolve_session(Some(&dir.path().join("none.sqlite")), "other").unwrap(),
        None
    );
}

#[test]
fn catalog_commands_without_a_catalog_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["ls", "--catalog", s(&dir.path().join("missing.sqlite"))],
        &[],
    );
    assert_ne!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("calltape index"));
    // the env var and XDG_DATA_HOME pick the catalog
    write_call(dir.path(), &three_turn_call("env-1"));
    let xdg = dir.path().join("xdg");
    let env = vec![("XDG_DATA_HOME".to_string(), s(&xdg).to_string())];
    assert!(run(&["index", s(dir.path())], &env).status.success());
    assert!(xdg.join("calltape/catalog.sqlite").exists());
    let out = run(&["ls", "--json"], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("env-1"));
    let env2 = vec![(
        "CALLTAPE_CATALOG".to_string(),
        s(&xdg.join("calltape/catalog.sqlite")).to_string(),
    )];
    let out = run(&["ls", "--json"], &env2);
    assert!(String::from_utf8_lossy(&out.stdout).contains("env-1"));
}
