//! The `tracing` feature: log events inside a session's span land in its archive.
#![cfg(feature = "tracing")]

mod common;

use calltape_format::Record;
use calltape_recorder::Recorder;
use common::*;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn log_events_of_a_session_span_are_recorded() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(spool.path())
        .retry_interval(None)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("traced")).unwrap();
    let subscriber =
        tracing_subscriber::registry().with(rec.tracing_layer().with_span_stages(true));
    tracing::subscriber::with_default(subscriber, || {
        let call = tracing::info_span!("call", calltape.session = "traced");
        let _g = call.enter();
        {
            let llm = tracing::info_span!("llm", turn = 3u64);
            let _g = llm.enter();
            tracing::warn!(model = "m1", "slow first token");
        }
        tracing::info!("outside any turn");
    });
    tracing::info!("not in a session: ignored");
    let report = s.finish().await.unwrap();
    let rb = read_back(&std::fs::read(dest.path().join(&report.upload.key)).unwrap());
    let logs: Vec<_> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0].message, "slow first token");
    assert_eq!(logs[0].level, "warn");
    assert_eq!(logs[0].turn, Some(3));
    assert_eq!(logs[0].fields["model"], "m1");
    assert_eq!(logs[1].message, "outside any turn");
    let stages: Vec<_> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::StageTiming(t) => Some((t.stage.to_string(), t.turn)),
            _ => None,
        })
        .collect();
    assert!(stages.contains(&("llm".to_string(), Some(3))), "{stages:?}");
}
