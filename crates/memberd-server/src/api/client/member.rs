//! The logged-in member: their profile, email and password, JSON document and deletion.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use memberd_core::MemberPatch;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::render::{self, ClientMember, Data};
use super::{
    ClientError, ClientErrorEnvelope, ClientJson, ClientResult, CurrentMember, Member, TAG,
};
use crate::passwords::{hash_password, verify_password};
use crate::state::AppState;

/// `GET /member`: the member of the token, or `data: null` when the token is no longer
/// valid, which makes the SDK forget it.
#[utoipa::path(get, path = "/member", tag = TAG,
    responses((status = 200, body = Data<Option<ClientMember>>), (status = 401, body = ClientErrorEnvelope),
        (status = 403, body = ClientErrorEnvelope)))]
pub async fn current(
    CurrentMember(found): CurrentMember,
) -> ClientResult<Json<Data<Option<ClientMember>>>> {
    Ok(Json(Data {
        data: found.map(render::member),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientMemberIn {
    /// Shallow-merged; a field set to `null` is removed.
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<Map<String, Value>>,
}

/// `POST /member` `{customFields}`.
#[utoipa::path(post, path = "/member", tag = TAG, request_body = ClientMemberIn,
    responses((status = 200, body = Data<ClientMember>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientMemberIn>,
) -> ClientResult<Json<Data<ClientMember>>> {
    let patch = MemberPatch {
        custom_fields: body.custom_fields,
        ..Default::default()
    };
    let updated = member.patch(&state, patch).await?;
    Ok(Json(Data {
        data: render::member(updated),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuthIn {
    email: Option<String>,
    old_password: Option<String>,
    new_password: Option<String>,
}

/// `POST /member-auth` `{email?, oldPassword?, newPassword?}`: a new password needs the old
/// one, and ends the member's other sessions (this one stays: the SDK keeps its token).
#[utoipa::path(post, path = "/member-auth", tag = TAG, request_body = ClientAuthIn,
    responses((status = 200, body = Data<ClientMember>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 409, body = ClientErrorEnvelope)))]
pub async fn update_auth(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientAuthIn>,
) -> ClientResult<Json<Data<ClientMember>>> {
    let current = member.view(&state).await?;
    let mut patch = MemberPatch {
        email: body.email.filter(|e| !e.is_empty()),
        ..Default::default()
    };
    if let Some(new_password) = body.new_password.filter(|p| !p.is_empty()) {
        member
            .client
            .settings
            .check_password("newPassword", &new_password)?;
        let old = body.old_password.unwrap_or_default();
        if current.member.password_hash.is_none() {
            return Err(ClientError::new(
                StatusCode::BAD_REQUEST,
                "no-password-set",
                "this member has no password yet: set one with /member/set-password",
            ));
        }
        if !verify_password(current.member.password_hash.clone(), old).await? {
            return Err(ClientError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-password",
                "oldPassword is not the member's password",
            ));
        }
        patch.password_hash = Some(hash_password(new_password).await?);
    }
    let updated = member.patch(&state, patch).await?;
    Ok(Json(Data {
        data: render::member(updated),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ClientSetPasswordIn {
    password: Option<String>,
}

/// `POST /member/set-password` `{password}`: for a member who has none yet.
#[utoipa::path(post, path = "/member/set-password", tag = TAG, request_body = ClientSetPasswordIn,
    responses((status = 200, body = Data<ClientMember>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn set_password(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientSetPasswordIn>,
) -> ClientResult<Json<Data<ClientMember>>> {
    let password = body.password.unwrap_or_default();
    member
        .client
        .settings
        .check_password("password", &password)?;
    if member.view(&state).await?.member.password_hash.is_some() {
        return Err(ClientError::new(
            StatusCode::BAD_REQUEST,
            "password-already-set",
            "this member has a password: change it with /member-auth and the old one",
        ));
    }
    let patch = MemberPatch {
        password_hash: Some(hash_password(password).await?),
        ..Default::default()
    };
    let updated = member.patch(&state, patch).await?;
    Ok(Json(Data {
        data: render::member(updated),
    }))
}

/// `GET /member/json`: the member's JSON document itself as `data` (`null` when none).
#[utoipa::path(get, path = "/member/json", tag = TAG,
    responses((status = 200, body = Data<Object>), (status = 401, body = ClientErrorEnvelope),
        (status = 403, body = ClientErrorEnvelope)))]
pub async fn get_json(
    State(state): State<AppState>,
    member: Member,
) -> ClientResult<Json<Data<Value>>> {
    let found = member.view(&state).await?;
    Ok(Json(Data {
        data: found.member.json.unwrap_or(Value::Null),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ClientJsonIn {
    /// Replaces the whole document; `null` clears it.
    #[schema(value_type = Option<Object>)]
    json: Option<Value>,
}

/// `POST /member/json` `{json}`: replaces the document, and answers it.
#[utoipa::path(post, path = "/member/json", tag = TAG, request_body = ClientJsonIn,
    responses((status = 200, body = Data<Object>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope)))]
pub async fn update_json(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientJsonIn>,
) -> ClientResult<Json<Data<Value>>> {
    let patch = MemberPatch {
        json: Some(body.json.filter(|j| !j.is_null())),
        ..Default::default()
    };
    let updated = member.patch(&state, patch).await?;
    Ok(Json(Data {
        data: updated.member.json.unwrap_or(Value::Null),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ClientDeleted {
    id: String,
}

/// `DELETE /member`: the member deletes their own account, which ends every session.
#[utoipa::path(delete, path = "/member", tag = TAG,
    responses((status = 200, body = Data<ClientDeleted>), (status = 401, body = ClientErrorEnvelope),
        (status = 403, body = ClientErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    member: Member,
) -> ClientResult<Json<Data<ClientDeleted>>> {
    state
        .store()
        .delete_member(&member.client.scope, &member.member_id, state.now())
        .await?;
    state.wake_workers();
    Ok(Json(Data {
        data: ClientDeleted {
            id: member.member_id.to_string(),
        },
    }))
}
