//! The SDK's own bookkeeping calls (page views, events, the app with the member), and the
//! calls whose features come later (checkout, Data Tables), which answer a clear
//! refusal rather than a 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::render::{ClientApp, ClientMember, Data};
use super::{Client, ClientError, ClientErrorEnvelope, ClientJson, ClientResult, MaybeMember, TAG};
use crate::state::AppState;

/// The longest session id the SDK keeps (it drops a longer one).
const SESSION_ID_MAX: usize = 26;

#[derive(Deserialize, ToSchema)]
pub struct ClientTrackingIn {
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSessionData {
    /// At most 26 characters.
    session_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTracked {
    session_data: ClientSessionData,
}

/// The visitor's session id: the one the SDK sent when it is one memberd could have given,
/// else a new one. memberd keeps nothing of what these calls send.
fn session_id(body: &ClientTrackingIn) -> String {
    let sent = body
        .data
        .as_ref()
        .and_then(|d| d.get("sessionData"))
        .and_then(|d| d.get("sessionId"))
        .and_then(Value::as_str)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= SESSION_ID_MAX
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    match sent {
        Some(id) => id.to_owned(),
        None => format!(
            "vs_{}",
            memberd_core::ids::random_suffix(SESSION_ID_MAX - 3)
        ),
    }
}

/// `POST /page-view`: answers the visitor's session id; nothing is stored.
#[utoipa::path(post, path = "/page-view", tag = TAG, request_body = ClientTrackingIn,
    responses((status = 200, body = Data<ClientTracked>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn page_view(
    Client(_): Client,
    ClientJson(body): ClientJson<ClientTrackingIn>,
) -> ClientResult<Json<Data<ClientTracked>>> {
    Ok(Json(Data {
        data: ClientTracked {
            session_data: ClientSessionData {
                session_id: session_id(&body),
            },
        },
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ClientNothing {}

/// `POST /event`: the SDK's analytics, any JSON object; accepted and not stored.
#[utoipa::path(post, path = "/event", tag = TAG, request_body = Object,
    responses((status = 200, body = Data<ClientNothing>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn event(
    Client(_): Client,
    ClientJson(_body): ClientJson<serde_json::Map<String, Value>>,
) -> ClientResult<Json<Data<ClientNothing>>> {
    Ok(Json(Data {
        data: ClientNothing {},
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAppAndMember {
    app: ClientApp,
    member: Option<ClientMember>,
    session_data: ClientSessionData,
}

/// `POST /app-member`: the app and the member of the token (or `null`), in one call.
#[utoipa::path(post, path = "/app-member", tag = TAG, request_body = ClientTrackingIn,
    responses((status = 200, body = Data<ClientAppAndMember>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn app_member(
    State(state): State<AppState>,
    MaybeMember(Client(client), member): MaybeMember,
    ClientJson(body): ClientJson<ClientTrackingIn>,
) -> ClientResult<Json<Data<ClientAppAndMember>>> {
    let member = match member {
        Some(m) => state
            .store()
            .get_member(&m.client.scope, &m.member_id)
            .await?
            .map(super::render::member),
        None => None,
    };
    Ok(Json(Data {
        data: ClientAppAndMember {
            app: super::app::app_of(&state, client).await?,
            member,
            session_data: ClientSessionData {
                session_id: session_id(&body),
            },
        },
    }))
}

/// The refusal of a call whose feature memberd does not have yet.
pub fn not_available(what: &str) -> ClientError {
    ClientError(crate::error::ApiError::new(
        StatusCode::BAD_REQUEST,
        "client_error",
        "feature-not-available",
        format!("{what} is not available on this memberd server yet"),
    ))
}

/// Handlers for the calls that come in later issues: each needs the publishable key, like
/// every call, and then says what is missing.
macro_rules! later {
    ($($name:ident, $method:ident, $path:literal, $what:literal $(, $param:literal)?;)+) => {
        $(
            #[doc = concat!("Not available yet: ", $what, ".")]
            #[utoipa::path($method, path = $path, tag = TAG, $(params(($param = String, Path)),)?
                responses((status = 400, body = ClientErrorEnvelope, description = "feature-not-available"),
                    (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
            pub async fn $name(Client(_): Client) -> ClientError {
                not_available($what)
            }
        )+
    };
}

later! {
    checkout, post, "/member/plans/create-checkout-session", "checkout";
    billing_portal, post, "/member/create-billing-portal-session", "the billing portal";
    data_tables, get, "/v1/data-tables", "Data Tables";
    data_table, get, "/v1/data-tables/{table}", "Data Tables", "table";
    records_query, post, "/v1/data-records/query", "Data Tables";
    record_create, post, "/v1/data-records", "Data Tables";
    record_update, put, "/v1/data-records/{id}", "Data Tables", "id";
    record_delete, delete, "/v1/data-records/{id}", "Data Tables", "id";
}

/// Adds the routes of the calls that come later.
pub fn later_routes(routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    routes
        .routes(routes!(checkout))
        .routes(routes!(billing_portal))
        .routes(routes!(data_tables))
        .routes(routes!(data_table))
        .routes(routes!(records_query))
        .routes(routes!(record_create))
        .routes(routes!(record_update, record_delete))
}
