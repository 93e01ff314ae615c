//! The member-facing API at `/memberstack/client/`: what Memberstack's front-end SDK,
//! `@memberstack/dom`, speaks (see `reference/memberstack-dom.md`). A browser names the app
//! and environment with a publishable key (`X-API-Key: pk_…`), which grants nothing a secret
//! key grants, and a member with the token of a session (`Authorization: Bearer …`).
//!
//! Every answer is `{"data": …}`; every refusal is `{"error": {"code", "message"}}` with a
//! non-2xx status and the SDK's own codes (`invalid-credentials`, `plan-not-free`, …), and
//! carries the CORS headers too, or the SDK would see only `network-error`.

pub mod app;
pub mod auth;
pub mod codes;
pub mod content;
pub mod cors;
pub mod member;
pub mod misc;
pub mod render;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use memberd_core::{DomainError, MemberId, SessionId};
use memberd_store::{ClientEnv, StoreError};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{TokenError, Verified};

pub const TAG: &str = "memberstack client";

/// A refusal of the member-facing API, in the SDK's envelope and codes.
#[derive(Debug)]
pub struct ClientError(pub ApiError);

pub type ClientResult<T> = Result<T, ClientError>;

impl ClientError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ClientError(ApiError::new(status, "client_error", code, message))
    }

    pub fn login_required() -> Self {
        ClientError::new(
            StatusCode::UNAUTHORIZED,
            "login-required",
            "log in first: this call needs a member's session",
        )
    }

    pub fn invalid_token() -> Self {
        ClientError::new(
            StatusCode::UNAUTHORIZED,
            "client/invalid-token",
            "the session token is not valid: it has expired, was ended, or is not this app's",
        )
    }

    pub fn invalid_credentials() -> Self {
        ClientError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            "the email address or the password is wrong",
        )
    }
}

/// The SDK's code for one of the core's or the store's.
fn sdk_code(code: &str) -> String {
    match code {
        "invalid_email" => "invalid-email".into(),
        "paid_plan" => "plan-not-free".into(),
        "plan_already_connected" => "already-have-plan".into(),
        "unknown_plan" | "plan_not_found" => "plan-not-found".into(),
        "member_not_found" => "member-not-found".into(),
        "invalid_password" => "invalid-password".into(),
        other => other.replace('_', "-"),
    }
}

impl From<ApiError> for ClientError {
    fn from(mut err: ApiError) -> Self {
        if err.kind != "client_error" {
            err.code = sdk_code(&err.code).into();
        }
        ClientError(err)
    }
}

impl From<DomainError> for ClientError {
    fn from(err: DomainError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<StoreError> for ClientError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate { field: "email" } => ClientError::new(
                StatusCode::CONFLICT,
                "email-already-in-use",
                "another member of this app has that email address",
            ),
            other => ApiError::from(other).into(),
        }
    }
}

impl From<TokenError> for ClientError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Invalid => ClientError::invalid_token(),
            TokenError::Store(e) => e.into(),
            TokenError::Signing(e) => {
                tracing::error!(error = %e, "signing a member token failed");
                ClientError(ApiError::internal())
            }
        }
    }
}

impl IntoResponse for ClientError {
    fn into_response(self) -> Response {
        let err = self.0;
        let mut response = (
            err.status,
            axum::Json(json!({ "error": { "code": err.code, "message": err.message } })),
        )
            .into_response();
        if let Some(secs) = err.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}

/// The client API's error envelope, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ClientErrorEnvelope {
    pub error: crate::api::memberstack::MsErrorBody,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The environment a request's publishable key names, checked against its `X-APP-ID` and
/// `Origin`.
pub struct Client(pub Arc<ClientEnv>);

impl FromRequestParts<AppState> for Client {
    type Rejection = ClientError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ClientResult<Self> {
        crate::extract::refuse_nul_in_uri(&parts.uri)?;
        let Some(key) = header(&parts.headers, "x-api-key") else {
            return Err(ClientError::new(
                StatusCode::UNAUTHORIZED,
                "missing-public-key",
                "pass the app's publishable key (pk_…) as X-API-Key",
            ));
        };
        if !key.starts_with("pk_") {
            return Err(ClientError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-public-key",
                "X-API-Key must be a publishable key (pk_…); a secret key never belongs in a browser",
            ));
        }
        let env = state.store().client_env(key).await?.ok_or_else(|| {
            ClientError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-public-key",
                "no app has this publishable key",
            )
        })?;
        if let Some(app_id) = header(&parts.headers, "x-app-id") {
            if app_id != env.scope.app_id.as_str() {
                return Err(ClientError::new(
                    StatusCode::UNAUTHORIZED,
                    "app-not-found",
                    "X-APP-ID names another app than the publishable key's",
                ));
            }
        }
        if let Some(origin) = header(&parts.headers, "origin") {
            if !env.settings.allows_origin(env.scope.env, origin) {
                return Err(ClientError::new(
                    StatusCode::FORBIDDEN,
                    "origin-not-allowed",
                    "this site's origin is not among the app's allowed origins",
                ));
            }
        }
        Ok(Client(env))
    }
}

/// The bearer token a request carries, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A member's live session in the publishable key's environment.
pub struct Member {
    pub client: Arc<ClientEnv>,
    pub member_id: MemberId,
    pub session_id: SessionId,
}

/// A token this server signed for a member of the publishable key's app.
async fn verified_for(
    state: &AppState,
    client: &ClientEnv,
    token: &str,
) -> ClientResult<Arc<Verified>> {
    let verified = state.tokens().verify(token).await?;
    if verified.claims.aud != client.scope.app_id.as_str() {
        return Err(ClientError::invalid_token());
    }
    Ok(verified)
}

/// The member of a request's token when its session is live; `None` for no token or a dead
/// one. Session and member are read together (the hot path of `GET /member`).
pub async fn live_member(
    state: &AppState,
    client: &ClientEnv,
    headers: &HeaderMap,
) -> ClientResult<Option<memberd_store::MemberView>> {
    let Some(token) = bearer(headers) else {
        return Ok(None);
    };
    let verified = match verified_for(state, client, token).await {
        Ok(verified) => verified,
        Err(ClientError(e)) if e.code == "client/invalid-token" => return Ok(None),
        Err(other) => return Err(other),
    };
    let (session, member) = state
        .store()
        .get_session_and_member(&client.scope, &verified.session, &verified.member)
        .await?;
    let live = session.is_some_and(|s| s.member_id == verified.member && s.live(state.now()));
    Ok(member.filter(|_| live))
}

/// The member of the request's token, with what `live_member` says of it.
pub struct CurrentMember(pub Option<memberd_store::MemberView>);

impl FromRequestParts<AppState> for CurrentMember {
    type Rejection = ClientError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ClientResult<Self> {
        let Client(client) = Client::from_request_parts(parts, state).await?;
        Ok(CurrentMember(
            live_member(state, &client, &parts.headers).await?,
        ))
    }
}

/// What a request's token says, checked to the end: signature, expiry, app, environment and
/// a live session of the member.
pub async fn session_of(
    state: &AppState,
    client: &ClientEnv,
    token: &str,
) -> ClientResult<(MemberId, SessionId)> {
    let verified = verified_for(state, client, token).await?;
    let live = state
        .store()
        .get_session(&client.scope, &verified.session)
        .await?
        .is_some_and(|s| s.member_id == verified.member && s.live(state.now()));
    if !live {
        return Err(ClientError::invalid_token());
    }
    Ok((verified.member.clone(), verified.session.clone()))
}

impl Member {
    /// The member as they stand now.
    pub async fn view(&self, state: &AppState) -> ClientResult<memberd_store::MemberView> {
        state
            .store()
            .get_member(&self.client.scope, &self.member_id)
            .await?
            .ok_or_else(ClientError::invalid_token)
    }

    /// A change the member makes to themselves, checked by the core's rules. A new password
    /// ends their other sessions and keeps this one: the SDK goes on with the token it has.
    pub async fn patch(
        &self,
        state: &AppState,
        patch: memberd_core::MemberPatch,
    ) -> ClientResult<memberd_store::MemberView> {
        let now = state.now();
        let updated = state
            .store()
            .update_member_keeping(
                &self.client.scope,
                &self.member_id,
                Some(&self.session_id),
                |m| m.patch(patch, now),
            )
            .await?;
        state.wake_workers();
        // A new address tells the old one.
        state.wake_mailer();
        Ok(updated)
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ClientError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ClientResult<Self> {
        let Client(client) = Client::from_request_parts(parts, state).await?;
        let token = bearer(&parts.headers).ok_or_else(ClientError::login_required)?;
        let (member_id, session_id) = session_of(state, &client, token).await?;
        Ok(Member {
            client,
            member_id,
            session_id,
        })
    }
}

/// The member of the request's token when it is live; `None` without a token or with a
/// dead one (for the calls that answer either way: `GET /member`, logout).
pub struct MaybeMember(pub Client, pub Option<Member>);

impl FromRequestParts<AppState> for MaybeMember {
    type Rejection = ClientError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ClientResult<Self> {
        let Client(client) = Client::from_request_parts(parts, state).await?;
        let Some(token) = bearer(&parts.headers) else {
            return Ok(MaybeMember(Client(client), None));
        };
        match session_of(state, &client, token).await {
            Ok((member_id, session_id)) => Ok(MaybeMember(
                Client(Arc::clone(&client)),
                Some(Member {
                    client,
                    member_id,
                    session_id,
                }),
            )),
            Err(ClientError(e)) if e.code == "client/invalid-token" => {
                Ok(MaybeMember(Client(client), None))
            }
            Err(other) => Err(other),
        }
    }
}

/// A JSON object body, refused in the SDK's envelope. Unlike the admin faces' bodies, an
/// empty one is refused too: the SDK always sends one where a call takes it.
pub struct ClientJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S>
    for ClientJson<T>
{
    type Rejection = ClientError;

    async fn from_request(req: axum::extract::Request, state: &S) -> ClientResult<Self> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ClientError::from(crate::extract::body_too_large())
                } else {
                    ClientError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid-body",
                        rejection.body_text(),
                    )
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ClientError::new(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                "the body must be a JSON object",
            ));
        }
        Ok(ClientJson(crate::extract::parse_json(&bytes)?))
    }
}

/// The address a request came from, for the login, sign-up and email limits: the peer's, or
/// behind a `--trusted-proxy` the client's that it forwarded for.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<crate::PeerAddr>>()
            .map(|info| info.0 .0.ip())
        else {
            return Ok(ClientIp("unknown".into()));
        };
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|value| value.as_bytes());
        Ok(ClientIp(
            state
                .config()
                .trusted_proxies
                .client_of(peer, forwarded)
                .to_string(),
        ))
    }
}

/// The client API under `/memberstack/client`, with CORS, and its part of the OpenAPI
/// document.
pub fn router(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let routes = OpenApiRouter::new()
        .routes(routes!(app::get_app))
        .routes(routes!(app::get_plan))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(codes::send_reset_email))
        .routes(routes!(codes::reset_password))
        .routes(routes!(codes::passwordless_login_send))
        .routes(routes!(codes::passwordless_signup_send))
        .routes(routes!(codes::passwordless_login))
        .routes(routes!(codes::send_verification_email))
        .routes(routes!(codes::verify_email))
        .routes(routes!(member::current, member::update, member::delete))
        .routes(routes!(member::update_auth))
        .routes(routes!(member::set_password))
        .routes(routes!(member::get_json, member::update_json))
        .routes(routes!(app::add_plan))
        .routes(routes!(app::remove_plan))
        .routes(routes!(content::secure_content))
        .routes(routes!(misc::page_view))
        .routes(routes!(misc::event))
        .routes(routes!(misc::app_member));
    let (routes, doc) = misc::later_routes(routes).split_for_parts();
    let routes = routes
        .method_not_allowed_fallback(|| async {
            ClientError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method",
            )
        })
        .fallback(|| async {
            ClientError::new(
                StatusCode::NOT_FOUND,
                "route-not-found",
                "no such route in the member-facing API",
            )
        });
    let routes = cors::layer(routes, state);
    (
        Router::new().nest("/memberstack/client", routes),
        utoipa::openapi::OpenApi::default().nest("/memberstack/client", doc),
    )
}
