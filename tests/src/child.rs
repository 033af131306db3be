//! Benchmarks that measure in a child process (so peak RSS and requests are the child's own):
//! run this bench binary again with arguments, and read back the `key=value` figures it
//! prints on stdout.

use std::process::Command;

/// Runs the current executable with `args` and `env` (and `NO_COLOR=1`), and returns the
/// `key=value` pairs with numeric values from its stdout.
///
/// # Panics
/// When the child cannot run or fails (a bench helper).
pub fn run_child(args: &[&str], env: &[(String, String)]) -> Vec<(String, u64)> {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1")
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}
