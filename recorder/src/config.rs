//! `Recorder::builder()`: where archives go (a URL or a ready object store), the spool
//! directory, timing, memory, upload and redaction settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use crate::error::RecorderError;
use crate::keys::KeyLayout;
use crate::recorder::Recorder;
use crate::redact::{RedactionRule, Redactor};
use crate::report::{Issue, IssueFn};
use crate::stale_uploads::StaleUploads;

/// How failed uploads are retried: exponential backoff between whole-upload attempts, all
/// within the upload deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per upload (the first one included).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }
}

/// Bounds of the backoff handed to object_store's own per-request retry, whose arithmetic
/// (a random pick between the initial backoff and `previous * base`) needs a finite base above
/// 1 and durations far from `Duration::MAX`.
const STORE_BACKOFF_MIN: Duration = Duration::from_millis(1);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(60);
const STORE_BASE_RANGE: (f64, f64) = (1.1, 16.0);

impl RetryPolicy {
    /// Refuses a multiplier that is not a finite number ≥ 1 (NaN, infinite, shrinking).
    /// Everything else is accepted: huge durations, multipliers and attempt counts saturate.
    pub(crate) fn validate(&self) -> Result<(), RecorderError> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(RecorderError::InvalidSetting {
                setting: "RetryPolicy::multiplier",
                reason: format!(
                    "{} is not a finite number of at least 1.0 (2.0 doubles each backoff)",
                    self.multiplier
                ),
            });
        }
        Ok(())
    }

    /// Backoff before attempt `n + 1` (n ≥ 1): `initial * multiplier^(n-1)`, capped at
    /// `max_backoff`. Computed in floating point and capped before converting back, so no
    /// multiplier or attempt number overflows.
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let exp = n.saturating_sub(1).min(i32::MAX as u32) as i32;
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exp);
        if !secs.is_finite() || secs >= self.max_backoff.as_secs_f64() {
            return self.max_backoff;
        }
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// object_store's own per-request retry (transient errors inside one attempt), with the
    /// policy's values brought into the range object_store's backoff can compute with.
    fn store_retry(&self, deadline: Duration) -> RetryConfig {
        let init_backoff = self
            .initial_backoff
            .clamp(STORE_BACKOFF_MIN, STORE_BACKOFF_MAX);
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff,
                max_backoff: self.max_backoff.clamp(init_backoff, STORE_BACKOFF_MAX),
                base: self
                    .multiplier
                    .clamp(STORE_BASE_RANGE.0, STORE_BASE_RANGE.1),
            },
            max_retries: 2,
            retry_timeout: deadline,
        }
    }
}

enum Destination {
    Url {
        url: String,
        options: Vec<(String, String)>,
    },
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        attributes: bool,
    },
}

/// Settings of a recorder, frozen at build.
pub(crate) struct Config {
    pub spool_dir: PathBuf,
    pub flush_interval_ns: u64,
    /// How often a writer thread with work looks at its sessions.
    pub drain_interval: Duration,
    pub writer_threads: usize,
    pub memory_budget: usize,
    pub control_reserve: usize,
    pub control_queue: usize,
    pub audio_queue: usize,
    pub upload_deadline: Duration,
    pub retry: RetryPolicy,
    pub retry_interval: Option<Duration>,
    pub upload_on_start: bool,
    pub redactor: Arc<Redactor>,
    pub key_layout: KeyLayout,
    pub multipart_threshold: u64,
    pub part_size: usize,
    pub sync_data: bool,
    pub audio_tolerance_ns: u64,
    pub on_error: Option<Arc<IssueFn>>,
}

/// The destination, resolved.
pub(crate) struct StoreTarget {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
    /// Whether to send object attributes (metadata); the local file system has none.
    pub attributes: bool,
    /// For messages: the URL or "custom store".
    pub display: String,
    /// For an S3 store without configured credentials: the instance metadata endpoint it
    /// asks for them. A failure there means "no credentials found".
    pub instance_metadata: Option<String>,
    /// For S3: finds and aborts this recorder's stale multipart uploads.
    pub stale_uploads: Option<Arc<StaleUploads>>,
}

/// Most writer threads started by default (fewer on machines with fewer CPUs).
const DEFAULT_WRITER_THREADS_MAX: usize = 4;

/// Builds a [`Recorder`]. Only the destination is required.
pub struct RecorderBuilder {
    destination: Option<Destination>,
    spool_dir: PathBuf,
    flush_interval: Duration,
    memory_budget: usize,
    upload_deadline: Duration,
    retry: RetryPolicy,
    retry_interval: Option<Duration>,
    upload_on_start: bool,
    redact_pii: bool,
    rules: Vec<RedactionRule>,
    key_layout: KeyLayout,
    multipart_threshold: u64,
    sync_data: bool,
    audio_tolerance: Duration,
    queue_capacity: usize,
    writer_threads: usize,
    on_error: Option<Arc<IssueFn>>,
}

impl Default for RecorderBuilder {
    fn default() -> Self {
        RecorderBuilder {
            destination: None,
            spool_dir: std::env::temp_dir().join("calltape-spool"),
            flush_interval: Duration::from_secs(1),
            memory_budget: 128 << 20,
            upload_deadline: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            retry_interval: Some(Duration::from_secs(60)),
            upload_on_start: true,
            redact_pii: false,
            rules: Vec::new(),
            key_layout: KeyLayout::Dated,
            multipart_threshold: 8 << 20,
            sync_data: true,
            audio_tolerance: Duration::from_millis(40),
            queue_capacity: 8192,
            writer_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(DEFAULT_WRITER_THREADS_MAX),
            on_error: None,
        }
    }
}

impl std::fmt::Debug for RecorderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderBuilder")
            .field("spool_dir", &self.spool_dir)
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}

impl RecorderBuilder {
    /// Where archives go: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`,
    /// `file:///dir`, `memory://`, `https://host/path`. Cloud settings come from the
    /// environment like the vendors' tools (`AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_*`, …)
    /// and from [`RecorderBuilder::store_option`].
    pub fn destination(mut self, url: impl Into<String>) -> Self {
        let options = match self.destination.take() {
            Some(Destination::Url { options, .. }) => options,
            _ => Vec::new(),
        };
        self.destination = Some(Destination::Url {
            url: url.into(),
            options,
        });
        self
    }

    /// A store setting by object_store's name (`aws_endpoint`, `aws_region`,
    /// `aws_allow_http`, `google_service_account`, …), overriding the environment.
    pub fn store_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        match &mut self.destination {
            Some(Destination::Url { options, .. }) => options.push((key.into(), value.into())),
            _ => {
                self.destination = Some(Destination::Url {
                    url: String::new(),
                    options: vec![(key.into(), value.into())],
                })
            }
        }
        self
    }

    /// Uses a ready object store; keys go under `prefix`. Object metadata (the `recovered`
    /// marker, content type) is sent; a store that refuses it gets the object without.
    pub fn store(mut self, store: Arc<dyn ObjectStore>, prefix: impl Into<String>) -> Self {
        self.destination = Some(Destination::Store {
            store,
            prefix: prefix.into(),
            attributes: true,
        });
        self
    }

    /// Directory for archives being written and archives waiting for upload
    /// (default `$TMPDIR/calltape-spool`). Use a persistent disk in production: files left
    /// by a crash are recovered and uploaded from here on the next start.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = dir.into();
        self
    }

    /// At most about this much recorded time is lost if the process is killed (default 1 s),
    /// plus one writer tick and scheduling and sync delays (measured: up to 1.27 s with 1 s on
    /// a loaded 2-core VM).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d.max(Duration::from_millis(10));
        self
    }

    /// Bytes all sessions may hold in their queues and their open chunks (default 128 MiB): a
    /// busy 16 kHz two-track call holds about 88 KiB of open chunks (one flush interval of
    /// audio), an idle one none, so the default covers about 1 200 busy calls at once. Over
    /// it, audio is dropped and counted; control records have a reserve of 1/8 of the budget.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Most records per session waiting for the writer, counted separately for control
    /// records and audio frames (default 8192 each). The queue grows on demand up to that.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(16);
        self
    }

    /// Threads that write every session's spool file (default: one per CPU, at most 4). Each
    /// session is served by one of them; a thread sleeps while none of its sessions has
    /// anything to write, so idle calls cost next to nothing.
    pub fn writer_threads(mut self, n: usize) -> Self {
        self.writer_threads = n.clamp(1, 256);
        self
    }

    /// Hard limit for one archive's upload, retries and waiting for an upload slot included,
    /// counted from `Session::finish()` (default 60 s). `Duration::MAX` means no limit.
    pub fn upload_deadline(mut self, d: Duration) -> Self {
        self.upload_deadline = d;
        self
    }

    /// How failed uploads are retried. Huge values saturate (the backoff at `max_backoff`, the
    /// retries at the upload deadline); a multiplier that is NaN, infinite or below 1 is
    /// refused by [`RecorderBuilder::build`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How often archives left in the spool are retried in the background (default 60 s;
    /// `None`: only on start, at shutdown and by [`Recorder::upload_pending`]).
    pub fn retry_interval(mut self, every: Option<Duration>) -> Self {
        self.retry_interval = every;
        self
    }

    /// Upload archives found in the spool (and recovered ones) when the recorder starts
    /// (default true).
    pub fn upload_on_start(mut self, yes: bool) -> Self {
        self.upload_on_start = yes;
        self
    }

    /// Masks phone numbers, e-mail addresses and card numbers (Luhn-checked) as `[PHONE]`,
    /// `[EMAIL]`, `[CARD]` before anything is written, in text, JSON keys and integers. Off by
    /// default. [`Redactor`] lists exactly which fields are covered and which are not.
    pub fn redact_pii(mut self, yes: bool) -> Self {
        self.redact_pii = yes;
        self
    }

    /// Adds a redaction rule (runs after the built-in ones, even when `redact_pii` is off).
    pub fn redaction_rule(mut self, rule: RedactionRule) -> Self {
        self.rules.push(rule);
        self
    }

    pub fn key_layout(mut self, layout: KeyLayout) -> Self {
        self.key_layout = layout;
        self
    }

    /// Archives of at least this size go up as multipart uploads (default 8 MiB).
    pub fn multipart_threshold(mut self, bytes: u64) -> Self {
        self.multipart_threshold = bytes.max(5 << 20);
        self
    }

    /// Make closed chunks durable on each writer tick that wrote some (default true): a power
    /// cut then loses no more than a process kill. A writer thread commits all its files of
    /// the tick together with one `syncfs` of the spool's filesystem (Linux; which also
    /// flushes whatever else is dirty on that filesystem: give the spool its own in
    /// production), or `fdatasync`s a lone file.
    pub fn sync_data(mut self, yes: bool) -> Self {
        self.sync_data = yes;
        self
    }

    /// How far a track's sample count may stray from the clock before it is corrected (or
    /// a gap is kept), default 40 ms.
    pub fn audio_tolerance(mut self, d: Duration) -> Self {
        self.audio_tolerance = d;
        self
    }

    /// Called once per problem (a session's first recording error, a failed upload) from a
    /// background task. Keep it quick.
    pub fn on_error(mut self, f: impl Fn(&Issue) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(f));
        self
    }

    /// Creates the spool directory, recovers archives left by a crash, and starts uploading
    /// them and any archive still waiting (in the background). Must run in a tokio runtime.
    ///
    /// An unusable spool does not fail the build: sessions then record nothing and say so in
    /// their status, and [`Recorder::health`] reports the problem. A bad destination does.
    pub async fn build(self) -> Result<Recorder, RecorderError> {
        self.key_layout.validate()?;
        self.retry.validate()?;
        let target = resolve(self.destination, &self.retry, self.upload_deadline)?;
        let config = Config {
            spool_dir: self.spool_dir,
            flush_interval_ns: saturating_nanos(self.flush_interval),
            drain_interval: (self.flush_interval / 10)
                .clamp(Duration::from_millis(5), Duration::from_millis(50)),
            writer_threads: self.writer_threads,
            memory_budget: self.memory_budget,
            control_reserve: self.memory_budget / 8,
            control_queue: self.queue_capacity,
            audio_queue: self.queue_capacity,
            upload_deadline: self.upload_deadline,
            retry: self.retry,
            retry_interval: self.retry_interval,
            upload_on_start: self.upload_on_start,
            redactor: Arc::new(Redactor::new(self.redact_pii, self.rules)),
            key_layout: self.key_layout,
            multipart_threshold: self.multipart_threshold,
            part_size: 8 << 20,
            sync_data: self.sync_data,
            audio_tolerance_ns: saturating_nanos(self.audio_tolerance),
            on_error: self.on_error,
        };
        Recorder::start(config, target).await
    }
}

/// The instance metadata endpoint an S3 store built from `b` asks for credentials, if it
/// does (no keys, no web identity, no container credentials, signing not skipped).
fn s3_instance_metadata(b: &AmazonS3Builder) -> Option<String> {
    use object_store::aws::AmazonS3ConfigKey as K;
    let set = |k: K| b.get_config_value(&k).is_some_and(|v| !v.is_empty());
    let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let skip_signature = b
        .get_config_value(&K::SkipSignature)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = set(K::AccessKeyId)
        || set(K::ContainerCredentialsRelativeUri)
        || set(K::ContainerCredentialsFullUri)
        || env("AWS_WEB_IDENTITY_TOKEN_FILE")
        || skip_signature;
    (!configured).then(|| {
        b.get_config_value(&K::MetadataEndpoint)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "http://169.254.169.254".into())
    })
}

/// A duration in nanoseconds, `u64::MAX` (584 years) for anything longer.
fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn resolve(
    dest: Option<Destination>,
    retry: &RetryPolicy,
    deadline: Duration,
) -> Result<StoreTarget, RecorderError> {
    let (url, options) = match dest {
        None => return Err(RecorderError::NoDestination),
        Some(Destination::Store {
            store,
            prefix,
            attributes,
        }) => {
            return Ok(StoreTarget {
                store,
                prefix: prefix.trim_matches('/').to_string(),
                attributes,
                display: "custom store".into(),
                instance_metadata: None,
                stale_uploads: None,
            })
        }
        Some(Destination::Url { url, .. }) if url.is_empty() => {
            return Err(RecorderError::NoDestination)
        }
        Some(Destination::Url { url, options }) => (url, options),
    };
    let invalid = |reason: String| RecorderError::InvalidDestination {
        url: url.clone(),
        reason,
    };
    let store_err = |source| RecorderError::Store {
        url: url.clone(),
        source,
    };
    let parsed = Url::parse(&url).map_err(|e| invalid(e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| invalid(e.to_string()))?;
    let prefix = path.as_ref().trim_matches('/').to_string();
    let rc = retry.store_retry(deadline);
    macro_rules! with_options {
        ($builder:expr, $key:ty) => {{
            let mut b = $builder;
            for (k, v) in &options {
                let key: $key = k
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|_| invalid(format!("unknown store option {k:?}")))?;
                b = b.with_config(key, v.clone());
            }
            b
        }};
    }
    let mut instance_metadata = None;
    let mut stale_uploads = None;
    let (store, prefix, attributes): (Arc<dyn ObjectStore>, String, bool) = match scheme {
        ObjectStoreScheme::Local => {
            let dir = parsed
                .to_file_path()
                .map_err(|_| invalid("not a local path".into()))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| invalid(format!("cannot create directory {}: {e}", dir.display())))?;
            let fs = LocalFileSystem::new_with_prefix(&dir).map_err(store_err)?;
            (Arc::new(fs), String::new(), false)
        }
        ObjectStoreScheme::Memory => (Arc::new(InMemory::new()), prefix, true),
        ObjectStoreScheme::AmazonS3 => {
            let b = AmazonS3Builder::from_env()
                .with_url(url.clone())
                .with_retry(rc);
            let b = with_options!(b, object_store::aws::AmazonS3ConfigKey);
            instance_metadata = s3_instance_metadata(&b);
            let s3 = Arc::new(b.build().map_err(store_err)?);
            stale_uploads = Some(Arc::new(StaleUploads::new(s3.clone(), &prefix)));
            (s3, prefix, true)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let b = GoogleCloudStorageBuilder::from_env()
                .with_url(url.clone())
                .with_retry(rc);
            let b = with_options!(b, object_store::gcp::GoogleConfigKey);
            (Arc::new(b.build().map_err(store_err)?), prefix, true)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let b = MicrosoftAzureBuilder::from_env()
                .with_url(url.clone())
                .with_retry(rc);
            let b = with_options!(b, object_store::azure::AzureConfigKey);
            (Arc::new(b.build().map_err(store_err)?), prefix, true)
        }
        ObjectStoreScheme::Http => {
            let mut base = parsed.clone();
            base.set_path("");
            let b = HttpBuilder::new()
                .with_url(base.as_str().trim_end_matches('/'))
                .with_retry(rc);
            (Arc::new(b.build().map_err(store_err)?), prefix, false)
        }
        other => return Err(invalid(format!("unsupported store scheme {other:?}"))),
    };
    Ok(StoreTarget {
        store,
        prefix,
        attributes,
        display: url,
        instance_metadata,
        stale_uploads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_saturates_at_the_cap_for_any_multiplier_and_attempt() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            multiplier: f64::MAX,
        };
        for n in [1, 2, 3, 64, 1 << 20, u32::MAX] {
            assert!(p.backoff(n) <= Duration::from_secs(10), "attempt {n}");
        }
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(10));
        let max = RetryPolicy {
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..p
        };
        assert_eq!(max.backoff(u32::MAX), Duration::MAX);
    }

    #[test]
    fn store_retry_stays_in_the_range_object_store_computes_with() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::MAX,
            multiplier: f64::MAX,
        };
        let rc = p.store_retry(Duration::MAX);
        assert!(rc.backoff.init_backoff >= STORE_BACKOFF_MIN);
        assert!(rc.backoff.max_backoff <= STORE_BACKOFF_MAX);
        assert!(rc.backoff.base > 1.0 && rc.backoff.base.is_finite());
    }
}
