//! `/v1/app`, `/v1/tokens/verify` and members' sessions: what an operator's server sees of
//! the member-facing API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::{MemberId, SessionEnd, SessionId, SettingsPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{double_option, Authed, ValidJson};
use crate::state::AppState;
use crate::tokens::TokenError;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppOut {
    pub id: String,
    pub name: String,
    /// `live` or `sandbox`: the environment of the key.
    pub env: &'static str,
    /// The environment's publishable key (`pk_…`), for browsers.
    pub publishable_key: Option<String>,
    pub settings: SettingsOut,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsOut {
    /// The site origins the member-facing API answers with CORS (`http://localhost:*` is any
    /// port). Sandbox allows the loopback origins until set; live, none.
    pub allowed_origins: Vec<String>,
    /// Whether `allowedOrigins` is the environment's default.
    pub allowed_origins_default: bool,
    pub signup_enabled: bool,
    pub session_lifetime_days: u32,
    pub password_min_length: u32,
    /// The sender name of the environment's emails; `null`: the server's `--email-from`.
    pub email_from_name: Option<String>,
    /// The sender address of the environment's emails; `null`: the server's `--email-from`.
    pub email_from_address: Option<String>,
    /// Where a member who clicked an email verification link is sent; `null`: a page saying
    /// it worked.
    pub verify_redirect_url: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppPatchIn {
    /// `null` goes back to the environment's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>, max_items = 100)]
    pub allowed_origins: Option<Option<Vec<String>>>,
    pub signup_enabled: Option<bool>,
    /// 1 to 365.
    #[schema(minimum = 1, maximum = 365)]
    pub session_lifetime_days: Option<i64>,
    /// 6 to 128.
    #[schema(minimum = 6, maximum = 128)]
    pub password_min_length: Option<i64>,
    /// One line, at most 100 characters, without quotes, backslashes or angle brackets;
    /// `null` or `""` goes back to the server's sender.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub email_from_name: Option<Option<String>>,
    /// An email address; `null` or `""` goes back to the server's sender.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 254)]
    pub email_from_address: Option<Option<String>>,
    /// An absolute `http(s)://` URL; `null` or `""` goes back to the plain page.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub verify_redirect_url: Option<Option<String>>,
}

async fn app_out(state: &AppState, auth: &Authed) -> ApiResult<AppOut> {
    let store = state.store();
    let app = store
        .get_app(&auth.scope.app_id)
        .await?
        .ok_or_else(|| ApiError::not_found("app", &auth.scope.app_id))?;
    let settings = store.env_settings(&auth.scope).await?;
    Ok(AppOut {
        id: app.id.to_string(),
        name: app.name,
        env: auth.scope.env.as_str(),
        publishable_key: store.publishable_key(&auth.scope).await?,
        settings: SettingsOut {
            allowed_origins: settings
                .origins(auth.scope.env)
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_origins_default: settings.allowed_origins.is_none(),
            signup_enabled: settings.signup_enabled,
            session_lifetime_days: settings.session_lifetime_days,
            password_min_length: settings.password_min_length,
            email_from_name: settings.email_from_name,
            email_from_address: settings.email_from_address.map(|e| e.to_string()),
            verify_redirect_url: settings.verify_redirect_url,
        },
    })
}

/// The key's app and its environment's settings for members' own accounts.
#[utoipa::path(get, path = "/v1/app", tag = "app", responses((status = 200, body = AppOut)))]
pub async fn retrieve_app(State(state): State<AppState>, auth: Authed) -> ApiResult<Json<AppOut>> {
    Ok(Json(app_out(&state, &auth).await?))
}

/// Changes the environment's settings; fields left out stay as they are.
#[utoipa::path(patch, path = "/v1/app", tag = "app", request_body = AppPatchIn,
    responses((status = 200, body = AppOut), (status = 400, body = ErrorEnvelope)))]
pub async fn update_app(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(body, _): ValidJson<AppPatchIn>,
) -> ApiResult<Json<AppOut>> {
    let patch = SettingsPatch {
        allowed_origins: body.allowed_origins,
        signup_enabled: body.signup_enabled,
        session_lifetime_days: body.session_lifetime_days,
        password_min_length: body.password_min_length,
        email_from_name: body.email_from_name,
        email_from_address: body.email_from_address,
        verify_redirect_url: body.verify_redirect_url,
    };
    state
        .store()
        .update_env_settings(&auth.scope, patch, state.now())
        .await?;
    Ok(Json(app_out(&state, &auth).await?))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOut {
    pub id: String,
    pub member_id: String,
    pub created_at: String,
    pub expires_at: String,
    pub ended_at: Option<String>,
    /// `logout`, `password_changed`, `revoked` or `member_deleted`.
    pub end_reason: Option<String>,
    /// Not ended and not expired.
    pub live: bool,
}

fn session_out(s: memberd_core::Session, now: memberd_core::Timestamp) -> SessionOut {
    SessionOut {
        live: s.live(now),
        id: s.id.to_string(),
        member_id: s.member_id.to_string(),
        created_at: s.created_at.to_rfc3339(),
        expires_at: s.expires_at.to_rfc3339(),
        ended_at: s.ended_at.map(|t| t.to_rfc3339()),
        end_reason: s.end_reason,
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionsOut {
    /// Newest first, at most 100.
    pub data: Vec<SessionOut>,
}

fn member_id(raw: &str) -> ApiResult<MemberId> {
    MemberId::parse(raw).ok_or_else(|| ApiError::not_found("member", raw))
}

/// A member's sessions.
#[utoipa::path(get, path = "/v1/members/{id}/sessions", tag = "members",
    params(("id" = String, Path, description = "The member's id (mem_…).")),
    responses((status = 200, body = SessionsOut), (status = 404, body = ErrorEnvelope)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionsOut>> {
    let id = member_id(&id)?;
    if state.store().get_member(&auth.scope, &id).await?.is_none() {
        return Err(ApiError::not_found("member", &id));
    }
    let now = state.now();
    let sessions = state.store().list_sessions(&auth.scope, &id).await?;
    Ok(Json(SessionsOut {
        data: sessions.into_iter().map(|s| session_out(s, now)).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RevokedOut {
    /// How many live sessions were ended.
    pub revoked: u64,
}

/// Ends every live session of a member: their tokens are refused at once.
#[utoipa::path(post, path = "/v1/members/{id}/sessions/revoke", tag = "members",
    params(("id" = String, Path, description = "The member's id (mem_…).")),
    responses((status = 200, body = RevokedOut), (status = 404, body = ErrorEnvelope)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<RevokedOut>> {
    let id = member_id(&id)?;
    let revoked = state
        .store()
        .end_member_sessions(&auth.scope, &id, None, SessionEnd::Revoked, state.now())
        .await?;
    Ok(Json(RevokedOut { revoked }))
}

/// Ends one session.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "members",
    params(("id" = String, Path, description = "The session's id (ses_…).")),
    responses((status = 200, body = SessionOut), (status = 404, body = ErrorEnvelope)))]
pub async fn end_session(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionOut>> {
    let not_found = || ApiError::not_found("session", &id);
    let sid = SessionId::parse(&id).ok_or_else(not_found)?;
    let now = state.now();
    state
        .store()
        .end_session(&auth.scope, &sid, SessionEnd::Revoked, now)
        .await?;
    let session = state
        .store()
        .get_session(&auth.scope, &sid)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(session_out(session, now)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenClaims {
    /// The member.
    pub id: String,
    /// Always `member`.
    #[serde(rename = "type")]
    pub kind: String,
    pub iat: i64,
    pub exp: i64,
    /// The app.
    pub aud: String,
    pub iss: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerifiedOut {
    pub data: TokenClaims,
    pub session: SessionOut,
}

/// Checks a member token to the end (signature, expiry, this key's app and environment, a
/// live session); the refusal of a token that fails any of it is the same 401.
pub async fn verify(
    state: &AppState,
    auth: &Authed,
    token: &str,
) -> ApiResult<(TokenClaims, memberd_core::Session)> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_token",
            "the token is not valid: it has expired, was ended, or is not this environment's",
        )
    };
    let verified = state.tokens().verify(token).await.map_err(|e| match e {
        TokenError::Store(e) => e.into(),
        _ => invalid(),
    })?;
    if verified.claims.aud != auth.scope.app_id.as_str() {
        return Err(invalid());
    }
    let session = state
        .store()
        .get_session(&auth.scope, &verified.session)
        .await?
        .filter(|s| s.member_id == verified.member && s.live(state.now()))
        .ok_or_else(invalid)?;
    let claims = verified.claims.clone();
    Ok((
        TokenClaims {
            id: claims.id,
            kind: claims.kind,
            iat: claims.iat,
            exp: claims.exp,
            aud: claims.aud,
            iss: claims.iss,
        },
        session,
    ))
}

/// Verifies a member's token, as a site's server does before trusting it.
#[utoipa::path(post, path = "/v1/tokens/verify", tag = "members", request_body = TokenIn,
    responses((status = 200, body = VerifiedOut), (status = 400, body = ErrorEnvelope)))]
pub async fn verify_token(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(body, _): ValidJson<TokenIn>,
) -> ApiResult<Json<VerifiedOut>> {
    let (claims, session) = verify(&state, &auth, &body.token).await?;
    Ok(Json(VerifiedOut {
        data: claims,
        session: session_out(session, state.now()),
    }))
}
