//! Sign-up, login and logout. A login or sign-up opens a session and answers its token.
//!
//! Guessing is refused: failed logins are counted per address and per client IP, sign-ups per
//! client IP, and past the limit of a window the answer is 429 with `Retry-After`. An unknown
//! address and a wrong password get the same answer, after the same work (a hash is checked
//! either way).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use memberd_core::{Email, Member as CoreMember, NewMember, PlanId, Session, SessionEnd};
use memberd_store::{ClientEnv, MemberView};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::render::{self, ClientMember, Data};
use super::{
    Client, ClientError, ClientErrorEnvelope, ClientIp, ClientJson, ClientResult, MaybeMember, TAG,
};
use crate::error::ApiError;
use crate::extract::ValidQuery;
use crate::passwords::{hash_password, verify_password};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ClientTokens {
    #[serde(rename = "accessToken")]
    access_token: String,
    /// When the token expires, in milliseconds since the epoch.
    expires: i64,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ClientMemberAuth {
    member: ClientMember,
    tokens: ClientTokens,
    redirect: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPlanRef {
    plan_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSignupIn {
    email: Option<String>,
    password: Option<String>,
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    meta_data: Option<Map<String, Value>>,
    plans: Option<Vec<ClientPlanRef>>,
    /// With `isPasswordless=true`: the code `POST /auth/passwordless/signup/send` emailed.
    passwordless_token: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientSignupQuery {
    /// `true` signs up with the code `POST /auth/passwordless/signup/send` emailed, instead
    /// of a password.
    #[serde(rename = "isPasswordless")]
    is_passwordless: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ClientLoginIn {
    email: Option<String>,
    password: Option<String>,
}

pub(super) fn required(value: Option<String>, field: &str) -> ClientResult<String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        ClientError(
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "client_error",
                "required-field-missing",
                format!("{field} is required"),
            )
            .with_param(field),
        )
    })
}

pub(super) fn too_many(
    until: memberd_core::Timestamp,
    now: memberd_core::Timestamp,
) -> ClientError {
    let secs = (until.as_micros() - now.as_micros()).max(1_000_000) / 1_000_000;
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "client_error",
        "too-many-requests",
        "too many attempts from here; try again later",
    );
    err.retry_after = Some(u64::try_from(secs).unwrap_or(1));
    ClientError(err)
}

/// Opens a session for a member and signs its token.
pub(super) async fn logged_in(
    state: &AppState,
    client: &ClientEnv,
    view: MemberView,
    session: &Session,
) -> ClientResult<Json<Data<ClientMemberAuth>>> {
    let token = state
        .tokens()
        .sign(
            &client.scope.app_id,
            &session.member_id,
            &session.id,
            session.created_at,
            session.expires_at,
        )
        .await?;
    let redirect = view.member.login_redirect.clone();
    Ok(Json(Data {
        data: ClientMemberAuth {
            member: render::member(view),
            tokens: ClientTokens {
                access_token: token,
                expires: session.expires_at.as_unix_millis(),
                kind: "bearer",
            },
            redirect,
        },
    }))
}

/// `POST /auth/signup`: a new member with a password and any free plans, logged in.
#[utoipa::path(post, path = "/auth/signup", tag = TAG, params(ClientSignupQuery), request_body = ClientSignupIn,
    responses((status = 200, body = Data<ClientMemberAuth>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 409, body = ClientErrorEnvelope), (status = 429, body = ClientErrorEnvelope)))]
pub async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ValidQuery(query, _): ValidQuery<ClientSignupQuery, crate::api::memberstack::MemberstackErrors>,
    ClientJson(body): ClientJson<ClientSignupIn>,
) -> ClientResult<Json<Data<ClientMemberAuth>>> {
    let passwordless = query.is_passwordless.as_deref() == Some("true");
    if !client.settings.signup_enabled {
        return Err(ClientError::new(
            StatusCode::FORBIDDEN,
            "signup-disabled",
            "this app does not take sign-ups",
        ));
    }
    let email = required(body.email, "email")?;
    let secret = if passwordless {
        required(body.passwordless_token, "passwordlessToken")?
    } else {
        required(body.password, "password")?
    };
    Email::parse(&email)?;
    if !passwordless {
        client.settings.check_password("password", &secret)?;
    }
    let plans = body
        .plans
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            PlanId::parse(&p.plan_id).ok_or_else(|| {
                ClientError::new(
                    StatusCode::NOT_FOUND,
                    "plan-not-found",
                    format!("plans[{i}].planId: no such plan: {:?}", p.plan_id),
                )
            })
        })
        .collect::<ClientResult<Vec<_>>>()?;

    let now = state.now();
    let limits = &state.config().logins;
    let bucket = format!("signup ip {ip}");
    let buckets = [bucket];
    if let Some((count, until)) = state
        .store()
        .login_failures(&buckets, now, limits.window.as_secs())
        .await?
    {
        if count >= i64::from(limits.signups) {
            return Err(too_many(until, now));
        }
    }
    let draft = NewMember {
        email,
        password_hash: match passwordless {
            true => None,
            false => Some(hash_password(secret.clone()).await?),
        },
        // The code shows that the address is theirs.
        verified: passwordless.then_some(true),
        custom_fields: body.custom_fields,
        meta_data: body.meta_data,
        ..Default::default()
    };
    let (member, event) = CoreMember::create(draft, now)?;
    let session = Session::open(member.id.clone(), &client.settings, now);
    let created = if passwordless {
        super::codes::refuse_guessing_from(&state, &ip).await?;
        let code = memberd_core::codes::normalize(&secret);
        match state
            .store()
            .signup_with_code(&client.scope, &code, &member, &event, &plans, &session, now)
            .await
        {
            Ok(Some(view)) => Ok(view),
            Ok(None) => return Err(super::codes::wrong_code_from(&state, &ip).await),
            Err(err) => Err(err),
        }
    } else {
        state
            .store()
            .insert_member_with_free_plans(&client.scope, &member, &event, &plans, Some(&session))
            .await
    };
    let view = created.map_err(|err| match err {
        memberd_store::StoreError::Domain(memberd_core::DomainError::Invalid {
            code: "unknown_plan",
            field,
            message,
        }) => ClientError::new(
            StatusCode::NOT_FOUND,
            "plan-not-found",
            format!("{field}: {message}"),
        ),
        other => other.into(),
    })?;
    state
        .store()
        .record_login_failure(&buckets, now, limits.window.as_secs())
        .await?;
    state.wake_workers();
    logged_in(&state, &client, view, &session).await
}

/// `POST /auth/login`: checks the password and opens a session.
#[utoipa::path(post, path = "/auth/login", tag = TAG, request_body = ClientLoginIn,
    responses((status = 200, body = Data<ClientMemberAuth>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 429, body = ClientErrorEnvelope)))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ClientIp(ip): ClientIp,
    ClientJson(body): ClientJson<ClientLoginIn>,
) -> ClientResult<Json<Data<ClientMemberAuth>>> {
    let email = required(body.email, "email")?;
    let password = required(body.password, "password")?;
    let now = state.now();
    let limits = &state.config().logins;
    let window = limits.window.as_secs();
    // An address that does not parse cannot be a member's: it gets the same answer.
    let email = Email::parse(&email).ok();
    let address_bucket = format!(
        "login email {} {} {}",
        client.scope.app_id,
        client.scope.env.as_str(),
        email.as_ref().map_or("", |e| e.as_str())
    );
    let buckets = [address_bucket.clone(), format!("login ip {ip}")];
    if let Some((count, until)) = state.store().login_failures(&buckets, now, window).await? {
        if count >= i64::from(limits.failures) {
            crate::telemetry::login("member", "limited");
            return Err(too_many(until, now));
        }
    }
    let view = match &email {
        Some(email) => {
            state
                .store()
                .get_member_by_email(&client.scope, email)
                .await?
        }
        None => None,
    };
    let hash = view.as_ref().and_then(|v| v.member.password_hash.clone());
    if !verify_password(hash, password).await? {
        state
            .store()
            .record_login_failure(&buckets, now, window)
            .await?;
        crate::telemetry::login("member", "failed");
        return Err(ClientError::invalid_credentials());
    }
    let Some(mut view) = view else {
        crate::telemetry::login("member", "failed");
        return Err(ClientError::invalid_credentials());
    };
    crate::telemetry::login("member", "succeeded");
    state.store().clear_login_failures(&address_bucket).await?;
    let session = Session::open(view.member.id.clone(), &client.settings, now);
    state.store().open_session(&client.scope, &session).await?;
    view.member.last_login = Some(now);
    logged_in(&state, &client, view, &session).await
}

#[derive(Serialize, ToSchema)]
pub struct ClientLoggedOut {
    redirect: Option<String>,
}

/// `POST /member/logout`: ends the token's session. Answers 200 for a token that is no
/// longer valid too, so that the SDK forgets it.
#[utoipa::path(post, path = "/member/logout", tag = TAG,
    responses((status = 200, body = Data<ClientLoggedOut>), (status = 401, body = ClientErrorEnvelope),
        (status = 403, body = ClientErrorEnvelope)))]
pub async fn logout(
    State(state): State<AppState>,
    MaybeMember(_, member): MaybeMember,
) -> ClientResult<Json<Data<ClientLoggedOut>>> {
    if let Some(member) = member {
        state
            .store()
            .end_session(
                &member.client.scope,
                &member.session_id,
                SessionEnd::Logout,
                state.now(),
            )
            .await?;
    }
    Ok(Json(Data {
        data: ClientLoggedOut { redirect: None },
    }))
}
