//! Signing in and out, the one-time links that set a password (the first owner's included),
//! and the app switch.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use memberd_core::operator::{
    check_operator_password, AppAccess, AuditEntry, Operator, Role, SESSION_HOURS,
};
use memberd_core::{Email, Environment};
use memberd_store::LinkFor;
use serde::Deserialize;

use super::auth::{
    cleared_session_cookie, new_token, session_cookie, token_hash, CsrfForm, FormCookie,
    PublicForm, SignedIn,
};
use super::layout::{self, csrf, Field};
use super::{see_other, FieldErrors, PageError, PageResult};
use crate::api::client::ClientIp;
use crate::passwords::{hash_password, verify_password};
use crate::state::AppState;

/// Where to go after signing in: a dashboard path, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/dashboard") && !n.contains("//") && !n.contains('\\') => n,
        _ => "/dashboard",
    }
}

/// `/dashboard`: the first app the operator may enter, live.
pub async fn home(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let apps = state.store().list_apps().await?;
    match apps.iter().find(|a| signed_in.operator.apps.allows(&a.id)) {
        Some(app) => Ok(see_other(&format!(
            "/dashboard/{}/{}",
            app.id,
            Environment::Live
        ))),
        None => Ok(Html(
            layout::bare(
                "No app",
                "You may not enter any app yet. Ask an owner to let you in.",
            )
            .into_string(),
        )
        .into_response()),
    }
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

fn sign_in_page(
    cookie: &FormCookie,
    email: &str,
    next: &str,
    errors: &FieldErrors,
    no_operator: bool,
) -> Response {
    let body = html! {
        @if no_operator {
            div.notice role="note" {
                p { "No operator has been made yet. Follow the link " code { "memberd serve" } " printed when it started, or run "
                    code { "memberd operators create --email you@example.com --role owner" } "." }
            }
        }
        form.stack method="post" action="/dashboard/sign-in" novalidate {
            (csrf(&cookie.csrf))
            input type="hidden" name="next" value=(next);
            (layout::form_errors(errors, &["email", "password"]))
            (Field::text("Email", "email", email).kind("email").required().render(errors))
            (Field::text("Password", "password", "").kind("password").required().render(errors))
            div.actions { button type="submit" { "Sign in" } }
        }
    };
    let mut response = Html(layout::plain("Sign in", body).into_string()).into_response();
    if let Some((name, value)) = cookie.set.clone() {
        response.headers_mut().append(name, value);
    }
    response
}

pub async fn show(
    State(state): State<AppState>,
    cookie: FormCookie,
    Query(query): Query<SignInQuery>,
) -> PageResult {
    let none = state.store().count_operators().await? == 0;
    let next = safe_next(query.next.as_deref());
    Ok(sign_in_page(
        &cookie,
        "",
        next,
        &FieldErrors::default(),
        none,
    ))
}

/// Signs in. Failures count per address and per client address as members' logins do; an
/// unknown address and a wrong password get the same answer, after the same work.
pub async fn submit(
    State(state): State<AppState>,
    cookie: FormCookie,
    ClientIp(ip): ClientIp,
    PublicForm(form): PublicForm<SignInForm>,
) -> PageResult {
    let now = state.now();
    let limits = &state.config().logins;
    let window = limits.window.as_secs();
    let email = Email::parse(&form.email).ok();
    let address_bucket = format!(
        "operator email {}",
        email.as_ref().map_or("", |e| e.as_str())
    );
    let buckets = [address_bucket.clone(), format!("operator ip {ip}")];
    if let Some((count, until)) = state.store().login_failures(&buckets, now, window).await? {
        if count >= i64::from(limits.failures) {
            crate::telemetry::login("operator", "limited");
            let wait = until.as_micros().saturating_sub(now.as_micros()) / 1_000_000;
            return Err(PageError::TooMany {
                retry_after: wait.max(1) as u64,
            });
        }
    }
    let operator = match &email {
        Some(email) => state.store().get_operator_by_email(email).await?,
        None => None,
    };
    let hash = operator.as_ref().and_then(|o| o.password_hash.clone());
    let next = safe_next(form.next.as_deref()).to_owned();
    let verified = verify_password(hash, form.password)
        .await
        .map_err(PageError::from)?;
    let Some(operator) = operator.filter(|_| verified) else {
        state
            .store()
            .record_login_failure(&buckets, now, window)
            .await?;
        crate::telemetry::login("operator", "failed");
        let errors = FieldErrors {
            general: Some("That email and password do not match an operator.".into()),
            ..FieldErrors::default()
        };
        return Ok(sign_in_page(&cookie, &form.email, &next, &errors, false));
    };
    state.store().clear_login_failures(&address_bucket).await?;
    crate::telemetry::login("operator", "succeeded");
    signed_in_response(&state, &operator, &next).await
}

async fn signed_in_response(state: &AppState, operator: &Operator, next: &str) -> PageResult {
    let token = new_token();
    let now = state.now();
    state
        .store()
        .open_operator_session(
            &token_hash(&token),
            &operator.id,
            now,
            now.plus_secs(SESSION_HOURS * 3600),
        )
        .await?;
    let mut response = see_other(next);
    let (name, value) = session_cookie(state, &token);
    response.headers_mut().append(name, value);
    Ok(response)
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CsrfForm(Nothing {}): CsrfForm<Nothing>,
) -> PageResult {
    state
        .store()
        .end_operator_session(&signed_in.session_hash, state.now())
        .await?;
    let mut response = see_other("/dashboard/sign-in");
    let (name, value) = cleared_session_cookie(&state);
    response.headers_mut().append(name, value);
    Ok(response)
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn set_password_page(
    cookie: &FormCookie,
    link: &LinkFor,
    token: &str,
    email: &str,
    errors: &FieldErrors,
) -> Response {
    let (title, intro): (&str, Markup) = match link {
        LinkFor::FirstOwner => (
            "Make the first owner",
            html! { p { "You are the first operator of this memberd: you will be its owner, with every app and every right." } },
        ),
        LinkFor::Operator(op) => (
            "Set your password",
            html! { p { "For " strong { (op.email) } ", " (op.role) "." } },
        ),
    };
    let body = html! {
        (intro)
        form.stack method="post" action="/dashboard/set-password" novalidate {
            (csrf(&cookie.csrf))
            input type="hidden" name="token" value=(token);
            (layout::form_errors(errors, &["email", "password", "confirm"]))
            @if matches!(link, LinkFor::FirstOwner) {
                (Field::text("Email", "email", email).kind("email").required().render(errors))
            }
            (Field::text("Password", "password", "").kind("password").required()
                .hint("At least 12 characters.").render(errors))
            (Field::text("Password again", "confirm", "").kind("password").required().render(errors))
            div.actions { button type="submit" { "Set password" } }
        }
    };
    let mut response = Html(layout::plain(title, body).into_string()).into_response();
    if let Some((name, value)) = cookie.set.clone() {
        response.headers_mut().append(name, value);
    }
    response
}

fn dead_link() -> PageError {
    PageError::bad_request(
        "This link has been used or has expired. Ask an owner for a new one \
         (memberd operators link --email …).",
    )
}

pub async fn show_set_password(
    State(state): State<AppState>,
    cookie: FormCookie,
    Query(query): Query<LinkQuery>,
) -> PageResult {
    let link = state
        .store()
        .operator_link(&token_hash(&query.token), state.now())
        .await?
        .ok_or_else(dead_link)?;
    Ok(set_password_page(
        &cookie,
        &link,
        &query.token,
        "",
        &FieldErrors::default(),
    ))
}

pub async fn set_password(
    State(state): State<AppState>,
    cookie: FormCookie,
    PublicForm(form): PublicForm<SetPasswordForm>,
) -> PageResult {
    let now = state.now();
    let link_hash = token_hash(&form.token);
    let link = state
        .store()
        .operator_link(&link_hash, now)
        .await?
        .ok_or_else(dead_link)?;
    let refuse = |errors: FieldErrors| {
        Ok(set_password_page(
            &cookie,
            &link,
            &form.token,
            &form.email,
            &errors,
        ))
    };
    let new_owner = match &link {
        LinkFor::FirstOwner => {
            match Operator::create(&form.email, Role::Owner, AppAccess::All, now) {
                Ok(owner) => Some(owner),
                Err(err) => return refuse(FieldErrors::from_api(err.into())?),
            }
        }
        LinkFor::Operator(_) => None,
    };
    if let Err(err) = check_operator_password(&form.password) {
        return refuse(FieldErrors::from_api(err.into())?);
    }
    if form.password != form.confirm {
        return refuse(FieldErrors::one("confirm", "The two passwords differ."));
    }
    let hash = hash_password(form.password).await?;
    let operator = match new_owner {
        Some(mut owner) => {
            owner.password_hash = Some(hash);
            if !state
                .store()
                .make_first_owner(&link_hash, &owner, now)
                .await?
            {
                return Err(dead_link());
            }
            let entry = AuditEntry::new(
                &owner,
                None,
                "operator.created",
                Some(owner.id.as_str()),
                format!("{} became the first owner", owner.email),
                now,
            );
            state.store().record_audit(&entry).await?;
            owner
        }
        None => {
            let id = state
                .store()
                .set_operator_password(&link_hash, &hash, now)
                .await?
                .ok_or_else(dead_link)?;
            let operator = state
                .store()
                .get_operator(&id)
                .await?
                .ok_or_else(dead_link)?;
            let entry = AuditEntry::new(
                &operator,
                None,
                "operator.password_set",
                Some(id.as_str()),
                format!("{} set their password", operator.email),
                now,
            );
            state.store().record_audit(&entry).await?;
            operator
        }
    };
    signed_in_response(&state, &operator, "/dashboard").await
}

#[derive(Deserialize)]
pub struct GoQuery {
    #[serde(default)]
    place: String,
    #[serde(default)]
    section: String,
}

/// The app switch's target, for browsers without JavaScript as for those with it.
pub async fn go(Query(query): Query<GoQuery>) -> PageResult {
    let (app, env) = query.place.split_once('/').ok_or(PageError::NotFound)?;
    let app = memberd_core::AppId::parse(app).ok_or(PageError::NotFound)?;
    let env: Environment = env.parse().map_err(|_| PageError::NotFound)?;
    let section = match query.section.as_str() {
        s @ ("/members" | "/plans" | "/events" | "/webhooks" | "/developers" | "/transfer"
        | "/audit") => s,
        _ => "",
    };
    Ok(see_other(&format!("/dashboard/{app}/{env}{section}")))
}
