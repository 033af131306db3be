//! A TCP proxy on `127.0.0.1` that injects a store outage at an exact point of an upload.
//!
//! [`FaultProxy`] forwards bytes both ways between its clients and an upstream server (a
//! [`TestS3`](crate::s3_server::TestS3)). Armed with [`FaultProxy::cut_after_body_bytes`], it
//! counts the HTTP request-body bytes going upstream and, once exactly that many have passed,
//! resets every open connection and refuses new ones (accepted and reset at once) until
//! [`FaultProxy::heal`]. To a client this looks like the server dying in the middle of a
//! request and coming back later, with no timing involved.
//!
//! Each connection is assumed to carry one HTTP/1 request (TestS3 disables keep-alive): the
//! request body is everything after the first `\r\n\r\n`. [`FaultProxy::requests`] lists the
//! request lines seen, how much body went upstream and whether the outage cut them.
//!
//! In delay mode ([`FaultProxy::delay_each_response`]) it holds every response back by a
//! fixed time, as a distant store would: for benchmarks of how many round trips a reader makes.
//!
//! Like `TestS3`, the proxy runs on its own OS thread and tokio runtime.
//!
//! ```no_run
//! # async fn demo() {
//! use calltape_tests::fault_proxy::FaultProxy;
//! use calltape_tests::s3_server::TestS3;
//!
//! let s3 = TestS3::start().await;
//! let proxy = FaultProxy::start(s3.addr()).await;
//! // point the client at proxy.endpoint(), then:
//! proxy.cut_after_body_bytes(9 << 20);
//! // … the upload fails once 9 MiB of request bodies have gone upstream …
//! assert!(proxy.is_down());
//! proxy.heal();
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// Longest request head (request line and headers) scanned for its end.
const MAX_HEAD: usize = 64 * 1024;

/// One connection the proxy relayed (or cut).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `PUT /bucket/key?partNumber=2&uploadId=… HTTP/1.1`, or empty if the head never arrived.
    pub request_line: String,
    /// Request-body bytes forwarded upstream.
    pub body_bytes: u64,
    /// The outage reset this connection while it was open.
    pub cut: bool,
}

#[derive(Debug, Default)]
struct State {
    down: bool,
    /// Total request-body bytes at which the outage starts.
    trip_at: Option<u64>,
    body_total: u64,
    requests: Vec<ProxiedRequest>,
    refused: u64,
    /// Added before each response is relayed.
    delay: std::time::Duration,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    /// Bumped at every outage; each connection watches it and resets when it changes.
    outages: watch::Sender<u64>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fault-injecting proxy. Dropping it stops it.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<ephemeral port>` forwarding to `upstream`.
    ///
    /// # Panics
    /// If the listener or its thread cannot be started.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
            outages: watch::Sender::new(0),
        });
        let (ready_tx, ready_rx) = oneshot::channel::<io::Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let s = shared.clone();
        std::thread::Builder::new()
            .name(format!("fault-proxy-{}", upstream.port()))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(serve(s, ready_tx, shutdown_rx));
            })
            .expect("spawn the fault proxy thread");
        let addr = ready_rx
            .await
            .expect("fault proxy thread exited during startup")
            .expect("bind the fault proxy on 127.0.0.1");
        FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Arms the outage: once `n` more request-body bytes have gone upstream (counted over all
    /// connections, exactly: the read that crosses the mark is forwarded only up to it), every
    /// connection is reset and new ones are refused until [`FaultProxy::heal`]. Fires once.
    pub fn cut_after_body_bytes(&self, n: u64) {
        let mut st = self.shared.state();
        st.trip_at = Some(st.body_total + n);
    }

    /// Starts the outage now.
    pub fn cut(&self) {
        let mut st = self.shared.state();
        trip(&self.shared, &mut st);
    }

    /// Ends the outage (and disarms a pending cut): new connections are forwarded again.
    pub fn heal(&self) {
        let mut st = self.shared.state();
        st.down = false;
        st.trip_at = None;
    }

    /// Holds every response back by `delay` before relaying it (a fixed time added to each
    /// request, as a far-away store adds a round trip); `Duration::ZERO` turns it off.
    /// Applies to connections accepted from now on.
    pub fn delay_each_response(&self, delay: std::time::Duration) {
        self.shared.state().delay = delay;
    }

    /// Whether the outage is on.
    pub fn is_down(&self) -> bool {
        self.shared.state().down
    }

    /// Request-body bytes forwarded upstream so far.
    pub fn body_bytes(&self) -> u64 {
        self.shared.state().body_total
    }

    /// Every connection relayed so far, in the order they were accepted.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.shared.state().requests.clone()
    }

    /// Connections refused (reset on accept) during outages.
    pub fn refused(&self) -> u64 {
        self.shared.state().refused
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn trip(shared: &Shared, st: &mut State) {
    st.down = true;
    st.trip_at = None;
    shared.outages.send_modify(|n| *n += 1);
}

async fn serve(
    shared: Arc<Shared>,
    ready: oneshot::Sender<io::Result<SocketAddr>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let bound = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .and_then(|l| Ok((l.local_addr()?, l)));
    let listener = match bound {
        Ok((addr, listener)) => {
            if ready.send(Ok(addr)).is_err() {
                return;
            }
            listener
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            res = listener.accept() => match res {
                Ok((client, _)) => {
                    let refused = {
                        let mut st = shared.state();
                        if st.down {
                            st.refused += 1;
                        }
                        st.down
                    };
                    if refused {
                        reset(client);
                    } else {
                        conns.spawn(relay(shared.clone(), client));
                    }
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Closes with a TCP reset, as a crashed server's kernel would.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn relay(shared: Arc<Shared>, client: TcpStream) {
    let mut outage = shared.outages.subscribe();
    if shared.state().down {
        // the outage started between accept and here
        reset(client);
        return;
    }
    let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let index = {
        let mut st = shared.state();
        st.requests.push(ProxiedRequest {
            request_line: String::new(),
            body_bytes: 0,
            cut: false,
        });
        st.requests.len() - 1
    };
    let delay = shared.state().delay;
    let (client_rd, client_wr) = client.into_split();
    let (upstream_rd, upstream_wr) = upstream.into_split();
    let mut up = std::pin::pin!(forward_request(&shared, index, client_rd, upstream_wr));
    let mut down = std::pin::pin!(forward_response(upstream_rd, client_wr, delay));
    let cut = tokio::select! {
        // the server answered and closed: the exchange is over
        _ = &mut down => false,
        _ = outage.changed() => true,
        _ = &mut up => tokio::select! {
            _ = &mut down => false,
            _ = outage.changed() => true,
        },
    };
    if cut {
        shared.state().requests[index].cut = true;
    }
    // dropping the futures closes both sockets; a client still sending gets a reset (its
    // unread bytes are discarded), one waiting for the response an early end of stream
}

/// Copies the client's request upstream, counting body bytes, until the client closes its
/// side, a socket fails or the outage starts here.
async fn forward_request(
    shared: &Shared,
    index: usize,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let mut in_body = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
            Err(_) => return,
        };
        // where the body starts in this read: at 0 once the head is through
        let mut body_from = 0;
        if !in_body {
            body_from = n;
            let scanned = head.len().saturating_sub(3);
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&head[scanned..], b"\r\n\r\n").map(|i| scanned + i + 4) {
                in_body = true;
                body_from = n - (head.len() - end);
                let line_end = find(&head, b"\r\n").unwrap_or(0);
                let line = String::from_utf8_lossy(&head[..line_end]).into_owned();
                shared.state().requests[index].request_line = line;
                head = Vec::new();
            } else if head.len() > MAX_HEAD {
                in_body = true;
                body_from = 0;
            }
        }
        let body = (n - body_from) as u64;
        let (pass, tripped) = {
            let mut st = shared.state();
            let allowed = match st.trip_at {
                Some(at) => at.saturating_sub(st.body_total).min(body),
                None => body,
            };
            st.body_total += allowed;
            st.requests[index].body_bytes += allowed;
            let tripped = st.trip_at.is_some_and(|at| st.body_total >= at) && body > 0;
            if tripped {
                trip(shared, &mut st);
            }
            (body_from + allowed as usize, tripped)
        };
        if (pass > 0 && to.write_all(&buf[..pass]).await.is_err()) || tripped {
            return;
        }
    }
}

/// Copies the server's response back to the client until the server closes, after
/// holding it back by `delay`.
async fn forward_response(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: std::time::Duration,
) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if tokio::io::copy(&mut from, &mut to).await.is_ok() {
        let _ = to.shutdown().await;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
