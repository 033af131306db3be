//! Uploading closed archives: `put` below the multipart threshold, `put_multipart` above it
//! (aborted on failure), retried with exponential backoff within a hard deadline, and verified
//! before the spool copy is deleted. The uploader is handed the archive's length and summary
//! (header included) by whoever closed it ([`ClosedArchive`]); it reads the file only to send
//! it and to verify the tail.
//!
//! Verification: a HEAD must report the local size, and the object's last 256 KiB (footer,
//! chunk index and summary, whose CRC32Cs cover the whole tail) must equal the local bytes,
//! compared by CRC32C. That is one small ranged GET instead of downloading the call again.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use calltape_format::Header;
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::config::{RetryPolicy, StoreTarget};
use crate::deadline::instant_after;
use crate::keys::KeyLayout;
use crate::report::{UploadOutcome, UploadReport};
use crate::spool::ClosedArchive;
use crate::stale_uploads::Which;
use crate::upload_failure::AttemptFailure;

/// Bytes of the tail compared after upload.
const VERIFY_TAIL: u64 = 256 * 1024;
/// Content type of archives in the store.
pub const CONTENT_TYPE: &str = "application/vnd.calltape";
/// Metadata key set to `true` on archives rebuilt by recovery (where the store keeps metadata).
pub const RECOVERED_METADATA: &str = "calltape-recovered";

pub(crate) struct Uploader {
    pub target: StoreTarget,
    pub layout: KeyLayout,
    pub retry: RetryPolicy,
    pub multipart_threshold: u64,
    pub part_size: usize,
    /// Cleared when the store refuses attributes, so later uploads skip them.
    attributes: AtomicBool,
}

impl Uploader {
    pub(crate) fn new(
        target: StoreTarget,
        layout: KeyLayout,
        retry: RetryPolicy,
        multipart_threshold: u64,
        part_size: usize,
    ) -> Self {
        let attributes = AtomicBool::new(target.attributes);
        Uploader {
            target,
            layout,
            retry,
            multipart_threshold,
            part_size,
            attributes,
        }
    }

    pub(crate) fn store(&self) -> &dyn ObjectStore {
        &*self.target.store
    }

    pub(crate) fn key_for(&self, header: &Header) -> Result<StorePath, String> {
        self.layout.key(&self.target.prefix, header)
    }

    /// Uploads, verifies and deletes the local copy, retrying until `deadline`. Never panics;
    /// a failure leaves the file in the spool and says why.
    pub(crate) async fn upload(&self, archive: &ClosedArchive, deadline: Instant) -> UploadReport {
        let mut report = UploadReport {
            session_id: archive.header().session_id.clone(),
            key: String::new(),
            bytes: archive.len,
            recovered: archive.recovered,
            outcome: UploadOutcome::Uploaded,
        };
        let key = match self.key_for(archive.header()) {
            Ok(k) => k,
            Err(reason) => {
                report.outcome = UploadOutcome::InSpool {
                    path: archive.path.clone(),
                    reason,
                };
                return report;
            }
        };
        report.key = key.to_string();
        let mut attempt = 0u32;
        let result = loop {
            attempt = attempt.saturating_add(1);
            let res = tokio::time::timeout_at(deadline, self.attempt(archive, &key)).await;
            let err = match res {
                Ok(Ok(())) => break Ok(()),
                Ok(Err(e)) if e.permanent => {
                    break Err(format!("{} (attempt {attempt}; not retried)", e.message))
                }
                Ok(Err(e)) => e.message,
                Err(_) => break Err(format!("upload deadline passed (attempt {attempt})")),
            };
            if attempt >= self.retry.max_attempts.max(1) {
                break Err(format!("{err} (after {attempt} attempts)"));
            }
            let wake = instant_after(Instant::now(), self.retry.backoff(attempt));
            if wake >= deadline {
                break Err(format!(
                    "{err} (attempt {attempt}; no time left before the deadline)"
                ));
            }
            tokio::time::sleep_until(wake).await;
        };
        match result {
            Ok(()) => {
                if archive.len >= self.multipart_threshold {
                    self.abort_stale_uploads_of(&key).await;
                }
                if let Err(e) = std::fs::remove_file(&archive.path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        report.outcome = UploadOutcome::InSpool {
                            path: archive.path.clone(),
                            reason: format!(
                                "uploaded and verified, but deleting the spool copy failed: {e}"
                            ),
                        };
                    }
                }
            }
            Err(e) => {
                report.outcome = UploadOutcome::InSpool {
                    path: archive.path.clone(),
                    reason: format!("uploading to {} as {key} failed: {e}", self.target.display),
                }
            }
        }
        report
    }

    /// After `key` was uploaded whole: aborts every other incomplete upload of it (earlier
    /// attempts whose abort failed, or whose creation the recorder never heard back from).
    /// Best effort: what is left is found by the sweep at start and the lifecycle rule.
    async fn abort_stale_uploads_of(&self, key: &StorePath) {
        if let Some(stale) = &self.target.stale_uploads {
            let _ = stale.abort(Which::Key(key.as_ref())).await;
        }
    }

    fn attributes(&self, recovered: bool) -> Attributes {
        let mut a = Attributes::new();
        if self.attributes.load(Ordering::Relaxed) {
            a.insert(Attribute::ContentType, CONTENT_TYPE.into());
            if recovered {
                a.insert(
                    Attribute::Metadata(RECOVERED_METADATA.into()),
                    "true".into(),
                );
            }
        }
        a
    }

    async fn attempt(
        &self,
        archive: &ClosedArchive,
        key: &StorePath,
    ) -> Result<(), AttemptFailure> {
        let res = self.put(archive, key).await;
        let res = match res {
            Err(object_store::Error::NotImplemented { .. })
            | Err(object_store::Error::NotSupported { .. })
                if self.attributes.swap(false, Ordering::Relaxed) =>
            {
                // the store keeps no metadata: send the object without
                self.put(archive, key).await
            }
            r => r,
        };
        res.map_err(|e| AttemptFailure::from_store(e, self.target.instance_metadata.as_deref()))?;
        self.verify(archive, key)
            .await
            .map_err(AttemptFailure::transient)
    }

    async fn put(&self, archive: &ClosedArchive, key: &StorePath) -> object_store::Result<()> {
        let attributes = self.attributes(archive.recovered);
        let io = |e: std::io::Error| object_store::Error::Generic {
            store: "spool",
            source: Box::new(e),
        };
        if archive.len < self.multipart_threshold {
            let bytes = tokio::fs::read(&archive.path).await.map_err(io)?;
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.store()
                .put_opts(key, PutPayload::from(Bytes::from(bytes)), opts)
                .await?;
            return Ok(());
        }
        let opts = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let mut upload = self.store().put_multipart_opts(key, opts).await?;
        let parts = async {
            let mut file = tokio::fs::File::open(&archive.path).await.map_err(io)?;
            let mut left = archive.len;
            while left > 0 {
                let n = left.min(self.part_size as u64) as usize;
                let mut buf = vec![0u8; n];
                file.read_exact(&mut buf).await.map_err(io)?;
                left -= n as u64;
                upload.put_part(PutPayload::from(buf)).await?;
            }
            upload.complete().await?;
            Ok::<(), object_store::Error>(())
        }
        .await;
        if let Err(e) = parts {
            let _ = upload.abort().await;
            return Err(e);
        }
        Ok(())
    }

    async fn verify(&self, archive: &ClosedArchive, key: &StorePath) -> Result<(), String> {
        let meta = self
            .store()
            .head(key)
            .await
            .map_err(|e| format!("verification HEAD failed: {e}"))?;
        if meta.size != archive.len {
            return Err(format!(
                "verification failed: the object has {} bytes, the archive {}",
                meta.size, archive.len
            ));
        }
        let tail = VERIFY_TAIL.min(archive.len);
        let from = archive.len - tail;
        let remote = self
            .store()
            .get_range(key, from..archive.len)
            .await
            .map_err(|e| format!("verification GET failed: {e}"))?;
        let path = archive.path.clone();
        let local = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut f = std::fs::File::open(path)?;
            f.seek(SeekFrom::Start(from))?;
            let mut buf = vec![0u8; tail as usize];
            f.read_exact(&mut buf)?;
            Ok(buf)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading the spool copy failed: {e}"))?;
        if crc32c::crc32c(&remote) != crc32c::crc32c(&local) || remote.len() != local.len() {
            return Err("verification failed: the object's tail differs from the archive".into());
        }
        Ok(())
    }
}
