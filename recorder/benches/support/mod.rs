//! What the real-time recorder benches share: settings from the environment and the
//! process's own resource use (`getrusage`).

use std::path::Path;
use std::time::Duration;

use calltape_recorder::Recorder;

/// `name` from the environment as a number, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's resource use so far.
pub fn rusage() -> libc::rusage {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert_eq!(rc, 0, "getrusage failed");
    u
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    let u = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The benches' runtime: two worker threads, as an agent process might give the recorder.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A recorder with the default configuration writing to a local directory, no retries.
pub async fn file_recorder(dest: &Path, spool: &Path) -> Recorder {
    Recorder::builder()
        .destination(format!("file://{}", dest.display()))
        .spool_dir(spool)
        .retry_interval(None)
        .build()
        .await
        .expect("recorder")
}
