//! The moto S3 server that `.ci/run` starts: its endpoint from `CALLTAPE_MOTO_ENDPOINT`, and
//! bucket creation (object_store cannot create buckets; moto takes an unsigned `PUT /bucket`).

use std::io::{Read, Write};
use std::time::Duration;

/// The moto endpoint, or `None` (with a note on stderr) when the tests run without moto.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var("CALLTAPE_MOTO_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!("{test}: CALLTAPE_MOTO_ENDPOINT not set (.ci/run starts moto): skipped");
            None
        }
    }
}

/// Creates a bucket on moto with a plain unsigned `PUT /{bucket}`; panics with moto's answer
/// if it is not 200.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let hostport = endpoint
        .strip_prefix("http://")
        .expect("CALLTAPE_MOTO_ENDPOINT must be http://host:port")
        .trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport).expect("connect to moto");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read moto response");
    let status = resp.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200"),
        "moto create bucket failed: {resp}"
    );
}
