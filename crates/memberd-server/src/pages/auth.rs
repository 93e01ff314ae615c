//! Who is asking, for pages: the operator's session cookie, the CSRF token every form
//! carries, and the extractors that check both, so that a handler cannot forget them.
//!
//! The CSRF token is derived from the secret in the cookie it goes with (the session, or
//! before sign-in a form cookie), so it needs no storage: a page of another site can neither
//! read the cookie nor compute the token, and SameSite=Strict keeps the cookie off its
//! requests besides.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use memberd_core::operator::Operator;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::PageError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "memberd_session";
pub const FORM_COOKIE: &str = "memberd_form";
/// The name of the hidden field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A new secret for a cookie or a link: 40 characters of 36, about 206 bits.
pub fn new_token() -> String {
    memberd_core::ids::random_suffix(40)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    crate::ops::to_hex(&Sha256::digest(token.as_bytes()))
}

/// The CSRF token of the forms sent with the cookie holding `secret`.
pub fn csrf_token(secret: &str) -> String {
    let digest = Sha256::digest(format!("memberd dashboard form\0{secret}").as_bytes());
    crate::ops::to_hex(&digest[..16])
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether cookies must be marked Secure: when members and operators reach memberd over
/// https (its public URL says so).
fn secure(state: &AppState) -> bool {
    state
        .config()
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"))
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/dashboard")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(state))
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("cookie text is ASCII without controls")
}

/// The `Set-Cookie` that signs a browser in.
pub fn session_cookie(state: &AppState, token: &str) -> (axum::http::HeaderName, HeaderValue) {
    let hours = memberd_core::operator::SESSION_HOURS as i64;
    (
        SET_COOKIE,
        set_cookie(state, SESSION_COOKIE, token, hours * 3600),
    )
}

/// The `Set-Cookie` that forgets the session.
pub fn cleared_session_cookie(state: &AppState) -> (axum::http::HeaderName, HeaderValue) {
    (SET_COOKIE, set_cookie(state, SESSION_COOKIE, "", 0))
}

/// A signed-in operator, and the CSRF token of their forms.
#[derive(Clone)]
pub struct SignedIn {
    pub operator: Operator,
    pub csrf: String,
    pub session_hash: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        if let Some(signed_in) = parts.extensions.get::<SignedIn>() {
            return Ok(signed_in.clone());
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or("/dashboard", |p| p.as_str())
            .to_owned();
        let token = cookie_value(&parts.headers, SESSION_COOKIE)
            .ok_or(PageError::SignIn { next: next.clone() })?;
        let session_hash = token_hash(&token);
        let operator = state
            .store()
            .operator_session(&session_hash, state.now())
            .await?
            .ok_or(PageError::SignIn { next })?;
        let signed_in = SignedIn {
            operator,
            csrf: csrf_token(&token),
            session_hash,
        };
        parts.extensions.insert(signed_in.clone());
        Ok(signed_in)
    }
}

/// The form cookie of pages shown before sign-in (sign-in, setting a password): the one the
/// browser has, or a new one to set with the page.
pub struct FormCookie {
    pub csrf: String,
    /// To send with the page when the browser had none.
    pub set: Option<(axum::http::HeaderName, HeaderValue)>,
}

impl FromRequestParts<AppState> for FormCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(match cookie_value(&parts.headers, FORM_COOKIE) {
            Some(secret) => FormCookie {
                csrf: csrf_token(&secret),
                set: None,
            },
            None => {
                let secret = new_token();
                FormCookie {
                    csrf: csrf_token(&secret),
                    set: Some((
                        SET_COOKIE,
                        set_cookie(state, FORM_COOKIE, &secret, 24 * 3600),
                    )),
                }
            }
        })
    }
}

/// A form posted by a signed-in operator, parsed into `T` once its CSRF token matches their
/// session. Pair it with `Place` or `SignedIn`, which check the session itself.
pub struct CsrfForm<T>(pub T);

/// A form posted before sign-in, checked against the form cookie.
pub struct PublicForm<T>(pub T);

/// Whether a sent token is the expected one, in time that does not tell how much matched.
pub fn same_token(sent: &str, expected: &str) -> bool {
    sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn checked_form<T: DeserializeOwned>(
    req: Request,
    state: &AppState,
    cookie: &str,
) -> Result<T, PageError> {
    let secret = cookie_value(req.headers(), cookie).ok_or(PageError::StaleForm)?;
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|_| PageError::bad_request("The form could not be read."))?;
    let mut token = None;
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(&bytes) {
        if name == CSRF_FIELD {
            token = Some(value.into_owned());
        } else {
            rest.append_pair(&name, &value);
        }
    }
    let expected = csrf_token(&secret);
    if !token.is_some_and(|t| same_token(&t, &expected)) {
        return Err(PageError::StaleForm);
    }
    serde_urlencoded::from_str(&rest.finish())
        .map_err(|e| PageError::bad_request(format!("The form could not be read: {e}.")))
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        checked_form(req, state, SESSION_COOKIE).await.map(CsrfForm)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for PublicForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        checked_form(req, state, FORM_COOKIE).await.map(PublicForm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_belongs_to_its_secret() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_eq!(csrf_token(&a).len(), 32);
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; memberd_session=abc"));
        headers.append(COOKIE, HeaderValue::from_static("memberd_form=xyz"));
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value(&headers, FORM_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&headers, "other"), None);
    }
}
