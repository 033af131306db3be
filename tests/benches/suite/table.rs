//! The results table: figure, calltape, peer, ratio, goal, pass/fail; printed as markdown and
//! written between markers into BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

pub struct Row {
    pub figure: String,
    pub calltape: String,
    pub peer: String,
    pub ratio: Option<f64>,
    pub goal: String,
    pub pass: Option<bool>,
}

impl Row {
    pub fn new(
        figure: impl Into<String>,
        calltape: impl Into<String>,
        peer: impl Into<String>,
    ) -> Row {
        Row {
            figure: figure.into(),
            calltape: calltape.into(),
            peer: peer.into(),
            ratio: None,
            goal: String::new(),
            pass: None,
        }
    }
    pub fn ratio(mut self, r: f64) -> Row {
        self.ratio = Some(r);
        self
    }
    pub fn goal(mut self, goal: impl Into<String>, pass: bool) -> Row {
        self.goal = goal.into();
        self.pass = Some(pass);
        self
    }
}

pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| figure | calltape | peer | ratio | goal | result |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default();
        let pass = match r.pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.figure, r.calltape, r.peer, ratio, r.goal, pass
        );
    }
    s
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {mem} GiB")
}

/// Replaces the block between the suite markers in BENCHMARKS.md (appending it if absent).
pub fn write_benchmarks_md(path: &Path, block: &str) -> std::io::Result<()> {
    const BEGIN: &str = "<!-- suite:begin -->";
    const END: &str = "<!-- suite:end -->";
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let new_block = format!("{BEGIN}\n{block}{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &old[..a], new_block, &old[b + END.len()..])
        }
        _ => format!("{}\n{}\n", old.trim_end(), new_block),
    };
    std::fs::write(path, new)
}
