//! Member session tokens: ES256 JWTs signed with the server's own keys, which
//! `/.well-known/jwks.json` publishes so that a site verifies them offline.
//!
//! The keys live in the database (every node signs with the same newest key and verifies with
//! any); a node loads them on first use and again every `RELOAD_EVERY`, or at once when it meets
//! a token signed by a key it does not know yet (`memberd signing-keys rotate` on another node).
//! A token that verified once is remembered, so the hot path (`GET /member`) costs a hash
//! lookup rather than an ECDSA verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use memberd_core::account::SESSION_LIFETIME_DAYS_MAX;
use memberd_core::{AppId, MemberId, SessionId, Timestamp};
use memberd_store::{SigningKeyRow, Store, StoreError};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};

const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// How often an unknown `kid` may make a node reload its keys.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);
const VERIFIED_MAX: usize = 10_000;

/// What a member token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The member.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub iat: i64,
    pub exp: i64,
    /// The app.
    pub aud: String,
    pub iss: String,
    /// The session.
    pub sid: String,
}

/// A token that verified: its claims, with the member and session they name.
#[derive(Debug)]
pub struct Verified {
    pub claims: Claims,
    pub member: MemberId,
    pub session: SessionId,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Signing(String),
}

struct Keys {
    /// The key new tokens are signed with.
    current: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    loaded_at: Instant,
}

/// Signs and verifies member tokens. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    issuer: String,
    keys: RwLock<Option<Keys>>,
    reload: tokio::sync::Mutex<Instant>,
    verified: Mutex<FxHashMap<Box<str>, Arc<Verified>>>,
}

/// A new P-256 key pair as the store keeps it.
pub fn generate_signing_key(now: Timestamp) -> Result<SigningKeyRow, TokenError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    // Uncompressed point: 0x04, x, y.
    let point = pair.public_key().as_ref();
    let (x, y) = point[1..].split_at(32);
    Ok(SigningKeyRow {
        kid: format!("sig_{}", memberd_core::ids::random_suffix(16)),
        private_key: STANDARD.encode(pkcs8.as_ref()),
        public_x: URL_SAFE_NO_PAD.encode(x),
        public_y: URL_SAFE_NO_PAD.encode(y),
        created_at: now,
        retired_at: None,
    })
}

/// Keys retired longer ago than the longest session are no longer published.
pub fn forget_retired_before(now: Timestamp) -> Timestamp {
    Timestamp::from_micros(
        now.as_micros() - i64::from(SESSION_LIFETIME_DAYS_MAX + 1) * 86_400 * 1_000_000,
    )
}

/// Makes the first signing key when there is none (`memberd serve` at its first start); two
/// nodes starting at once make one.
pub async fn ensure_signing_key(store: &Store) -> Result<(), TokenError> {
    let keys = store.signing_keys().await?;
    if !keys.iter().any(|k| k.retired_at.is_none()) {
        let key = generate_signing_key(crate::ops::now())?;
        store
            .add_signing_key(&key, forget_retired_before(key.created_at), true)
            .await?;
    }
    Ok(())
}

/// Adds a new signing key; the old ones verify what they signed until it expires.
pub async fn rotate(store: &Store, now: Timestamp) -> Result<SigningKeyRow, TokenError> {
    let key = generate_signing_key(now)?;
    store
        .add_signing_key(&key, forget_retired_before(now), false)
        .await?;
    Ok(key)
}

fn load(rows: &[SigningKeyRow]) -> Result<Keys, TokenError> {
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    let mut current = None;
    for row in rows {
        let decoding = DecodingKey::from_ec_components(&row.public_x, &row.public_y)
            .map_err(|e| TokenError::Signing(format!("key {}: {e}", row.kid)))?;
        verifying.insert(row.kid.clone(), decoding);
        published.push(serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": row.kid,
            "x": row.public_x,
            "y": row.public_y,
        }));
        if row.retired_at.is_none() {
            let der = STANDARD
                .decode(&row.private_key)
                .map_err(|e| TokenError::Signing(format!("key {}: {e}", row.kid)))?;
            current = Some((row.kid.clone(), EncodingKey::from_ec_der(&der)));
        }
    }
    Ok(Keys {
        current,
        verifying,
        jwks: serde_json::json!({ "keys": published }),
        loaded_at: Instant::now(),
    })
}

impl Tokens {
    pub fn new(store: Store, issuer: String) -> Tokens {
        Tokens {
            inner: Arc::new(Inner {
                store,
                issuer,
                keys: RwLock::new(None),
                reload: tokio::sync::Mutex::new(Instant::now() - RELOAD_AT_MOST_EVERY),
                verified: Mutex::default(),
            }),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Loads the keys from the store, making the first one when there is none.
    async fn reload(&self) -> Result<(), TokenError> {
        let mut last = self.inner.reload.lock().await;
        ensure_signing_key(&self.inner.store).await?;
        let keys = load(&self.inner.store.signing_keys().await?)?;
        if let Ok(mut slot) = self.inner.keys.write() {
            *slot = Some(keys);
        }
        *last = Instant::now();
        Ok(())
    }

    async fn ensure_loaded(&self) -> Result<(), TokenError> {
        let stale = match self.inner.keys.read() {
            Ok(keys) => keys
                .as_ref()
                .is_none_or(|k| k.loaded_at.elapsed() > RELOAD_EVERY),
            Err(_) => true,
        };
        if stale {
            self.reload().await?;
        }
        Ok(())
    }

    /// Signs a token for a member's session.
    pub async fn sign(
        &self,
        app: &AppId,
        member: &MemberId,
        session: &SessionId,
        issued: Timestamp,
        expires: Timestamp,
    ) -> Result<String, TokenError> {
        self.ensure_loaded().await?;
        let claims = Claims {
            id: member.to_string(),
            kind: "member".into(),
            iat: issued.as_unix_millis().div_euclid(1000),
            exp: expires.as_unix_millis().div_euclid(1000),
            aud: app.to_string(),
            iss: self.inner.issuer.clone(),
            sid: session.to_string(),
        };
        let keys = self
            .inner
            .keys
            .read()
            .map_err(|_| TokenError::Signing("the key lock is poisoned".into()))?;
        let (kid, key) = keys
            .as_ref()
            .and_then(|k| k.current.as_ref())
            .ok_or_else(|| TokenError::Signing("no signing key".into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// The claims of a token this server signed, unexpired, with the type `member`. Whether
    /// its session is still live is for the caller to ask.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        let now_secs = crate::ops::now().as_unix_millis().div_euclid(1000);
        if let Some(verified) = self.remembered(token) {
            return if verified.claims.exp > now_secs {
                Ok(verified)
            } else {
                Err(TokenError::Invalid)
            };
        }
        self.ensure_loaded().await?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        if !self.knows(&kid) && self.may_reload().await {
            self.reload().await?;
        }
        let claims = {
            let keys = self.inner.keys.read().map_err(|_| TokenError::Invalid)?;
            let key = keys
                .as_ref()
                .and_then(|k| k.verifying.get(&kid))
                .ok_or(TokenError::Invalid)?;
            let mut validation = Validation::new(Algorithm::ES256);
            validation.set_issuer(&[&self.inner.issuer]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.validate_aud = false;
            validation.leeway = 0;
            jsonwebtoken::decode::<Claims>(token, key, &validation)
                .map_err(|_| TokenError::Invalid)?
                .claims
        };
        if claims.kind != "member" {
            return Err(TokenError::Invalid);
        }
        let (Some(member), Some(session)) =
            (MemberId::parse(&claims.id), SessionId::parse(&claims.sid))
        else {
            return Err(TokenError::Invalid);
        };
        let verified = Arc::new(Verified {
            claims,
            member,
            session,
        });
        self.remember(token, &verified);
        Ok(verified)
    }

    fn remembered(&self, token: &str) -> Option<Arc<Verified>> {
        self.inner.verified.lock().ok()?.get(token).cloned()
    }

    fn remember(&self, token: &str, verified: &Arc<Verified>) {
        if let Ok(mut remembered) = self.inner.verified.lock() {
            if remembered.len() >= VERIFIED_MAX {
                remembered.clear();
            }
            remembered.insert(token.into(), Arc::clone(verified));
        }
    }

    fn knows(&self, kid: &str) -> bool {
        self.inner
            .keys
            .read()
            .ok()
            .and_then(|k| k.as_ref().map(|k| k.verifying.contains_key(kid)))
            .unwrap_or(false)
    }

    async fn may_reload(&self) -> bool {
        self.inner.reload.lock().await.elapsed() >= RELOAD_AT_MOST_EVERY
    }

    /// The public keys, as a JWK Set.
    pub async fn jwks(&self) -> Result<serde_json::Value, TokenError> {
        self.ensure_loaded().await?;
        let keys = self.inner.keys.read().map_err(|_| TokenError::Invalid)?;
        Ok(keys
            .as_ref()
            .map(|k| k.jwks.clone())
            .unwrap_or_else(|| serde_json::json!({ "keys": [] })))
    }
}
