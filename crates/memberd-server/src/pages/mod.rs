//! The dashboard at `/dashboard`: server-rendered pages where operators run the membership
//! program. Handlers build what a page shows from the same core and store calls the API makes;
//! templates (maud, in `layout` and each page's module) only render it. Forms work without
//! JavaScript; the little script there is confirms destructive buttons.

mod assets;
mod audit;
mod auth;
mod chart;
mod developers;
mod events;
mod layout;
mod member;
mod member_plans;
mod members;
mod operators;
mod overview;
mod plan_prices;
mod plans;
mod sign_in;
mod transfer;
mod webhooks;

use axum::extract::FromRequestParts;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, REFERRER_POLICY};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use memberd_core::operator::{AuditEntry, Capability};
use memberd_core::{AppId, Environment, Scope};
use memberd_store::{App, StoreError};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::state::AppState;
pub use auth::{new_token, token_hash, SignedIn, CSRF_FIELD};
pub use transfer::ImportJobs;

/// The largest file the dashboard imports; `memberd import` reads any size.
pub const IMPORT_LIMIT_BYTES: usize = 256 * 1024 * 1024;

/// Every dashboard route. The pages allow only their own scripts, styles and forms, are never
/// framed or cached, and send no Referer (a set-password link carries its token in the URL).
pub fn router() -> Router<AppState> {
    let scoped = "/dashboard/{app}/{env}";
    Router::new()
        .route("/dashboard", get(sign_in::home))
        .route("/dashboard/", get(sign_in::home))
        .route(
            "/dashboard/sign-in",
            get(sign_in::show).post(sign_in::submit),
        )
        .route("/dashboard/sign-out", post(sign_in::sign_out))
        .route(
            "/dashboard/set-password",
            get(sign_in::show_set_password).post(sign_in::set_password),
        )
        .route("/dashboard/go", get(sign_in::go))
        .route("/dashboard/assets/{file}", get(assets::serve))
        .route(scoped, get(overview::show))
        .route(
            &format!("{scoped}/members"),
            get(members::list).post(members::create),
        )
        .route(&format!("{scoped}/members/new"), get(members::new_form))
        .route(
            &format!("{scoped}/members/{{id}}"),
            get(member::show).post(member::update),
        )
        .route(
            &format!("{scoped}/members/{{id}}/plans"),
            post(member_plans::add_plan),
        )
        .route(
            &format!("{scoped}/members/{{id}}/connections/{{con}}"),
            post(member_plans::change_connection),
        )
        .route(
            &format!("{scoped}/members/{{id}}/sessions/{{ses}}"),
            post(member::revoke_session),
        )
        .route(
            &format!("{scoped}/members/{{id}}/delete"),
            post(member::delete),
        )
        .route(
            &format!("{scoped}/plans"),
            get(plans::list).post(plans::create),
        )
        .route(&format!("{scoped}/plans/new"), get(plans::new_form))
        .route(
            &format!("{scoped}/plans/{{id}}"),
            get(plans::show).post(plans::update),
        )
        .route(
            &format!("{scoped}/plans/{{id}}/archive"),
            post(plans::archive),
        )
        .route(
            &format!("{scoped}/plans/{{id}}/prices"),
            post(plan_prices::add),
        )
        .route(
            &format!("{scoped}/plans/{{id}}/prices/{{price}}/retire"),
            post(plan_prices::retire),
        )
        .route(&format!("{scoped}/events"), get(events::list))
        .route(&format!("{scoped}/events/{{id}}"), get(events::show))
        .route(
            &format!("{scoped}/webhooks"),
            get(webhooks::list).post(webhooks::create),
        )
        .route(&format!("{scoped}/webhooks/{{id}}"), get(webhooks::show))
        .route(
            &format!("{scoped}/webhooks/{{id}}/rotate"),
            post(webhooks::rotate),
        )
        .route(
            &format!("{scoped}/webhooks/{{id}}/test"),
            post(webhooks::send_test),
        )
        .route(
            &format!("{scoped}/webhooks/{{id}}/enabled"),
            post(webhooks::set_enabled),
        )
        .route(
            &format!("{scoped}/webhooks/{{id}}/delete"),
            post(webhooks::delete),
        )
        .route(
            &format!("{scoped}/webhooks/{{id}}/redeliver"),
            post(webhooks::redeliver),
        )
        .route(
            &format!("{scoped}/webhooks/{{id}}/recover"),
            post(webhooks::recover),
        )
        .route(&format!("{scoped}/developers"), get(developers::show))
        .route(
            &format!("{scoped}/developers/keys"),
            post(developers::create_key),
        )
        .route(
            &format!("{scoped}/developers/keys/{{id}}/revoke"),
            post(developers::revoke_key),
        )
        .route(
            &format!("{scoped}/developers/settings"),
            post(developers::save_settings),
        )
        .route(&format!("{scoped}/transfer"), get(transfer::show))
        .route(
            &format!("{scoped}/transfer/import"),
            // An import file may be far larger than an API request.
            post(transfer::import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT_BYTES)),
        )
        .route(
            &format!("{scoped}/transfer/import/{{id}}"),
            get(transfer::progress),
        )
        .route(
            &format!("{scoped}/transfer/import/{{id}}/rejects"),
            get(transfer::rejects),
        )
        .route(
            &format!("{scoped}/transfer/members.csv"),
            get(transfer::export),
        )
        .route(
            &format!("{scoped}/operators"),
            get(operators::show).post(operators::create),
        )
        .route(
            &format!("{scoped}/operators/{{id}}/link"),
            post(operators::new_link),
        )
        .route(
            &format!("{scoped}/operators/{{id}}/delete"),
            post(operators::delete),
        )
        .route(&format!("{scoped}/audit"), get(audit::show))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
}

/// Why a page cannot be shown. Each renders as a page of its own.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): to the sign-in page, then back.
    SignIn {
        next: String,
    },
    NotFound,
    /// Signed in, but the role does not allow it.
    Forbidden(&'static str),
    /// A form without its CSRF token, or with another session's.
    StaleForm,
    BadRequest(String),
    TooMany {
        retry_after: u64,
    },
    Internal,
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError::BadRequest(message.into())
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        PageError::from(ApiError::from(err))
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        match err.status {
            StatusCode::NOT_FOUND => PageError::NotFound,
            s if s.is_server_error() => PageError::Internal,
            _ => PageError::BadRequest(err.message),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::SignIn { next } => {
                let target = format!(
                    "/dashboard/sign-in?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return see_other(&target);
            }
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it is not in an app you may enter.".to_owned(),
            ),
            PageError::Forbidden(what) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("Your role does not allow you to {what}."),
            ),
            PageError::StaleForm => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was sent without its security token, or with one of another \
                 sign-in. Go back, reload the page and try again."
                    .to_owned(),
            ),
            PageError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Not done", message),
            PageError::TooMany { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many tries",
                format!(
                    "Too many tries. Wait {} minutes and try again.",
                    retry_after.div_ceil(60)
                ),
            ),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "memberd could not do that. The server's log says why.".to_owned(),
            ),
        };
        (status, Html(layout::bare(title, &message).into_string())).into_response()
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// 303 to `location`: where a form's POST goes next.
pub fn see_other(location: &str) -> Response {
    let location =
        HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/dashboard"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// The app and environment a page is for, with the signed-in operator, who may enter it.
pub struct Place {
    pub signed_in: SignedIn,
    pub app: App,
    pub env: Environment,
    /// The apps the operator may enter, for the switch at the top.
    pub apps: Vec<App>,
}

impl Place {
    pub fn scope(&self) -> Scope {
        Scope::new(self.app.id.clone(), self.env)
    }

    /// `/dashboard/{app}/{env}`: the start of every link of the place.
    pub fn base(&self) -> String {
        format!("/dashboard/{}/{}", self.app.id, self.env)
    }

    pub fn may(&self, capability: Capability) -> bool {
        self.signed_in.operator.may_in(&self.app.id, capability)
    }

    /// Refuses unless the operator's role allows `capability`; `what` completes "Your role
    /// does not allow you to …".
    pub fn require(&self, capability: Capability, what: &'static str) -> PageResult<()> {
        if self.may(capability) {
            Ok(())
        } else {
            Err(PageError::Forbidden(what))
        }
    }

    /// Writes what the operator changed to the audit log. The change is already made: a
    /// failure here is logged, not shown as the change failing.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: Option<&str>,
        summary: String,
    ) {
        let entry = AuditEntry::new(
            &self.signed_in.operator,
            Some((&self.app.id, self.env)),
            action,
            target,
            summary,
            state.now(),
        );
        if let Err(error) = state.store().record_audit(&entry).await {
            tracing::error!(%error, action, "could not write the audit log");
        }
    }
}

impl FromRequestParts<AppState> for Place {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let mut segments = parts.uri.path().split('/').skip(2);
        let app_id = segments
            .next()
            .and_then(AppId::parse)
            .ok_or(PageError::NotFound)?;
        let env: Environment = segments
            .next()
            .and_then(|e| e.parse().ok())
            .ok_or(PageError::NotFound)?;
        let operator = &signed_in.operator;
        if !operator.may_in(&app_id, Capability::Read) {
            return Err(PageError::NotFound);
        }
        let apps: Vec<App> = state
            .store()
            .list_apps()
            .await?
            .into_iter()
            .filter(|a| operator.apps.allows(&a.id))
            .collect();
        let app = apps
            .iter()
            .find(|a| a.id == app_id)
            .cloned()
            .ok_or(PageError::NotFound)?;
        Ok(Place {
            signed_in,
            app,
            env,
            apps,
        })
    }
}

/// A form's fields that the core or the store refused, by the name the API gives them.
#[derive(Debug, Default)]
pub struct FieldErrors {
    errors: Vec<(String, String)>,
    /// A refusal that names no field.
    pub general: Option<String>,
}

impl FieldErrors {
    pub fn from_api(err: ApiError) -> Result<Self, PageError> {
        if err.status.is_server_error() {
            return Err(PageError::Internal);
        }
        let mut errors = FieldErrors::default();
        match err.param {
            Some(param) => errors.errors.push((param, err.message)),
            None => errors.general = Some(err.message),
        }
        Ok(errors)
    }

    pub fn one(field: &str, message: impl Into<String>) -> Self {
        FieldErrors {
            errors: vec![(field.to_owned(), message.into())],
            general: None,
        }
    }

    /// The message for `field` or any of its parts (`customFields.name` for `customFields`).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| {
                f == field
                    || f.strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.general.is_none()
    }

    /// Messages for fields the form has no place for, so that none goes unshown.
    pub fn others(&self, shown: &[&str]) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .errors
            .iter()
            .filter(|(f, _)| {
                !shown
                    .iter()
                    .any(|s| self.get(s).is_some() && f.starts_with(s))
            })
            .map(|(_, m)| m.as_str())
            .collect();
        out.extend(self.general.as_deref());
        out
    }
}
