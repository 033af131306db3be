//! Why an upload attempt failed, and whether trying again can help: a missing bucket, refused
//! or missing credentials are permanent (retrying them only spends the deadline; the archive
//! stays in the spool and is tried again by the next scan); anything else is transient.

/// S3 settings that give the store credentials without the instance metadata service.
pub(crate) const AWS_CREDENTIAL_HELP: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID \
     and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or \
     AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or run on an instance or container with a \
     role; AWS_PROFILE and ~/.aws/credentials are not read (export a profile's credentials \
     with `aws configure export-credentials --profile NAME --format env`)";

/// One failed attempt.
#[derive(Debug)]
pub(crate) struct AttemptFailure {
    pub message: String,
    /// Retrying within this upload cannot help.
    pub permanent: bool,
}

impl AttemptFailure {
    pub(crate) fn transient(message: String) -> Self {
        AttemptFailure {
            message,
            permanent: false,
        }
    }

    /// Classifies an object store error from writing the object. `instance_metadata`: the
    /// endpoint a store without configured credentials asks for them.
    pub(crate) fn from_store(e: object_store::Error, instance_metadata: Option<&str>) -> Self {
        let text = e.to_string();
        let host = instance_metadata.map(|u| u.trim_start_matches("http://").trim_end_matches('/'));
        if host.is_some_and(|h| !h.is_empty() && text.contains(h)) {
            return AttemptFailure {
                message: format!(
                    "{AWS_CREDENTIAL_HELP} (the instance metadata service said: {text})"
                ),
                permanent: true,
            };
        }
        let (message, permanent) = match e {
            object_store::Error::NotFound { .. } => (
                format!(
                    "the bucket or container does not exist ({text}); create it or fix the \
                     destination URL"
                ),
                true,
            ),
            object_store::Error::PermissionDenied { .. } => (
                format!("the store refused access ({text}); check the credentials' permissions"),
                true,
            ),
            object_store::Error::Unauthenticated { .. } => (
                format!("the store refused the credentials ({text}); check them"),
                true,
            ),
            _ => (text, false),
        };
        AttemptFailure { message, permanent }
    }
}
