//! Extractors that validate at the boundary: a handler's signature says what it needs, and a
//! rejection is the error envelope with the path of the bad field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use memberd_core::Scope;
use memberd_core::Timestamp;
use serde::de::DeserializeOwned;

use std::marker::PhantomData;

use axum::response::Response;

use crate::error::{ApiError, ErrorFormat, NativeErrors};

/// The tenant a request acts for, set by the authentication middleware.
#[derive(Debug, Clone)]
pub struct Authed {
    pub key_id: memberd_core::KeyId,
    pub scope: Scope,
    /// The app's shop domain, if it is a store.
    pub shop_domain: Option<String>,
    /// What the rate limit counts against: the key, or for Appstle's face the store.
    pub limit_key: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Authed>().cloned().ok_or_else(|| {
            tracing::error!("a handler that needs a key is mounted outside the key middleware");
            ApiError::internal()
        })
    }
}

/// A JSON body parsed into `T`. An empty body reads as `{}`, so that bodiless POSTs such as
/// `…/resume` work and a missing required field is named rather than the body. A refusal is
/// written in the envelope of the face `F`.
pub struct ValidJson<T, F = NativeErrors>(pub T, pub PhantomData<F>);

impl<T, F> ValidJson<T, F> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T, S, F> FromRequest<S> for ValidJson<T, F>
where
    T: DeserializeOwned,
    S: Send + Sync,
    F: ErrorFormat,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            F::render(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                body_too_large()
            } else {
                ApiError::invalid("body", "unreadable_body", rejection.body_text())
            })
        })?;
        parse_json(&bytes)
            .map(|value| ValidJson(value, PhantomData))
            .map_err(F::render)
    }
}

/// A query string parsed into `T`, refused in the envelope of the face `F` with the parameter
/// named (axum's own `Query` answers in plain text).
pub struct ValidQuery<T, F = NativeErrors>(pub T, pub PhantomData<F>);

impl<T, S, F> FromRequestParts<S> for ValidQuery<T, F>
where
    T: DeserializeOwned,
    S: Send + Sync,
    F: ErrorFormat,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(|value| ValidQuery(value, PhantomData))
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let param = match message.split('`').nth(1) {
                    Some(name) if message.starts_with("duplicate field") => name.to_owned(),
                    _ if path != "." => path,
                    _ => "query".to_owned(),
                };
                F::render(ApiError::invalid(
                    param.clone(),
                    "invalid_parameter",
                    format!("{param}: {message}"),
                ))
            })
    }
}

pub fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "body_too_large",
        "the request body is larger than this server accepts",
    )
}

/// Parses a JSON body, naming the field at fault when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde would read a struct from an array too; a body is an object.
    let opens_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !opens_object && serde_json::from_slice::<serde_json::Value>(bytes).is_ok() {
        return Err(ApiError::invalid(
            "body",
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    refuse_nul(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid(
                "body",
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = without_position(&inner.to_string());
        let param = field_of(&path, &message);
        ApiError::invalid(
            param.clone(),
            "invalid_field",
            format!("{param}: {message}"),
        )
    })?;
    de.end().map_err(|inner| {
        ApiError::invalid(
            "body",
            "invalid_json",
            format!("the body is not valid JSON: {inner}"),
        )
    })?;
    Ok(value)
}

/// Refuses a body with NUL in any string or key (the core's rule, `fields::nul_in`). JSON can
/// only carry NUL escaped, so a body without the escape is passed over without being parsed
/// twice; with it (or with `\\u0000`, which is not NUL) the parsed body says where.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match memberd_core::fields::nul_in(&value, "") {
        Some(field) => {
            let message = format!("{field} must not contain a NUL character");
            Err(ApiError::invalid(field, "invalid_characters", message))
        }
        None => Ok(()),
    }
}

/// Refuses a request whose path or query holds NUL (`%00`), naming the query parameter.
pub fn refuse_nul_in_uri(uri: &axum::http::Uri) -> Result<(), ApiError> {
    if uri.path().contains("%00") {
        return Err(ApiError::invalid(
            "path",
            "invalid_characters",
            "the path must not contain a NUL character",
        ));
    }
    let Some(query) = uri.query().filter(|q| q.contains("%00")) else {
        return Ok(());
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let clean = name.replace('\0', "");
        memberd_core::fields::check_no_nul(&clean, &name)?;
        memberd_core::fields::check_no_nul(&clean, &value)?;
    }
    Ok(())
}

/// The wire name of the field an error is about. serde reports a missing or unknown field
/// against its parent, with the name in backticks in the message.
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (path, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// serde_json ends its messages with " at line 1 column 39", which says nothing once the
/// field is named.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Reads `PATCH` fields that distinguish "absent" (leave alone) from `null` (clear).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

/// Parses an optional query parameter with `parse`, naming it when it does not parse.
pub fn query_param<T>(
    name: &str,
    value: Option<&str>,
    expected: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(raw) => parse(raw).map(Some).ok_or_else(|| {
            ApiError::invalid(
                name,
                "invalid_parameter",
                format!("{name} must be {expected}, got {raw:?}"),
            )
        }),
    }
}

pub fn parse_timestamp(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    query_param(
        name,
        value,
        "an RFC 3339 time such as 2026-01-31T12:00:00Z or a date such as 2026-01-31",
        Timestamp::parse,
    )
}
