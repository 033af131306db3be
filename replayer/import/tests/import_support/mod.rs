//! What the importer tests look at in an imported call: its summary, warnings, events,
//! transcripts and audio, read back from the written archive.
#![allow(dead_code)]

use calltape_format::{Latency, Record, Speaker, Summary, TimedRecord};
use calltape_import::ImportOutcome;

pub struct Imported {
    pub outcome: ImportOutcome,
    pub records: Vec<TimedRecord>,
}

impl Imported {
    pub fn summary(&self) -> &Summary {
        &self.outcome.summary
    }
    pub fn latency(&self, turn: u32) -> &Latency {
        &self.summary().turns[turn as usize - 1].latency
    }
    pub fn warning_codes(&self) -> Vec<&str> {
        self.outcome
            .warnings
            .iter()
            .map(|w| w.code.as_str())
            .collect()
    }
    pub fn events(&self, name: &str) -> Vec<&calltape_format::Event> {
        self.records
            .iter()
            .filter_map(|r| match &r.record {
                Record::Event(e) if e.name == name => Some(e),
                _ => None,
            })
            .collect()
    }
    pub fn transcripts(&self, speaker: Speaker) -> Vec<&calltape_format::Transcript> {
        self.records
            .iter()
            .filter_map(|r| match &r.record {
                Record::Transcript(t) if t.speaker == speaker => Some(t),
                _ => None,
            })
            .collect()
    }
    pub fn audio(&self, track: u16) -> Vec<i16> {
        let mut out: Vec<i16> = Vec::new();
        for r in &self.records {
            if let Record::Audio(a) = &r.record {
                if a.track == track {
                    let at = a.first_sample as usize;
                    if out.len() < at {
                        out.resize(at, 0);
                    }
                    out.extend_from_slice(&a.samples);
                }
            }
        }
        out
    }
}
