//! A synthetic catalog for benchmarks: `calls` calls × 10 user turns over 4 agents and 30
//! days, with plausible stage latencies, written straight into the schema (no archives).
//! Kept beside the schema so the two change together.

use std::path::Path;

use rusqlite::params;

use super::schema;
use calltape_read::error::Result;

/// Creates or extends the catalog at `path` with `calls` synthetic calls (ids `syn-NNNNNN`).
pub fn fill(path: &Path, calls: i64) -> Result<()> {
    let err = |e| schema::err(path, e);
    let conn = schema::open_rw(path)?;
    conn.execute_batch("BEGIN").map_err(err)?;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    {
        let mut sess = conn
            .prepare(
                "INSERT INTO sessions (sid, location, session_id, started_at, started_at_unix_ns,
                    started_day, agent_name, agent_version, duration_ms, turns, records,
                    interruptions, errors, tool_calls, tool_errors, max_e2e_ms, size_bytes, indexed_at)
                 VALUES (?1, ?2, ?3, '2026-11-01T00:00:00Z', ?4, ?5, ?6, '1.0', 60000, 10, 100, 0, 0,
                    1, 0, ?7, 1000, 'now')",
            )
            .map_err(err)?;
        let mut turn = conn
            .prepare(
                "INSERT INTO turns (sid, turn, speaker, start_ms, user_text, agent_text, interrupted,
                    errors, tool_calls, tool_errors, e2e_ms, e2e_valid, eou_ms, stt_ms, llm_ms,
                    tool_ms, tts_ms, rest_ms, flags)
                 VALUES (?1, ?2, 'user', 0, '', '', 0, 0, 0, 0, ?3, 1, ?4, ?5, ?6, NULL, ?7, ?8, '')",
            )
            .map_err(err)?;
        for sid in 1..=calls {
            let day = sid % 30;
            let rows: Vec<[f64; 6]> = (0..10)
                .map(|_| {
                    let eou = 200.0 + (next() % 400) as f64;
                    let stt = (next() % 100) as f64;
                    let llm = 300.0 + (next() % 1500) as f64;
                    let tts = 100.0 + (next() % 300) as f64;
                    let rest = (next() % 200) as f64;
                    [eou + stt + llm + tts + rest, eou, stt, llm, tts, rest]
                })
                .collect();
            let max = rows.iter().map(|r| r[0]).fold(0.0, f64::max);
            sess.execute(params![
                sid,
                format!("s3://bench/{sid}.calltape"),
                format!("syn-{sid:06}"),
                1_793_491_200_000_000_000i64 + day * 86_400_000_000_000,
                format!("2026-11-{:02}", day + 1),
                format!("agent-{}", sid % 4),
                max
            ])
            .map_err(err)?;
            for (t, r) in rows.iter().enumerate() {
                turn.execute(params![
                    sid,
                    t as i64 + 1,
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5]
                ])
                .map_err(err)?;
            }
        }
    }
    conn.execute_batch("COMMIT").map_err(err)?;
    Ok(())
}
