//! Turns as the archive's summary sees them, for calls recorded through the public API: the
//! call README.md and the crate docs show gets a complete latency breakdown, and
//! `transcript_in` ties a transcript to the turn it belongs to.

mod common;

use calltape_format::Record;
use calltape_recorder::{Recorder, Speaker, Stage};
use common::*;

async fn record(id: &str, calls: impl FnOnce(&calltape_recorder::Session)) -> ReadBack {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(spool.path())
        .retry_interval(None)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info(id)).unwrap();
    calls(&s);
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded(), "{report:?}");
    assert_eq!((report.dropped_samples, report.dropped_records), (0, 0));
    read_back(&std::fs::read(dest.path().join(&report.upload.key)).unwrap())
}

/// The calls of README.md's "Using it" example and of the doc example in `src/lib.rs`, with
/// real (non-silent) audio on both tracks and explicit times: the user speaks for 1 s, the
/// LLM's first token comes 350 ms after the final transcript, and the agent's audio starts
/// 400 ms after the user stopped. No playback stage is recorded: the agent's first audio is
/// when the agent started answering.
#[tokio::test]
async fn the_readme_call_gets_a_complete_latency_breakdown() {
    let rb = record("readme-call", |s| {
        s.at(0).turn_start(1, Speaker::User);
        speak(s, 1, 0, 1_000);
        s.at(1_000 * MS)
            .transcript(Speaker::User, "What is my balance?", true);
        let mut llm = s.at(1_050 * MS).stage(1, Stage::Llm);
        llm.first_token_at(1_350 * MS);
        llm.end_at(1_600 * MS);
        speak(s, 2, 1_400, 2_400);
        s.at(1_400 * MS)
            .transcript(Speaker::Agent, "Your balance is $2,410.", true);
        s.at(2_400 * MS).turn_end(1);
        s.at(2_400 * MS).end("agent_hangup", Some("resolved"));
    })
    .await;
    let turns = &rb.archive.summary.turns;
    assert_eq!(turns.len(), 1, "{turns:?}");
    let l = &turns[0].latency;
    assert_eq!(l.agent_audio_start_ns, Some(1_400 * MS), "{l:?}");
    assert_eq!(l.llm_ttft_ns, Some(300 * MS as i64), "{l:?}");
    assert!(l.user_speech_end_ns.is_some(), "{l:?}");
    let e2e = l.valid_e2e_ns().expect("a valid e2e");
    assert!(e2e > 0, "{l:?}");
    assert!(l.flags.is_empty(), "{l:?}");
}

#[tokio::test]
async fn transcript_in_ties_a_transcript_to_its_turn() {
    let rb = record("late-transcript", |s| {
        s.at(0).turn_start(1, Speaker::User);
        s.at(900 * MS)
            .transcript(Speaker::User, "book a table", true);
        s.at(1_000 * MS).turn_end(1);
        s.at(3_000 * MS).turn_start(2, Speaker::User);
        // the agent's words of turn 1, known only once turn 2 has begun
        s.at(3_100 * MS)
            .transcript_in(1, Speaker::Agent, "for how many?", true);
        s.transcript_in(2, Speaker::User, "four people", true);
        s.at(4_000 * MS).turn_end(2);
    })
    .await;
    let tied: Vec<(Option<u32>, String)> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Transcript(t) => Some((t.turn, t.text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        tied,
        vec![
            (None, "book a table".to_string()),
            (Some(1), "for how many?".to_string()),
            (Some(2), "four people".to_string()),
        ]
    );
    let turns = &rb.archive.summary.turns;
    assert_eq!(turns.len(), 2, "{turns:?}");
    assert_eq!(turns[0].agent_text, "for how many?");
    assert_eq!(turns[1].agent_text, "");
    assert_eq!(turns[1].user_text, "four people");
}
