//! Who may upload: a bearer JWT signed (HS256) with the LiveKit API secret, issued by the
//! matching API key (`iss`), not expired, not before its `nbf`, and carrying the
//! observability write grant (`"observability": {"write": true}`), exactly what
//! `livekit.api.AccessToken().with_observability_grants(ObservabilityGrants(write=True))`
//! produces. Anything else is refused before a byte of the body is read.

use jsonwebtoken::{decode, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf`, seconds.
const LEEWAY_S: u64 = 30;

/// The API key and secret the agents sign with.
#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    observability: Option<ObservabilityGrant>,
}

#[derive(Deserialize)]
struct ObservabilityGrant {
    #[serde(default)]
    write: bool,
}

/// Why a request was refused (all answered 401; the text goes in the response body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Missing,
    NotBearer,
    Expired,
    NotYetValid,
    BadSignature,
    WrongIssuer,
    NoGrant,
    Malformed(String),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Missing => write!(
                f,
                "no Authorization header: send `Bearer <JWT>` signed with the LiveKit API secret"
            ),
            Denied::NotBearer => write!(f, "the Authorization header is not `Bearer <JWT>`"),
            Denied::Expired => write!(f, "the token has expired"),
            Denied::NotYetValid => write!(
                f,
                "the token is not valid yet (nbf in the future; check the clocks)"
            ),
            Denied::BadSignature => write!(
                f,
                "the token's signature does not match this collector's API secret"
            ),
            Denied::WrongIssuer => write!(f, "the token was issued for another API key (iss)"),
            Denied::NoGrant => write!(f, "the token lacks the observability write grant"),
            Denied::Malformed(why) => write!(f, "the token is not a valid JWT: {why}"),
        }
    }
}

impl Credentials {
    pub fn new(api_key: impl Into<String>, api_secret: &str) -> Credentials {
        let api_key = api_key.into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        validation.set_issuer(&[api_key.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_aud = false;
        Credentials {
            api_key,
            key: DecodingKey::from_secret(api_secret.as_bytes()),
            validation,
        }
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Denied> {
        let value = authorization.ok_or(Denied::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(Denied::NotBearer)?
            .trim();
        let data =
            decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Denied::Expired,
                ErrorKind::ImmatureSignature => Denied::NotYetValid,
                ErrorKind::InvalidSignature => Denied::BadSignature,
                ErrorKind::InvalidIssuer => Denied::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) => {
                    Denied::Malformed(format!("missing claim `{c}`"))
                }
                _ => Denied::Malformed(e.to_string()),
            })?;
        match data.claims.observability {
            Some(ObservabilityGrant { write: true }) => Ok(()),
            _ => Err(Denied::NoGrant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn claims(exp_in: i64, grant: serde_json::Value) -> serde_json::Value {
        json!({"sub": "", "iss": "APIkey", "nbf": now() - 5, "exp": now() + exp_in,
               "observability": grant})
    }

    #[test]
    fn accepts_what_livekit_signs_and_refuses_the_rest() {
        let c = Credentials::new("APIkey", "secret");
        let good = token("secret", claims(3600, json!({"write": true})));
        assert_eq!(c.check(Some(&format!("Bearer {good}"))), Ok(()));
        assert_eq!(c.check(None), Err(Denied::Missing));
        assert_eq!(c.check(Some(&good)), Err(Denied::NotBearer));
        let other = token("another", claims(3600, json!({"write": true})));
        assert_eq!(
            c.check(Some(&format!("Bearer {other}"))),
            Err(Denied::BadSignature)
        );
        let expired = token("secret", claims(-3600, json!({"write": true})));
        assert_eq!(
            c.check(Some(&format!("Bearer {expired}"))),
            Err(Denied::Expired)
        );
        let read_only = token("secret", claims(3600, json!({"write": false})));
        assert_eq!(
            c.check(Some(&format!("Bearer {read_only}"))),
            Err(Denied::NoGrant)
        );
        let mut foreign = claims(3600, json!({"write": true}));
        foreign["iss"] = json!("otherKey");
        let foreign = token("secret", foreign);
        assert_eq!(
            c.check(Some(&format!("Bearer {foreign}"))),
            Err(Denied::WrongIssuer)
        );
        assert!(matches!(
            c.check(Some("Bearer not.a.jwt")),
            Err(Denied::Malformed(_))
        ));
    }
}
