//! Stale multipart uploads of this recorder: S3 keeps the parts of an upload that was neither
//! completed nor aborted (the store went down before the abort, or the response to "create"
//! was lost, so the recorder never learned the upload's id) and bills for them. They are found
//! by listing the incomplete uploads under the recorder's prefix whose key is an archive's
//! (`*.calltape`) and aborted: those of a key just uploaded, right after its upload, and
//! at start (and every retry interval) those older than the upload deadline, which no live
//! upload can be.
//!
//! object_store has no call that lists multipart uploads, so the `ListMultipartUploads`
//! request is presigned by object_store (its credentials and signing) and sent with a plain
//! HTTP client; aborting goes through object_store. A bucket lifecycle rule remains the
//! second line of defence (`AbortIncompleteMultipartUpload`, e.g. after 1 day).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::aws::AmazonS3;
use object_store::multipart::MultipartStore;
use object_store::path::Path as StorePath;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use serde::Deserialize;

use crate::spool::ARCHIVE_SUFFIX;

/// Most listing pages read in one sweep (1000 uploads each).
const MAX_PAGES: usize = 100;
/// How long a presigned listing URL is valid.
const URL_LIFETIME: Duration = Duration::from_secs(300);

/// Lists and aborts this recorder's stale multipart uploads on S3.
pub(crate) struct StaleUploads {
    s3: Arc<AmazonS3>,
    /// `prefix/` (or empty): only keys under it are touched.
    prefix: String,
    http: reqwest::Client,
}

/// Which incomplete uploads to abort.
pub(crate) enum Which<'a> {
    /// Every one of this key (it was just uploaded whole).
    Key(&'a str),
    /// Every archive upload under the prefix started longer ago than this.
    OlderThan(Duration),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
    #[serde(default)]
    initiated: Option<String>,
}

impl StaleUploads {
    pub(crate) fn new(s3: Arc<AmazonS3>, prefix: &str) -> Self {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        StaleUploads {
            s3,
            prefix,
            http: reqwest::Client::new(),
        }
    }

    /// Aborts the matching incomplete uploads; returns how many were aborted.
    pub(crate) async fn abort(&self, which: Which<'_>) -> Result<usize, String> {
        let list_prefix = match which {
            Which::Key(k) => k.to_string(),
            Which::OlderThan(_) => self.prefix.clone(),
        };
        let now = Utc::now();
        let mut aborted = 0;
        let mut markers: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list(&list_prefix, markers.as_ref()).await?;
            for u in &page.uploads {
                let ours = u.key.starts_with(&self.prefix) && u.key.ends_with(ARCHIVE_SUFFIX);
                let stale = match which {
                    Which::Key(k) => u.key == k,
                    Which::OlderThan(age) => u
                        .initiated
                        .as_deref()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| {
                            now.signed_duration_since(t.with_timezone(&Utc))
                                .to_std()
                                .is_ok_and(|d| d > age)
                        }),
                };
                if !(ours && stale) {
                    continue;
                }
                let path = StorePath::from(u.key.as_str());
                match self.s3.abort_multipart(&path, &u.upload_id).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => aborted += 1,
                    Err(e) => {
                        return Err(format!(
                            "aborting the stale multipart upload of {} failed: {e}",
                            u.key
                        ))
                    }
                }
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(u)) => markers = Some((k, u)),
                _ => return Ok(aborted),
            }
        }
        Ok(aborted)
    }

    async fn list(
        &self,
        prefix: &str,
        markers: Option<&(String, String)>,
    ) -> Result<ListMultipartUploadsResult, String> {
        let mut query = vec![
            ("uploads".to_string(), String::new()),
            ("prefix".to_string(), prefix.to_string()),
        ];
        if let Some((key, upload)) = markers {
            query.push(("key-marker".into(), key.clone()));
            query.push(("upload-id-marker".into(), upload.clone()));
        }
        let opts = SignedUrlOptions::new().with_query(query);
        let url = self
            .s3
            .signed_url_opts(Method::GET, &StorePath::from(""), URL_LIFETIME, &opts)
            .await
            .map_err(|e| format!("signing the multipart upload listing failed: {e}"))?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("listing multipart uploads failed: {e}"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("reading the multipart upload listing failed: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "listing multipart uploads failed: {status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        quick_xml::de::from_str(&body)
            .map_err(|e| format!("the multipart upload listing is not understood: {e}"))
    }
}
