//! The sample calls: each shows one problem a developer would chase.

use calltape_format::{AgentInfo, AudioCodec, Header, Speaker, TimedRecord, Track};
use serde_json::json;

use crate::clips::{Clips, RATE};
use crate::sim::{Reply, Sim, ToolStep, AGENT_TRACK, MS, USER_TRACK};

/// A generated call: its header and every record in time order.
pub struct SampleCall {
    pub name: &'static str,
    pub what: &'static str,
    pub header: Header,
    pub records: Vec<TimedRecord>,
}

pub fn header(
    session_id: &str,
    started_at: &str,
    unix_s: i64,
    agent: &str,
    version: &str,
) -> Header {
    Header {
        session_id: session_id.into(),
        started_at: started_at.into(),
        started_at_unix_ns: unix_s * 1_000_000_000,
        agent: AgentInfo {
            name: agent.into(),
            version: version.into(),
        },
        environment: Some("staging".into()),
        tags: json!({"framework": "calltape-samples", "channel": "pstn"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        tracks: vec![
            Track {
                id: USER_TRACK,
                role: Speaker::User,
                sample_rate: RATE,
                channels: 1,
                codec: AudioCodec::Pcm16Rice,
                name: Some("caller".into()),
            },
            Track {
                id: AGENT_TRACK,
                role: Speaker::Agent,
                sample_rate: RATE,
                channels: 1,
                codec: AudioCodec::Pcm16Rice,
                name: Some("agent".into()),
            },
        ],
    }
}

/// A bank call whose second question waits 2.9 s for the LLM's first token.
pub fn slow_llm(clips: &mut Clips) -> SampleCall {
    let mut sim = Sim::new(clips, 11, "gpt-4o");
    sim.greet(
        "slow_01_agent.wav",
        "Hi, thanks for calling Acme Bank. How can I help you today?",
    );
    sim.user_says(
        "slow_02_user.wav",
        "Hi, I want to check the balance on my checking account.",
        None,
    );
    let mut r = Reply::new(
        "slow_03_agent.wav",
        "Sure. Your checking account balance is two thousand four hundred and ten dollars.",
    );
    r.tools.push(ToolStep {
        name: "get_balance".into(),
        arguments: json!({"account": "checking"}),
        output: json!({"balance": 2410.00, "currency": "USD"}),
        is_error: false,
        duration_ms: 180,
    });
    r.state = Some(json!({"caller_verified": true, "intent": "balance", "account": "checking"}));
    sim.reply(&r);
    sim.user_says(
        "slow_04_user.wav",
        "And when is my next card payment due?",
        None,
    );
    let mut r = Reply::new(
        "slow_05_agent.wav",
        "Your next card payment of one hundred and twenty dollars is due on March the fourth.",
    );
    r.llm_ttft_ms = Some(2_900);
    r.log = Some((
        "warn",
        "LLM time to first token 2900 ms exceeds 1000 ms budget (provider queueing)".into(),
    ));
    r.state = Some(
        json!({"caller_verified": true, "intent": "card_payment_due", "account": "credit_card"}),
    );
    sim.reply(&r);
    sim.user_says("slow_06_user.wav", "Great, thanks. That's all.", None);
    let mut r = Reply::new("slow_07_agent.wav", "You're welcome. Have a nice day!");
    r.state = Some(json!({"caller_verified": true, "intent": "goodbye", "account": "credit_card"}));
    sim.reply(&r);
    sim.end("agent_hangup", "resolved");
    SampleCall {
        name: "slow_llm",
        what: "turn 3 waits 2.9 s for the LLM's first token",
        header: header(
            "sess-slow-llm-7f3a",
            "2026-11-20T14:03:11.000Z",
            1_795_183_391,
            "acme-bank-voice",
            "2.3.1",
        ),
        records: sim.into_records(),
    }
}

/// A travel call where the caller cuts the agent off in the middle of an upsell.
pub fn barge_in(clips: &mut Clips) -> SampleCall {
    let mut sim = Sim::new(clips, 22, "gpt-4o-mini");
    sim.greet(
        "bargein_01_agent.wav",
        "Hello, this is Acme Travel. What can I do for you?",
    );
    sim.user_says(
        "bargein_02_user.wav",
        "I need to change my flight to Boston.",
        None,
    );
    let mut r = Reply::new(
        "bargein_03_agent_full.wav",
        "I can help with that. Before we start, let me tell you about our new loyalty program, which gives you double points on every flight you book this year.",
    );
    r.barge_in_after_ms = Some(5_600);
    r.state =
        Some(json!({"intent": "change_flight", "destination": "BOS", "upsell_offered": true}));
    sim.reply(&r);
    let start = sim.last_playback_start() + 5_600 * MS - 170 * MS;
    sim.user_turn_at(
        start,
        "bargein_04_user.wav",
        "No, just change the flight please.",
        None,
    );
    let mut r = Reply::new(
        "bargein_05_agent.wav",
        "Of course. Your flight is now moved to Friday at nine a.m.",
    );
    r.tools.push(ToolStep {
        name: "change_flight".into(),
        arguments: json!({"booking": "QX7P2L", "new_date": "2026-11-27", "destination": "BOS"}),
        output: json!({"status": "confirmed", "departure": "09:00"}),
        is_error: false,
        duration_ms: 420,
    });
    r.state = Some(
        json!({"intent": "change_flight", "destination": "BOS", "upsell_offered": true, "booking": "QX7P2L", "changed": true}),
    );
    sim.reply(&r);
    sim.end("user_hangup", "resolved");
    SampleCall {
        name: "barge_in",
        what: "the caller interrupts the agent's upsell in turn 2",
        header: header(
            "sess-barge-in-91c2",
            "2026-11-20T15:21:40.000Z",
            1_795_188_100,
            "acme-travel-voice",
            "1.8.0",
        ),
        records: sim.into_records(),
    }
}

/// A pharmacy call where STT hears "Lipitor" for "Lisinopril".
pub fn misheard(clips: &mut Clips) -> SampleCall {
    let mut sim = Sim::new(clips, 33, "gpt-4o-mini");
    sim.greet(
        "misheard_01_agent.wav",
        "Welcome to Acme Pharmacy. How can I help?",
    );
    sim.user_says(
        "misheard_02_user.wav",
        "I'd like to refill my prescription for Lisinopril.",
        Some(("I'd like to refill my prescription for Lipitor.", 0.58)),
    );
    let mut r = Reply::new(
        "misheard_03_agent.wav",
        "I found a prescription for Lipitor. Shall I refill that one?",
    );
    r.tools.push(ToolStep {
        name: "find_prescription".into(),
        arguments: json!({"drug": "Lipitor"}),
        output: json!({"rx": "RX-20931", "drug": "Lipitor 20mg"}),
        is_error: false,
        duration_ms: 240,
    });
    r.state = Some(json!({"intent": "refill", "drug": "Lipitor", "rx": "RX-20931"}));
    sim.reply(&r);
    sim.user_says(
        "misheard_04_user.wav",
        "No, Lisinopril, the blood pressure one.",
        None,
    );
    let mut r = Reply::new(
        "misheard_05_agent.wav",
        "Thanks. I've refilled your Lisinopril. It will be ready tomorrow.",
    );
    r.tools.push(ToolStep {
        name: "refill".into(),
        arguments: json!({"drug": "Lisinopril"}),
        output: json!({"rx": "RX-18812", "ready": "2026-11-21"}),
        is_error: false,
        duration_ms: 310,
    });
    r.state =
        Some(json!({"intent": "refill", "drug": "Lisinopril", "rx": "RX-18812", "refilled": true}));
    sim.reply(&r);
    sim.end("user_hangup", "resolved_after_correction");
    SampleCall {
        name: "misheard",
        what: "STT hears 'Lipitor' (confidence 0.58) where the caller said 'Lisinopril'",
        header: header(
            "sess-misheard-4be0",
            "2026-11-20T16:45:02.000Z",
            1_795_193_102,
            "acme-pharmacy-voice",
            "0.9.4",
        ),
        records: sim.into_records(),
    }
}

/// A pizza order whose ordering tool times out, then succeeds on retry.
pub fn tool_failure(clips: &mut Clips) -> SampleCall {
    let mut sim = Sim::new(clips, 44, "claude-3-5-haiku");
    sim.greet(
        "toolfail_01_agent.wav",
        "Hi, this is Acme Pizza. What would you like to order?",
    );
    sim.user_says(
        "toolfail_02_user.wav",
        "A large pepperoni pizza delivered to twelve Oak Street.",
        None,
    );
    let mut r = Reply::new(
        "toolfail_03_agent.wav",
        "Sorry, I'm having trouble reaching our ordering system. Let me try again.",
    );
    r.tools.push(ToolStep {
        name: "place_order".into(),
        arguments: json!({"item": "pepperoni", "size": "large", "address": "12 Oak Street"}),
        output: json!({"error": "upstream timeout after 3000 ms", "code": 504}),
        is_error: true,
        duration_ms: 3_000,
    });
    r.state = Some(
        json!({"cart": [{"item": "pepperoni", "size": "large"}], "address": "12 Oak Street", "order_id": null}),
    );
    sim.reply(&r);
    sim.user_says("toolfail_04_user.wav", "Okay, I'll wait.", None);
    let mut r = Reply::new(
        "toolfail_05_agent.wav",
        "Thanks for waiting. Your large pepperoni pizza will arrive in thirty minutes.",
    );
    r.tools.push(ToolStep {
        name: "place_order".into(),
        arguments: json!({"item": "pepperoni", "size": "large", "address": "12 Oak Street"}),
        output: json!({"order_id": "A-5531", "eta_minutes": 30}),
        is_error: false,
        duration_ms: 650,
    });
    r.state = Some(
        json!({"cart": [{"item": "pepperoni", "size": "large"}], "address": "12 Oak Street", "order_id": "A-5531"}),
    );
    sim.reply(&r);
    sim.end("agent_hangup", "order_placed");
    SampleCall {
        name: "tool_failure",
        what: "place_order times out after 3 s in turn 2 and succeeds on retry",
        header: header(
            "sess-tool-fail-c7d1",
            "2026-11-20T18:02:55.000Z",
            1_795_197_775,
            "acme-pizza-voice",
            "3.0.2",
        ),
        records: sim.into_records(),
    }
}

/// The four complete sample calls.
pub fn all(clips: &mut Clips) -> Vec<SampleCall> {
    vec![
        slow_llm(clips),
        barge_in(clips),
        misheard(clips),
        tool_failure(clips),
    ]
}

/// A long call for benchmarks: the sample dialogues one after another until `minutes` pass.
pub fn long_call(clips: &mut Clips, minutes: u64) -> SampleCall {
    let mut sim = Sim::new(clips, 99, "gpt-4o");
    let lines: Vec<(&str, &str, &str, &str)> = vec![
        (
            "slow_02_user.wav",
            "Hi, I want to check the balance on my checking account.",
            "slow_03_agent.wav",
            "Sure. Your checking account balance is two thousand four hundred and ten dollars.",
        ),
        (
            "slow_04_user.wav",
            "And when is my next card payment due?",
            "slow_05_agent.wav",
            "Your next card payment of one hundred and twenty dollars is due on March the fourth.",
        ),
        (
            "bargein_02_user.wav",
            "I need to change my flight to Boston.",
            "bargein_05_agent.wav",
            "Of course. Your flight is now moved to Friday at nine a.m.",
        ),
        (
            "misheard_04_user.wav",
            "No, Lisinopril, the blood pressure one.",
            "misheard_05_agent.wav",
            "Thanks. I've refilled your Lisinopril. It will be ready tomorrow.",
        ),
        (
            "toolfail_02_user.wav",
            "A large pepperoni pizza delivered to twelve Oak Street.",
            "toolfail_05_agent.wav",
            "Thanks for waiting. Your large pepperoni pizza will arrive in thirty minutes.",
        ),
    ];
    sim.greet(
        "slow_01_agent.wav",
        "Hi, thanks for calling Acme Bank. How can I help you today?",
    );
    let mut i = 0usize;
    while sim.now < minutes * 60_000 * MS {
        let (uc, ut, ac, at) = lines[i % lines.len()];
        sim.user_says(uc, ut, None);
        let mut r = Reply::new(ac, at);
        r.state = Some(json!({"turn_index": i, "topic": i % lines.len()}));
        if i % 7 == 3 {
            r.tools.push(ToolStep {
                name: "lookup".into(),
                arguments: json!({"q": i}),
                output: json!({"ok": true}),
                is_error: i % 21 == 3,
                duration_ms: 200,
            });
        }
        sim.reply(&r);
        i += 1;
    }
    sim.end("user_hangup", "resolved");
    SampleCall {
        name: "long",
        what: "a generated long call for benchmarks",
        header: header(
            "sess-long-bench",
            "2026-11-20T09:00:00.000Z",
            1_795_165_200,
            "acme-bank-voice",
            "2.3.1",
        ),
        records: sim.into_records(),
    }
}
