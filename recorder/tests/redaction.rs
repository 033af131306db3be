//! With `redact_pii`, no phone, card or e-mail recorded anywhere a session can put it —
//! header tags (keys and values), event names, log targets, JSON object keys, integers —
//! reaches the archive: neither its raw bytes (the header is stored uncompressed) nor its
//! decoded records.

mod common;

use calltape_format::Record;
use calltape_recorder::{Attributes, LogLevel, Recorder, ToolCall};
use common::*;
use serde_json::json;

/// Phone and card numbers and an e-mail address, as text and as JSON numbers.
const PII: [&str; 5] = [
    "2065550142",
    "206-555-0142",
    "4111111111111111",
    "4111 1111 1111 1111",
    "jane.doe@example.com",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_phone_card_or_email_reaches_the_archive_from_any_field() {
    let (spool, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(spool.path())
        .retry_interval(None)
        .redact_pii(true)
        .build()
        .await
        .unwrap();
    let info = call_info("call-redacted")
        .tag("caller", "206-555-0142")
        .tag("caller_number", 2065550142u64)
        .tag("jane.doe@example.com", "vip");
    let s = rec.start_session(info).unwrap();
    let mut attrs = Attributes::new();
    attrs.insert("card".into(), json!(4111111111111111u64));
    attrs.insert("4111 1111 1111 1111".into(), json!("card as a key"));
    attrs.insert(
        "nested".into(),
        json!({"phone": 2065550142u64, "list": [2065550142u64]}),
    );
    attrs.insert("turn_count".into(), json!(3)); // a small number stays a number
    s.at(10 * MS).event("callback to 206-555-0142", attrs);
    s.at(20 * MS).log(
        LogLevel::Info,
        "crm:jane.doe@example.com",
        "looked up the caller",
    );
    s.at(30 * MS).tool_call(ToolCall {
        turn: None,
        call_id: Some("call-1".into()),
        name: "lookup".into(),
        arguments: json!({"jane.doe@example.com": {"card": 4111111111111111u64}}),
        output: json!({"phone": 2065550142u64}),
        start_ns: 30 * MS,
        end_ns: 40 * MS,
        is_error: false,
        attributes: Attributes::new(),
    });
    s.at(50 * MS).end("user_hangup", None);
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded(), "{report:?}");
    let bytes = std::fs::read(dest.path().join(&report.upload.key)).unwrap();

    let raw = String::from_utf8_lossy(&bytes);
    let rb = read_back(&bytes);
    let mut texts = vec![serde_json::to_string(rb.archive.header()).unwrap()];
    texts.extend(rb.records.iter().map(|r| format!("{:?}", r.record)));
    for pii in PII {
        assert!(!raw.contains(pii), "{pii:?} in the archive's raw bytes");
        for t in &texts {
            assert!(!t.contains(pii), "{pii:?} in {t}");
        }
    }
    let tags = &rb.archive.header().tags;
    assert_eq!(tags.get("caller"), Some(&json!("[PHONE]")), "{tags:?}");
    assert_eq!(
        tags.get("caller_number"),
        Some(&json!("[PHONE]")),
        "{tags:?}"
    );
    assert_eq!(tags.get("[EMAIL]"), Some(&json!("vip")), "{tags:?}");
    let event = rb
        .records
        .iter()
        .find_map(|r| match &r.record {
            Record::Event(e) => Some(e),
            _ => None,
        })
        .unwrap();
    assert_eq!(event.name, "callback to [PHONE]");
    assert_eq!(event.attributes.get("card"), Some(&json!("[CARD]")));
    assert_eq!(
        event.attributes.get("[CARD]"),
        Some(&json!("card as a key"))
    );
    assert_eq!(event.attributes.get("turn_count"), Some(&json!(3)));
    assert_eq!(
        event.attributes.get("nested"),
        Some(&json!({"phone": "[PHONE]", "list": ["[PHONE]"]}))
    );
    let log = rb
        .records
        .iter()
        .find_map(|r| match &r.record {
            Record::Log(l) => Some(l),
            _ => None,
        })
        .unwrap();
    assert_eq!(log.target, "crm:[EMAIL]");
}
