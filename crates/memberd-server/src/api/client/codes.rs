//! What a member proves by reading an email: password reset and passwordless login codes,
//! and email verification links.
//!
//! A send answers the same whether or not the address has an account, after the same work
//! (the allowance is counted and the address looked up either way), so the form cannot tell
//! anyone who is a member. Sends are limited per address (one of a kind a minute, ten a day)
//! and per client address (`--email-send-limit` an hour). Wrong codes count against the
//! code (it dies after five) and against the client address, like failed logins.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use memberd_core::codes::{normalize, plausible, CodePurpose};
use memberd_core::{Email, Scope, Session};
use memberd_store::ClientEnv;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{logged_in, required, too_many, ClientMemberAuth};
use super::render::Data;
use super::{
    Client, ClientError, ClientErrorEnvelope, ClientIp, ClientJson, ClientResult, Member, TAG,
};
use crate::passwords::hash_password;
use crate::state::AppState;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * 60 * 60;
/// Emails of one kind an address may be sent a minute, and of any kind a day.
const PER_ADDRESS_A_MINUTE: u32 = 1;
const PER_ADDRESS_A_DAY: u32 = 10;
/// Wrong reset codes an environment takes in a login window, from everywhere together,
/// before it refuses more: reset codes are sent back without an address, so this is what
/// stands between a crowd of guessers and the live codes of the environment.
const WRONG_RESET_CODES_PER_ENVIRONMENT: i64 = 100;

#[derive(Deserialize, ToSchema)]
pub struct ClientEmailIn {
    email: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientSuccess {
    success: bool,
}

fn success() -> Json<Data<ClientSuccess>> {
    Json(Data {
        data: ClientSuccess { success: true },
    })
}

fn ip_bucket(ip: &str) -> String {
    format!("login ip {ip}")
}

/// 429 once the client address has had its failed logins (and wrong codes) of the window.
pub(super) async fn refuse_guessing_from(state: &AppState, ip: &str) -> ClientResult<()> {
    let limits = &state.config().logins;
    let now = state.now();
    if let Some((count, until)) = state
        .store()
        .login_failures(&[ip_bucket(ip)], now, limits.window.as_secs())
        .await?
    {
        if count >= i64::from(limits.failures) {
            return Err(too_many(until, now));
        }
    }
    Ok(())
}

/// Counts a wrong code against the client address, and answers the SDK's refusal.
pub(super) async fn wrong_code_from(state: &AppState, ip: &str) -> ClientError {
    let limits = &state.config().logins;
    if let Err(error) = state
        .store()
        .record_login_failure(&[ip_bucket(ip)], state.now(), limits.window.as_secs())
        .await
    {
        return error.into();
    }
    wrong_passwordless_code()
}

pub(super) fn wrong_passwordless_code() -> ClientError {
    ClientError::new(
        StatusCode::BAD_REQUEST,
        "invalid-passwordless-login-code",
        "the code is wrong, used or expired; ask for a new one",
    )
}

fn wrong_reset_code() -> ClientError {
    ClientError::new(
        StatusCode::BAD_REQUEST,
        "invalid-reset-code",
        "the code is wrong, used or expired; ask for a new one",
    )
}

/// Counts a send to `to` of `purpose` from `ip`, or refuses it with 429 and when to retry.
async fn allow_send(
    state: &AppState,
    scope: &Scope,
    ip: &str,
    purpose: CodePurpose,
    to: &Email,
) -> ClientResult<()> {
    let place = format!("{} {} {}", scope.app_id, scope.env.as_str(), to.as_str());
    let buckets = [
        (
            format!("email minute {} {place}", purpose.as_str()),
            MINUTE,
            PER_ADDRESS_A_MINUTE,
        ),
        (format!("email day {place}"), DAY, PER_ADDRESS_A_DAY),
        (
            format!("email ip {ip}"),
            HOUR,
            state.config().logins.email_sends,
        ),
    ];
    let now = state.now();
    match state.store().take_allowance(&buckets, now).await? {
        Some(until) => Err(too_many(until, now)),
        None => Ok(()),
    }
}

/// The address a send is for; one that cannot be a member's is refused as such (which says
/// nothing of who is a member).
fn address(body: ClientEmailIn) -> ClientResult<Email> {
    let email = required(body.email, "email")?;
    Ok(Email::parse(&email)?)
}

/// Issues a code to `to`, for the member or address, and wakes the sender.
async fn send_code(
    state: &AppState,
    client: &ClientEnv,
    purpose: CodePurpose,
    to: &Email,
    member: Option<&memberd_core::Member>,
) -> ClientResult<()> {
    let link = purpose
        .is_link()
        .then(|| verification_link_base(state, &client.scope));
    state
        .store()
        .issue_code(
            &client.scope,
            purpose,
            to,
            member,
            link.as_deref(),
            state.now(),
        )
        .await?;
    state.wake_mailer();
    Ok(())
}

/// Sends a code to a member's address; for an address with no account, does the same work
/// and sends nothing (see `issue_code_for_nobody`).
async fn send_code_if_member(
    state: &AppState,
    client: &ClientEnv,
    purpose: CodePurpose,
    to: &Email,
    member: Option<memberd_store::MemberView>,
) -> ClientResult<()> {
    match member {
        Some(view) => send_code(state, client, purpose, to, Some(&view.member)).await,
        None => Ok(state
            .store()
            .issue_code_for_nobody(&client.scope, purpose, to, state.now())
            .await?),
    }
}

/// Where a verification link points, up to its token.
pub fn verification_link_base(state: &AppState, scope: &Scope) -> String {
    format!(
        "{}/memberstack/client/auth/verify-email?app={}&env={}&token=",
        state.config().issuer(),
        scope.app_id,
        scope.env.as_str()
    )
}

/// `POST /auth/send-reset-password-email`: emails a 6-digit code that `POST
/// /auth/reset-password` takes, when the address has an account. The answer is the same
/// when it has none.
#[utoipa::path(post, path = "/auth/send-reset-password-email", tag = TAG, request_body = ClientEmailIn,
    responses((status = 200, body = Data<String>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn send_reset_email(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ClientJson(body): ClientJson<ClientEmailIn>,
) -> ClientResult<Json<Data<String>>> {
    let to = address(body)?;
    allow_send(&state, &client.scope, &ip, CodePurpose::PasswordReset, &to).await?;
    let member = state
        .store()
        .get_member_by_email(&client.scope, &to)
        .await?;
    send_code_if_member(&state, &client, CodePurpose::PasswordReset, &to, member).await?;
    Ok(Json(Data {
        data: "If an account has this address, an email with a code to reset its password is on its way.".to_owned(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientResetIn {
    /// The 6-digit code from the email.
    token: Option<String>,
    new_password: Option<String>,
}

/// `POST /auth/reset-password`: sets a new password with the emailed code and ends every
/// session of the member. It does not log in.
#[utoipa::path(post, path = "/auth/reset-password", tag = TAG, request_body = ClientResetIn,
    responses((status = 200, body = Data<ClientSuccess>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn reset_password(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ClientJson(body): ClientJson<ClientResetIn>,
) -> ClientResult<Json<Data<ClientSuccess>>> {
    let code = normalize(&required(body.token, "token")?);
    let password = required(body.new_password, "newPassword")?;
    client.settings.check_password("newPassword", &password)?;
    let now = state.now();
    let limits = &state.config().logins;
    let window = limits.window.as_secs();
    let everywhere = format!(
        "reset environment {} {}",
        client.scope.app_id,
        client.scope.env.as_str()
    );
    let from_here = format!("reset ip {ip}");
    let store = state.store();
    for (bucket, limit) in [
        (&from_here, i64::from(limits.failures)),
        (&everywhere, WRONG_RESET_CODES_PER_ENVIRONMENT),
    ] {
        if let Some((count, until)) = store
            .login_failures(std::slice::from_ref(bucket), now, window)
            .await?
        {
            if count >= limit {
                return Err(too_many(until, now));
            }
        }
    }
    let reset = if plausible(CodePurpose::PasswordReset, &code) {
        let hash = hash_password(password).await?;
        store
            .reset_password_with_code(&client.scope, &code, hash, now)
            .await?
    } else {
        None
    };
    if reset.is_none() {
        store
            .record_login_failure(&[from_here, everywhere], now, window)
            .await?;
        return Err(wrong_reset_code());
    }
    state.wake_workers();
    Ok(success())
}

/// `POST /auth/passwordless/login/send`: emails a 6-digit login code when the address has an
/// account; the same answer when it has none.
#[utoipa::path(post, path = "/auth/passwordless/login/send", tag = TAG, request_body = ClientEmailIn,
    responses((status = 200, body = Data<ClientSuccess>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn passwordless_login_send(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ClientJson(body): ClientJson<ClientEmailIn>,
) -> ClientResult<Json<Data<ClientSuccess>>> {
    let to = address(body)?;
    allow_send(
        &state,
        &client.scope,
        &ip,
        CodePurpose::PasswordlessLogin,
        &to,
    )
    .await?;
    let member = state
        .store()
        .get_member_by_email(&client.scope, &to)
        .await?;
    send_code_if_member(&state, &client, CodePurpose::PasswordlessLogin, &to, member).await?;
    Ok(success())
}

/// `POST /auth/passwordless/signup/send`: emails a 6-digit code that `POST
/// /auth/signup?isPasswordless=true` takes. An address that has an account already is sent
/// a login code instead; the answer is the same.
#[utoipa::path(post, path = "/auth/passwordless/signup/send", tag = TAG, request_body = ClientEmailIn,
    responses((status = 200, body = Data<ClientSuccess>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn passwordless_signup_send(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ClientJson(body): ClientJson<ClientEmailIn>,
) -> ClientResult<Json<Data<ClientSuccess>>> {
    if !client.settings.signup_enabled {
        return Err(ClientError::new(
            StatusCode::FORBIDDEN,
            "signup-disabled",
            "this app does not take sign-ups",
        ));
    }
    let to = address(body)?;
    allow_send(
        &state,
        &client.scope,
        &ip,
        CodePurpose::PasswordlessSignup,
        &to,
    )
    .await?;
    match state
        .store()
        .get_member_by_email(&client.scope, &to)
        .await?
    {
        Some(view) => {
            send_code(
                &state,
                &client,
                CodePurpose::PasswordlessLogin,
                &to,
                Some(&view.member),
            )
            .await?
        }
        None => send_code(&state, &client, CodePurpose::PasswordlessSignup, &to, None).await?,
    }
    Ok(success())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPasswordlessLoginIn {
    email: Option<String>,
    /// The 6-digit code from the email.
    passwordless_token: Option<String>,
}

/// `POST /auth/passwordless/login`: exchanges an emailed login code for a session.
#[utoipa::path(post, path = "/auth/passwordless/login", tag = TAG, request_body = ClientPasswordlessLoginIn,
    responses((status = 200, body = Data<ClientMemberAuth>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn passwordless_login(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ClientJson(body): ClientJson<ClientPasswordlessLoginIn>,
) -> ClientResult<Json<Data<ClientMemberAuth>>> {
    let email = required(body.email, "email")?;
    let code = normalize(&required(body.passwordless_token, "passwordlessToken")?);
    refuse_guessing_from(&state, &ip).await?;
    let now = state.now();
    let view = match Email::parse(&email) {
        Ok(email) => {
            state
                .store()
                .get_member_by_email(&client.scope, &email)
                .await?
        }
        Err(_) => None,
    };
    let Some(mut view) = view.filter(|_| plausible(CodePurpose::PasswordlessLogin, &code)) else {
        return Err(wrong_code_from(&state, &ip).await);
    };
    let session = Session::open(view.member.id.clone(), &client.settings, now);
    let opened = state
        .store()
        .login_with_code(&client.scope, &view.member.email, &code, &session, now)
        .await?;
    if !opened {
        return Err(wrong_code_from(&state, &ip).await);
    }
    view.member.last_login = Some(now);
    logged_in(&state, &client, view, &session).await
}

#[derive(Deserialize, ToSchema)]
pub struct ClientVerificationIn {
    /// The site the member is on (the SDK sends it; memberd links to its own page, which
    /// sends the member on to the app's `verifyRedirectUrl`).
    #[allow(dead_code)]
    origin_domain: Option<String>,
}

/// `POST /auth/send-email-verification`: emails the logged-in member a link that marks
/// their address verified.
#[utoipa::path(post, path = "/auth/send-email-verification", tag = TAG, request_body = ClientVerificationIn,
    responses((status = 200, body = Data<ClientSuccess>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn send_verification_email(
    State(state): State<AppState>,
    member: Member,
    ClientIp(ip): ClientIp,
    ClientJson(_body): ClientJson<ClientVerificationIn>,
) -> ClientResult<Json<Data<ClientSuccess>>> {
    let view = member.view(&state).await?;
    let to = view.member.email.clone();
    allow_send(
        &state,
        &member.client.scope,
        &ip,
        CodePurpose::EmailVerification,
        &to,
    )
    .await?;
    send_code(
        &state,
        &member.client,
        CodePurpose::EmailVerification,
        &to,
        Some(&view.member),
    )
    .await?;
    Ok(success())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyEmailQuery {
    /// The app the link was sent for.
    app: Option<String>,
    /// `live` or `sandbox`.
    env: Option<String>,
    /// The link's token.
    token: Option<String>,
}

/// `GET /auth/verify-email`: the link of a verification email. Marks the member verified
/// (`member.updated`) and sends the browser to the app's `verifyRedirectUrl`, or shows a page
/// saying it worked. Needs no key: it is opened from a mail client.
#[utoipa::path(get, path = "/auth/verify-email", tag = TAG, params(VerifyEmailQuery),
    responses((status = 200, description = "a page saying the address is verified", content_type = "text/html", body = String),
        (status = 303, description = "to the app's verifyRedirectUrl"),
        (status = 400, description = "a page saying the link is not valid", content_type = "text/html", body = String)))]
pub async fn verify_email(
    State(state): State<AppState>,
    query: Result<Query<VerifyEmailQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return link_not_valid();
    };
    let scope = match (
        query.app.as_deref().and_then(memberd_core::AppId::parse),
        query
            .env
            .as_deref()
            .and_then(|e| e.parse::<memberd_core::Environment>().ok()),
    ) {
        (Some(app), Some(env)) => Scope::new(app, env),
        _ => return link_not_valid(),
    };
    let token = normalize(query.token.as_deref().unwrap_or(""));
    if !plausible(CodePurpose::EmailVerification, &token) {
        return link_not_valid();
    }
    let verified = match state
        .store()
        .verify_email_with_code(&scope, &token, state.now())
        .await
    {
        Ok(verified) => verified,
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    if verified.is_none() {
        return link_not_valid();
    }
    state.wake_workers();
    let settings = match state.store().env_settings(&scope).await {
        Ok(settings) => settings,
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    match settings.verify_redirect_url {
        Some(url) => Redirect::to(&url).into_response(),
        None => page(
            StatusCode::OK,
            "Your email address is verified",
            "Thank you: your email address is verified. You can close this page.",
        ),
    }
}

fn link_not_valid() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "This verification link is not valid: it was used already, it has expired, or it was not copied whole. Ask for a new one from the site you signed up on.",
    )
}

/// A plain page of memberd's own, in the few words it needs.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    (
        status,
        headers,
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title></head><body style=\"font-family: system-ui, sans-serif; \
             max-width: 36rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5\">\
             <h1>{title}</h1><p>{text}</p></body></html>"
        )),
    )
        .into_response()
}
