//! Every view of a call tells the same story (issue: one source of truth). For every sample,
//! every vector that opens and every imported fixture, `inspect --json`, the catalog (`turns`,
//! `--deep` `tool_calls` and `errors`), the TUI's turn details, the OTLP export and the
//! Perfetto export must agree turn by turn on: errors, interruption, tool calls (names) and
//! tool failures, latency flags and the reported-e2e mismatch.

mod cli_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calltape::call::{control_records, open_call};
use calltape::tui::model::TurnDetail;
use calltape_format::call::{classify, TurnTimeline};
use calltape_format::Record;
use cli_support::{ok, repo, s};
use serde_json::Value;

/// What a view says about one turn.
#[derive(Debug, Clone, Default, PartialEq)]
struct TurnView {
    errors: u64,
    interrupted: bool,
    /// Tool names, sorted.
    tools: Vec<String>,
    tool_errors: u64,
    /// Latency flags, sorted.
    flags: Vec<String>,
    reported_mismatch: bool,
}

type CallView = BTreeMap<u64, TurnView>;

fn str_list(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) if !s.is_empty() => s.split(',').map(String::from).collect(),
        _ => Vec::new(),
    };
    out.sort();
    out
}

fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_i64().map(|i| i.max(0) as u64))
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn truthy(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| num(v) != 0)
}

/// The archives to check: samples, vectors that open, and imports of every fixture.
fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("samples/archives")).unwrap() {
        out.push(entry.unwrap().path());
    }
    for v in [
        "minimal",
        "full",
        "audio",
        "audio_rice",
        "audio_lpc",
        "unknown_kind",
        "unknown_encoding",
        "truncated",
    ] {
        out.push(cli_support::vector(&format!("{v}.calltape")));
    }
    let fixtures = repo().join("replayer/import/tests/fixtures");
    let mut imports: Vec<(&str, PathBuf)> = Vec::new();
    for (kind, ext) in [
        ("livekit", "json"),
        ("pipecat", "whisk"),
        ("pipecat", "jsonl"),
    ] {
        for entry in std::fs::read_dir(fixtures.join(kind)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some(ext) {
                imports.push((kind, p));
            }
        }
    }
    imports.push((
        "livekit",
        fixtures.join("livekit/console/session_report.json"),
    ));
    for (i, (kind, src)) in imports.iter().enumerate() {
        let dst = dir.join(format!("import-{i}-{kind}.calltape"));
        ok(&["import", kind, s(src), "-o", s(&dst)]);
        out.push(dst);
    }
    out.sort();
    out
}

fn inspect_view(path: &Path) -> CallView {
    let v = cli_support::json_of(&["inspect", s(path), "--json"]);
    let mismatched: Vec<u64> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "reported_e2e_mismatch")
        .map(|f| num(&f["turn"]))
        .collect();
    v["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let turn = num(&t["turn"]);
            let mut tools: Vec<String> = t["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect();
            tools.sort();
            assert_eq!(
                tools.len() as u64,
                num(&t["tool_calls"]),
                "{path:?} turn {turn}"
            );
            (
                turn,
                TurnView {
                    errors: num(&t["errors"]),
                    interrupted: truthy(&t["interrupted"]),
                    tools,
                    tool_errors: num(&t["tool_errors"]),
                    flags: str_list(&t["latency"]["flags"]),
                    reported_mismatch: mismatched.contains(&turn),
                },
            )
        })
        .collect()
}

fn sql(catalog: &Path, query: &str) -> Vec<Value> {
    let v = cli_support::json_of(&["sql", "--catalog", s(catalog), "--json", query]);
    match v {
        Value::Array(rows) => rows,
        other => other["rows"].as_array().cloned().unwrap_or_default(),
    }
}

/// Per location: the catalog's view, from `turns`, `tool_calls` and `errors`.
fn catalog_views(catalog: &Path) -> BTreeMap<String, CallView> {
    let mut out: BTreeMap<String, CallView> = BTreeMap::new();
    for r in sql(
        catalog,
        "SELECT s.location, t.turn, t.errors, t.interrupted, t.tool_calls, t.tool_errors, t.flags, \
         t.reported_e2e_ms, t.e2e_ms, t.e2e_valid FROM turns t JOIN sessions s USING (sid)",
    ) {
        let view = out
            .entry(r["location"].as_str().unwrap().to_string())
            .or_default();
        let reported = r["reported_e2e_ms"].as_f64();
        let e2e = r["e2e_ms"].as_f64().filter(|_| truthy(&r["e2e_valid"]));
        view.insert(
            num(&r["turn"]),
            TurnView {
                errors: num(&r["errors"]),
                interrupted: truthy(&r["interrupted"]),
                tools: Vec::new(),
                tool_errors: num(&r["tool_errors"]),
                flags: str_list(&r["flags"]),
                reported_mismatch: matches!((reported, e2e), (Some(a), Some(b)) if (a - b).abs() > 250.0),
            },
        );
        // the deep tables below must account for every tool call the turns table counts
        view.get_mut(&num(&r["turn"])).unwrap().tools =
            vec![String::new(); num(&r["tool_calls"]) as usize];
    }
    for view in out.values_mut() {
        for t in view.values_mut() {
            t.tools.clear();
        }
    }
    for r in sql(
        catalog,
        "SELECT s.location, c.turn, c.name FROM tool_calls c JOIN sessions s USING (sid)",
    ) {
        let view = out.get_mut(r["location"].as_str().unwrap()).unwrap();
        let turn = num(&r["turn"]);
        view.entry(turn)
            .or_default()
            .tools
            .push(r["name"].as_str().unwrap().into());
        view.get_mut(&turn).unwrap().tools.sort();
    }
    // the deep errors table agrees with the per-turn counts
    let mut deep_errors: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for r in sql(
        catalog,
        "SELECT s.location, e.turn FROM errors e JOIN sessions s USING (sid) WHERE e.turn IS NOT NULL",
    ) {
        *deep_errors
            .entry((r["location"].as_str().unwrap().into(), num(&r["turn"])))
            .or_default() += 1;
    }
    for (loc, view) in &out {
        for (turn, t) in view {
            assert_eq!(
                deep_errors.get(&(loc.clone(), *turn)).copied().unwrap_or(0),
                t.errors,
                "{loc} turn {turn}: catalog errors table vs turns table"
            );
        }
    }
    out
}

fn tui_view(path: &Path) -> CallView {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let call = open_call(s(path)).await.expect("opens");
        let records = control_records(&call.source, &call.archive).await.unwrap();
        let timeline = TurnTimeline::of(&call.archive.summary);
        let turn_ends: BTreeMap<u32, bool> = records
            .iter()
            .filter_map(|r| match &r.record {
                Record::TurnEnd(e) => Some((e.turn, classify::is_interruption(&r.record))),
                _ => None,
            })
            .collect();
        call.archive
            .summary
            .turns
            .iter()
            .map(|t| {
                let d = TurnDetail::collect(t.turn, &timeline, &records);
                let errors = d
                    .events
                    .iter()
                    .map(|(_, e)| Record::Event(e.clone()))
                    .chain(d.logs.iter().map(|(_, l)| Record::Log(l.clone())))
                    .filter(classify::is_error)
                    .count() as u64;
                let interrupted = d.events.iter().any(|(_, e)| e.name == "interruption")
                    || d.transcripts.iter().any(|(_, x)| x.interrupted)
                    || turn_ends.get(&t.turn).copied().unwrap_or(false);
                let mut tools: Vec<String> = d.tools.iter().map(|c| c.name.clone()).collect();
                tools.sort();
                (
                    u64::from(t.turn),
                    TurnView {
                        errors,
                        interrupted,
                        tools,
                        tool_errors: d.tools.iter().filter(|c| c.is_error).count() as u64,
                        // the TUI draws the summary's flags and mismatch
                        flags: {
                            let mut f: Vec<String> =
                                t.latency.flags.iter().map(|f| f.to_string()).collect();
                            f.sort();
                            f
                        },
                        reported_mismatch: t.latency.reported_mismatch(),
                    },
                )
            })
            .collect()
    })
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let v = &a["value"];
            v.get("stringValue")
                .or(v.get("intValue"))
                .or(v.get("boolValue"))
                .or(v.get("doubleValue"))
                .unwrap_or(v)
        })
}

fn otlp_view(path: &Path) -> CallView {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spans = v["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap();
    let mut by_id: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = CallView::new();
    for sp in spans.iter().filter(|sp| sp["name"] == "turn") {
        let turn = num(attr(sp, "turn.number").unwrap());
        by_id.insert(sp["spanId"].as_str().unwrap().into(), turn);
        let errors = sp["events"]
            .as_array()
            .map(|e| e.iter().filter(|e| e["name"] == "exception").count())
            .unwrap_or(0) as u64;
        out.insert(
            turn,
            TurnView {
                errors,
                interrupted: truthy(attr(sp, "turn.was_interrupted").unwrap()),
                tools: Vec::new(),
                tool_errors: num(attr(sp, "turn.tool_errors").unwrap()),
                flags: attr(sp, "calltape.latency.flags")
                    .map(str_list)
                    .unwrap_or_default(),
                // the exports carry both values, not the judgement
                reported_mismatch: false,
            },
        );
    }
    for sp in spans {
        if let (Some(name), Some(turn)) = (
            attr(sp, "gen_ai.tool.name").and_then(Value::as_str),
            sp["parentSpanId"].as_str().and_then(|p| by_id.get(p)),
        ) {
            out.get_mut(turn).unwrap().tools.push(name.into());
        }
    }
    for t in out.values_mut() {
        t.tools.sort();
    }
    out
}

fn perfetto_view(path: &Path) -> CallView {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = CallView::new();
    let events = v["traceEvents"].as_array().unwrap();
    for e in events.iter().filter(|e| e["cat"] == "turn") {
        let a = &e["args"];
        out.insert(
            num(&a["turn"]),
            TurnView {
                interrupted: truthy(&a["interrupted"]),
                flags: str_list(&a["flags"]),
                ..TurnView::default()
            },
        );
    }
    for e in events {
        let a = &e["args"];
        let Some(t) = a.get("turn").map(num).and_then(|t| out.get_mut(&t)) else {
            continue;
        };
        let name = e["name"].as_str().unwrap_or_default();
        // error instants, less the recorder's drops and tool failures (counted apart)
        if e["cat"] == "error"
            && e["ph"] == "i"
            && !name.starts_with("dropped")
            && !name.starts_with("tool error")
        {
            t.errors += 1;
        }
        if e["cat"] == "tool" {
            t.tools.push(a["name"].as_str().unwrap_or_default().into());
            if truthy(&a["is_error"]) {
                t.tool_errors += 1;
            }
        }
    }
    for t in out.values_mut() {
        t.tools.sort();
    }
    out
}

/// Compares `other` with the reference view on the fields `fields` picks.
fn agree(
    path: &Path,
    what: &str,
    reference: &CallView,
    other: &CallView,
    fields: fn(&TurnView) -> TurnView,
) {
    let pick = |v: &CallView| -> BTreeMap<u64, TurnView> {
        v.iter().map(|(k, t)| (*k, fields(t))).collect()
    };
    assert_eq!(
        pick(reference),
        pick(other),
        "{}: inspect --json and {what} disagree",
        path.display()
    );
}

#[test]
fn every_view_tells_the_same_story() {
    let dir = tempfile::tempdir().unwrap();
    let archives = archives(dir.path());
    assert!(archives.len() >= 20, "{} archives", archives.len());
    let catalog = dir.path().join("catalog.sqlite");
    let mut index_args = vec!["index", "--catalog", s(&catalog), "--deep"];
    index_args.extend(archives.iter().map(|p| s(p)));
    cli_support::run(&index_args, &[]);
    let catalog = catalog_views(&catalog);
    let mut checked = 0;
    let mut with_tools = 0;
    let mut with_errors = 0;
    let mut interrupted = 0;
    for path in &archives {
        let reference = inspect_view(path);
        agree(
            path,
            "the TUI turn details",
            &reference,
            &tui_view(path),
            |t| t.clone(),
        );
        let location = std::fs::canonicalize(path).unwrap();
        let in_catalog = catalog.get(s(&location)).or_else(|| catalog.get(s(path)));
        if let Some(c) = in_catalog {
            agree(path, "the catalog", &reference, c, |t| t.clone());
        }
        let otlp = dir.path().join("otlp.json");
        let perfetto = dir.path().join("perfetto.json");
        ok(&[
            "export",
            s(path),
            "--otlp",
            s(&otlp),
            "--perfetto",
            s(&perfetto),
        ]);
        agree(
            path,
            "the OTLP export",
            &reference,
            &otlp_view(&otlp),
            |t| TurnView {
                reported_mismatch: false,
                ..t.clone()
            },
        );
        agree(
            path,
            "the Perfetto export",
            &reference,
            &perfetto_view(&perfetto),
            |t| TurnView {
                reported_mismatch: false,
                ..t.clone()
            },
        );
        checked += 1;
        with_tools += reference.values().filter(|t| !t.tools.is_empty()).count();
        with_errors += reference.values().filter(|t| t.errors > 0).count();
        interrupted += reference.values().filter(|t| t.interrupted).count();
    }
    // the corpus exercises what is compared
    assert!(checked >= 20);
    assert!(with_tools >= 3, "turns with tool calls: {with_tools}");
    assert!(with_errors >= 1, "turns with errors: {with_errors}");
    assert!(interrupted >= 2, "interrupted turns: {interrupted}");
}
