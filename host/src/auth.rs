//! Bearer-token authentication: JWT verification (HS256 secret from the
//! environment, RS256/ES256 public keys from files) and dev-token minting.

use crate::bindings::types::Caller;
use crate::config::AuthConfig;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

/// Why auth could not be set up, or a token not minted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A key file could not be read or parsed.
    #[error("auth key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// No HS256 secret is available for minting.
    #[error("no HS256 secret: set {0} (or auth.dev_secret in a dev profile)")]
    NoSecret(String),
    /// Encoding failed.
    #[error("cannot mint token: {0}")]
    Mint(String),
}

/// Claims gantry reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The caller's id.
    pub sub: String,
    /// Roles, e.g. ["ADMIN"] or ["USER"].
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    #[serde(default)]
    pub iat: u64,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Tenant (Entra ID's `tid`): which directory the caller signed in to.
    /// gantry does not check it; Azure clients read it from their token
    /// (the Azure CLI's `az login --identity` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
}

/// How far the issuer's clock may be from gantry's, in seconds: `exp`,
/// `nbf` and `iat` are checked with this much leeway.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// Seconds since the epoch, now.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<(Algorithm, DecodingKey)>,
    secret: Option<Vec<u8>>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Verifier {
    /// Build from config: the HS256 secret comes from the named environment variable.
    pub fn from_config(c: &AuthConfig) -> Result<Self, AuthError> {
        let secret = c
            .hs256_secret_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|s| !s.is_empty())
            .or_else(|| c.dev_secret.clone())
            .map(String::into_bytes);
        let mut keys = Vec::new();
        if let Some(s) = &secret {
            keys.push((Algorithm::HS256, DecodingKey::from_secret(s)));
        }
        for (alg, files) in [
            (Algorithm::RS256, &c.rs256_public_keys),
            (Algorithm::ES256, &c.es256_public_keys),
        ] {
            for f in files {
                let path = f.display().to_string();
                let pem = std::fs::read(f).map_err(|e| AuthError::Key {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let key = if alg == Algorithm::RS256 {
                    DecodingKey::from_rsa_pem(&pem)
                } else {
                    DecodingKey::from_ec_pem(&pem)
                }
                .map_err(|e| AuthError::Key {
                    path,
                    message: e.to_string(),
                })?;
                keys.push((alg, key));
            }
        }
        Ok(Self {
            keys,
            secret,
            issuer: c.issuer.clone(),
            audience: c.audience.clone(),
        })
    }

    /// Verify an `Authorization` header value. `Err` carries a reason fit for a 401.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, String> {
        let header = header.ok_or("missing bearer token")?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or("the Authorization header is not a bearer token")?
            .trim();
        self.verify(token)
    }

    /// Verify a token.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let mut last = String::from("no key configured for this token's algorithm");
        for (alg, key) in self.keys.iter().filter(|(a, _)| *a == header.alg) {
            let mut v = Validation::new(*alg);
            v.set_required_spec_claims(&["exp", "sub"]);
            // A token not valid yet is refused like an expired one.
            v.validate_nbf = true;
            v.leeway = CLOCK_SKEW_SECS;
            if let Some(i) = &self.issuer {
                v.set_issuer(&[i]);
            }
            match &self.audience {
                Some(a) => v.set_audience(&[a]),
                None => v.validate_aud = false,
            }
            match decode::<Claims>(token, key, &v) {
                Ok(data) if data.claims.sub.trim().is_empty() => {
                    return Err("invalid token: the subject (`sub`) is empty".into());
                }
                // jsonwebtoken does not look at `iat`: a token issued in the
                // future was minted by a clock (or a hand) gantry's disagrees with.
                Ok(data) if data.claims.iat > now_secs().saturating_add(CLOCK_SKEW_SECS) => {
                    return Err("invalid token: issued in the future (`iat`)".into());
                }
                Ok(data) => {
                    return Ok(Caller {
                        subject: data.claims.sub,
                        roles: data.claims.roles,
                    });
                }
                Err(e) => last = format!("invalid token: {e}"),
            }
        }
        Err(last)
    }

    /// Mint an HS256 token for `sub` with `roles` (and `tenant` as its
    /// `tid` claim), valid for `ttl_secs`.
    pub fn mint(
        &self,
        sub: &str,
        roles: &[String],
        tenant: Option<&str>,
        ttl_secs: u64,
        secret_env: &str,
    ) -> Result<String, AuthError> {
        if sub.trim().is_empty() {
            return Err(AuthError::Mint("the subject must not be empty".into()));
        }
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| AuthError::NoSecret(secret_env.to_string()))?;
        let iat = now_secs();
        let claims = Claims {
            sub: sub.to_string(),
            roles: roles.to_vec(),
            exp: iat + ttl_secs,
            iat,
            iss: self.issuer.clone(),
            nbf: None,
            tid: tenant.map(str::to_string),
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|e| AuthError::Mint(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(secret: &str) -> Verifier {
        Verifier::from_config(&AuthConfig {
            dev_secret: Some(secret.into()),
            ..Default::default()
        })
        .expect("verifier")
    }

    #[test]
    fn minted_token_round_trips() {
        let v = verifier("s3cret");
        let t = v
            .mint("alice", &["ADMIN".into()], None, 60, "X")
            .expect("mint");
        let c = v
            .verify_header(Some(&format!("Bearer {t}")))
            .expect("valid");
        assert_eq!(c.subject, "alice");
        assert!(c.is_admin());
    }

    #[test]
    fn a_tenant_is_minted_as_the_tid_claim() {
        let v = verifier("s3cret");
        let t = v
            .mint("alice", &[], Some("tenant-1"), 60, "X")
            .expect("mint");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        let claims = decode::<Claims>(&t, &DecodingKey::from_secret(b"s3cret"), &validation)
            .expect("decodes")
            .claims;
        assert_eq!(claims.tid.as_deref(), Some("tenant-1"));
        assert_eq!(v.verify(&t).expect("valid").subject, "alice");
        let plain = v.mint("alice", &[], None, 60, "X").expect("mint");
        let claims = decode::<Claims>(&plain, &DecodingKey::from_secret(b"s3cret"), &validation)
            .expect("decodes")
            .claims;
        assert_eq!(claims.tid, None, "no tenant, no tid claim");
    }

    fn signed(alg: Algorithm, private_pem: &str, sub: &str) -> String {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        }
        .expect("test private key");
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + 60;
        encode(
            &Header::new(alg),
            &Claims {
                sub: sub.into(),
                roles: vec!["USER".into()],
                exp,
                iat: 0,
                iss: None,
                nbf: None,
                tid: None,
            },
            &key,
        )
        .expect("sign")
    }

    #[test]
    fn rs256_and_es256_tokens_verify_against_public_key_files() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let v = Verifier::from_config(&AuthConfig {
            rs256_public_keys: vec![data.join("rs256-public.pem")],
            es256_public_keys: vec![data.join("es256-public.pem")],
            ..Default::default()
        })
        .expect("verifier with key files");
        let rs = signed(
            Algorithm::RS256,
            include_str!("../testdata/rs256-private.pem"),
            "rsa-user",
        );
        assert_eq!(v.verify(&rs).expect("RS256 verifies").subject, "rsa-user");
        let es = signed(
            Algorithm::ES256,
            include_str!("../testdata/es256-private.pem"),
            "ec-user",
        );
        assert_eq!(v.verify(&es).expect("ES256 verifies").subject, "ec-user");
        // No HS256 secret is configured: an HS256 token is refused, whatever its signature.
        let hs = verifier("anything")
            .mint("mallory", &[], None, 60, "X")
            .expect("mint");
        assert!(v.verify(&hs).is_err());
        // A key file that is not a key is a start-up error naming the file.
        let err = Verifier::from_config(&AuthConfig {
            rs256_public_keys: vec![data.join("README")],
            ..Default::default()
        })
        .err()
        .expect("bad key file refused");
        assert!(err.to_string().contains("README"), "{err}");
    }

    #[test]
    fn wrong_secret_missing_and_expired_tokens_are_refused() {
        let t = verifier("one")
            .mint("bob", &[], None, 60, "X")
            .expect("mint");
        assert!(verifier("two").verify(&t).is_err());
        assert!(verifier("one").verify_header(None).is_err());
        assert!(verifier("one").verify_header(Some("Basic abc")).is_err());
        let v = verifier("one");
        let expired = encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "bob".into(),
                roles: vec![],
                exp: 1,
                iat: 0,
                iss: None,
                nbf: None,
                tid: None,
            },
            &EncodingKey::from_secret(b"one"),
        )
        .expect("encode");
        assert!(v.verify(&expired).is_err());
    }

    fn hs256(claims: &Claims, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn now() -> u64 {
        now_secs()
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused_past_the_clock_skew() {
        let v = verifier("one");
        let future = Claims {
            sub: "bob".into(),
            roles: vec![],
            exp: now() + 2 * 86_400,
            iat: now() + 86_400,
            iss: None,
            nbf: None,
            tid: None,
        };
        let err = v
            .verify(&hs256(&future, "one"))
            .expect_err("iat a day ahead");
        assert!(err.contains("issued in the future"), "{err}");
        let skewed = Claims {
            iat: now() + CLOCK_SKEW_SECS / 2,
            ..future
        };
        assert_eq!(
            v.verify(&hs256(&skewed, "one"))
                .expect("within the skew")
                .subject,
            "bob"
        );
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let v = verifier("one");
        let early = Claims {
            sub: "bob".into(),
            roles: vec![],
            exp: now() + 3600,
            iat: now(),
            iss: None,
            nbf: Some(now() + 600),
            tid: None,
        };
        let err = v
            .verify(&hs256(&early, "one"))
            .expect_err("nbf in the future");
        assert!(err.contains("invalid token"), "{err}");
        let ready = Claims {
            nbf: Some(now() - 600),
            ..early
        };
        assert_eq!(
            v.verify(&hs256(&ready, "one")).expect("valid").subject,
            "bob"
        );
    }

    #[test]
    fn an_empty_subject_is_refused() {
        let v = verifier("one");
        for sub in ["", "  "] {
            let claims = Claims {
                sub: sub.into(),
                roles: vec!["ADMIN".into()],
                exp: now() + 60,
                iat: now(),
                iss: None,
                nbf: None,
                tid: None,
            };
            let err = v.verify(&hs256(&claims, "one")).expect_err("empty sub");
            assert!(err.contains("subject"), "{err}");
        }
    }
}
