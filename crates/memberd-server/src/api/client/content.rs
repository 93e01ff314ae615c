//! Secure content: what memberd keeps for an app and hands only to members who may see it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::render::Data;
use super::{ClientError, ClientErrorEnvelope, ClientJson, ClientResult, Member, TAG};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientContentIn {
    content_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientContentOut {
    content: String,
    /// HTML or TEXT.
    #[serde(rename = "type")]
    content_type: &'static str,
}

/// `POST /secure-content` `{contentId}`: the content, when the member's plans or permissions
/// unlock it; `access-denied` otherwise, and for content that does not exist (which is not
/// told apart, so that ids cannot be probed).
#[utoipa::path(post, path = "/secure-content", tag = TAG, request_body = ClientContentIn,
    responses((status = 200, body = Data<ClientContentOut>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn secure_content(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientContentIn>,
) -> ClientResult<Json<Data<ClientContentOut>>> {
    let id = body.content_id.filter(|id| !id.is_empty()).ok_or_else(|| {
        ClientError::new(
            StatusCode::BAD_REQUEST,
            "required-field-missing",
            "contentId is required",
        )
    })?;
    let denied = || {
        ClientError::new(
            StatusCode::FORBIDDEN,
            "access-denied",
            "this member's plans do not unlock that content",
        )
    };
    let scope = &member.client.scope;
    let content = state
        .store()
        .get_secure_content(scope, &id)
        .await?
        .ok_or_else(denied)?;
    let view = state
        .store()
        .get_member(scope, &member.member_id)
        .await?
        .ok_or_else(ClientError::invalid_token)?;
    let active: Vec<_> = view
        .connections
        .iter()
        .filter(|c| c.connection.active())
        .map(|c| c.connection.plan_id.clone())
        .collect();
    if !content.allows(&active, &view.permissions()) {
        return Err(denied());
    }
    Ok(Json(Data {
        data: ClientContentOut {
            content: content.content,
            content_type: content.content_type.as_str(),
        },
    }))
}
