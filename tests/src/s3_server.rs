//! An in-process S3-compatible server for tests.
//!
//! [`TestS3`] serves [`s3s_fs`] (an S3 implementation backed by a plain
//! directory) over HTTP on `127.0.0.1`. Buckets are directories directly under
//! [`TestS3::root`]; objects are files inside them.
//!
//! The server runs on its own OS thread with its own tokio runtime, so it keeps
//! answering even while the test's runtime is blocked (a `current_thread`
//! `#[tokio::test]` waiting on a child process, a sync `block_on`, ...).
//!
//! ```no_run
//! # async fn demo() {
//! use calltape_tests::s3_server::TestS3;
//! use object_store::{ObjectStoreExt, path::Path};
//!
//! let s3 = TestS3::start().await;
//! s3.create_bucket("calls");
//! let store = s3.store("calls");
//! store.put(&Path::from("a/b.bin"), vec![1u8, 2, 3].into()).await.unwrap();
//!
//! // Fault injection: stop the server (clients now get "connection refused"),
//! // then bring it back on the same port with the same data.
//! let stopped = s3.stop().await;
//! let s3 = stopped.restart().await.unwrap();
//! # drop(s3);
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Access key id accepted by [`TestS3`].
pub const ACCESS_KEY_ID: &str = "calltape";
/// Secret access key accepted by [`TestS3`].
pub const SECRET_ACCESS_KEY: &str = "calltape-secret";
/// Region reported to clients (s3s does not enforce it).
pub const REGION: &str = "us-east-1";

/// A running in-process S3 server. Dropping it stops the server (without
/// waiting); use [`TestS3::stop`] to stop it deterministically.
///
/// HTTP keep-alive is disabled (each response closes its connection), so a
/// client never reuses a connection across a stop/restart.
#[derive(Debug)]
pub struct TestS3 {
    addr: SocketAddr,
    root: PathBuf,
    /// Present when the root was created by [`TestS3::start`]; deleted on drop.
    tempdir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

/// A stopped server: nothing listens on [`StoppedS3::addr`] any more, but the
/// data under [`StoppedS3::root`] is kept (including the temp dir created by
/// [`TestS3::start`], which lives as long as this value or the server it is
/// restarted into).
#[derive(Debug)]
pub struct StoppedS3 {
    addr: SocketAddr,
    root: PathBuf,
    tempdir: Option<tempfile::TempDir>,
}

impl TestS3 {
    /// Starts a server on `127.0.0.1:<ephemeral port>` over a fresh temp dir.
    ///
    /// # Panics
    /// If the temp dir cannot be created or the server cannot start.
    pub async fn start() -> TestS3 {
        let tempdir = tempfile::Builder::new()
            .prefix("calltape-test-s3-")
            .tempdir()
            .expect("create temp dir for TestS3");
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut s3 = TestS3::start_at(addr, tempdir.path())
            .await
            .expect("start TestS3");
        s3.tempdir = Some(tempdir);
        s3
    }

    /// Starts a server on a fixed address over an existing directory (which is
    /// neither created nor deleted). Use port 0 for an ephemeral port. Use this
    /// (or [`StoppedS3::restart`]) to bring a stopped server back on the same
    /// port with the same objects.
    pub async fn start_at(addr: SocketAddr, root: &Path) -> io::Result<TestS3> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
            b.build()
        };

        let (ready_tx, ready_rx) = oneshot::channel::<io::Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("test-s3-{}", addr.port()))
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
                rt.block_on(serve(addr, service, ready_tx, shutdown_rx));
                let _ = done_tx.send(());
            })?;

        let addr = ready_rx
            .await
            .map_err(|_| io::Error::other("TestS3 server thread exited during startup"))??;
        Ok(TestS3 {
            addr,
            root,
            tempdir: None,
            shutdown: Some(shutdown_tx),
            done: Some(done_rx),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory holding the buckets (canonicalized).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a bucket (a directory under [`TestS3::root`]). Idempotent.
    ///
    /// # Panics
    /// If `name` is not a valid S3 bucket name (3-63 chars of `a-z0-9.-`, ...;
    /// the server would reject every request to it) or the directory cannot be
    /// created.
    pub fn create_bucket(&self, name: &str) {
        assert!(
            s3s::path::check_bucket_name(name),
            "invalid S3 bucket name {name:?} (3-63 chars of a-z, 0-9, '.', '-')"
        );
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create bucket dir {}: {e}", dir.display()));
    }

    /// An [`AmazonS3Builder`] fully configured for this server and `bucket`
    /// (endpoint, plain HTTP, path-style requests, credentials, region), for
    /// callers that want to tweak it further, e.g. with
    /// `.with_retry(RetryConfig { max_retries: 0, .. })`.
    pub fn store_builder(&self, bucket: &str) -> AmazonS3Builder {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .with_region(REGION)
            .with_bucket_name(bucket)
    }

    /// An object store client for `bucket` on this server (object_store's
    /// default retry policy: connection errors are retried with backoff for up
    /// to 10 attempts).
    ///
    /// # Panics
    /// If the builder rejects the configuration.
    pub fn store(&self, bucket: &str) -> AmazonS3 {
        self.store_builder(bucket)
            .build()
            .expect("build AmazonS3 for TestS3")
    }

    /// Uploads the file at `path` as `bucket/name` with multipart in 8 MiB parts, as a
    /// recorder uploads a long call.
    ///
    /// # Panics
    /// On any I/O or store error (a test helper).
    pub async fn upload_file(&self, bucket: &str, name: &str, path: &std::path::Path) {
        use object_store::{ObjectStoreExt, WriteMultipart};
        use std::io::Read;
        const PART: usize = 8 << 20;
        let store = self.store(bucket);
        let upload = store
            .put_multipart(&object_store::path::Path::from(name))
            .await
            .expect("start multipart upload");
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = std::fs::File::open(path).expect("open file to upload");
        let mut buf = vec![0u8; PART];
        loop {
            let n = f.read(&mut buf).expect("read file to upload");
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.expect("upload part");
            w.write(&buf[..n]);
        }
        w.finish().await.expect("complete multipart upload");
    }

    /// Environment for child processes / `AmazonS3Builder::from_env()`:
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Stops serving: the listener is closed and every open connection is
    /// dropped (in-flight requests are aborted) before this returns, so new
    /// requests get "connection refused". The data stays on disk; restart with
    /// [`StoppedS3::restart`] or [`TestS3::start_at`].
    pub async fn stop(mut self) -> StoppedS3 {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        StoppedS3 {
            addr: self.addr,
            root: self.root.clone(),
            tempdir: self.tempdir.take(),
        }
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl StoppedS3 {
    /// The address the server used to listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (nothing answers there while stopped).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts serving again on the same address and root. The temp dir created
    /// by [`TestS3::start`] (if any) moves into the returned server.
    pub async fn restart(mut self) -> io::Result<TestS3> {
        let mut s3 = TestS3::start_at(self.addr, &self.root).await?;
        s3.tempdir = self.tempdir.take();
        Ok(s3)
    }

    /// Takes ownership of the temp dir created by [`TestS3::start`], if any, so
    /// it outlives this value (it is deleted when the returned value drops).
    pub fn take_tempdir(&mut self) -> Option<tempfile::TempDir> {
        self.tempdir.take()
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Rebinding the port of a just-stopped server must not fail because of
    // connections it closed that are still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn serve(
    addr: SocketAddr,
    service: S3Service,
    ready: oneshot::Sender<io::Result<SocketAddr>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match bind(addr).and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((local, listener)) => {
            if ready.send(Ok(local)).is_err() {
                return;
            }
            listener
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };

    let mut http = ConnBuilder::new(TokioExecutor::new());
    // One request per connection: clients never hold a pooled keep-alive
    // connection, so after `stop` every request deterministically fails with
    // "connection refused" (instead of sometimes an "incomplete message" on a
    // stale pooled connection).
    http.http1().keep_alive(false);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            // A dropped sender (TestS3 dropped) also means shut down.
            _ = &mut shutdown => break,
            res = listener.accept() => match res {
                Ok((socket, _peer)) => {
                    let conn = http
                        .serve_connection(TokioIo::new(socket), service.clone())
                        .into_owned();
                    conns.spawn(async move {
                        let _ = conn.await;
                    });
                }
                Err(_) => {
                    // e.g. EMFILE; back off briefly instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow unbounded.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Abort every connection task and wait until their sockets are dropped.
    conns.shutdown().await;
}
