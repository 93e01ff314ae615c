//! Members' sessions: a token is good only while its session is (logout, a password change,
//! an operator's revoke, the member's deletion and expiry end it), and only for its own app and
//! environment.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::member_accounts::{as_member, client, login, login_as, signup, token, PASSWORD};
use crate::support::{assert_ms_error, id, send, send_ms, TestApp};

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

pub fn unb64url(text: &str) -> Vec<u8> {
    let (mut bits, mut held, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes() {
        let v = B64URL.iter().position(|&b| b == c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}

/// A token's header and claims, decoded.
pub fn segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("three segments");
    serde_json::from_slice(&unb64url(part)).expect("a JSON segment")
}

pub fn claims(token: &str) -> Value {
    segment(token, 1)
}

pub fn encoded(value: &Value) -> String {
    b64url(value.to_string().as_bytes())
}

/// `POST /v1/tokens/verify` with a secret key.
async fn verify_with(app: &TestApp, key: &str, token: &str) -> (StatusCode, Value) {
    send(
        app.request_as(key, Method::POST, "/v1/tokens/verify")
            .json(&json!({ "token": token })),
    )
    .await
}

/// `POST /memberstack/members/verify-token`, as the Memberstack admin SDK sends it.
async fn ms_verify_with(app: &TestApp, key: &str, token: &str) -> StatusCode {
    send_ms(
        app.ms_as(key, Method::POST, "/memberstack/members/verify-token")
            .json(&json!({ "token": token })),
    )
    .await
    .0
}

/// The token works on both faces and for the operator's key.
pub async fn assert_live(app: &TestApp, token: &str, member_id: &str) {
    let (status, current) = send_ms(as_member(app, token, Method::GET, "/member")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(current["data"]["id"], member_id, "{current}");
    let (status, verified) = verify_with(app, &app.key, token).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["data"]["id"], member_id);
    assert_eq!(verified["data"]["type"], "member");
    assert_eq!(verified["data"]["aud"], app.app_id.as_str());
    assert_eq!(verified["session"]["live"], true);
    assert_eq!(ms_verify_with(app, &app.key, token).await, StatusCode::OK);
}

/// The token is refused everywhere: `GET /member` forgets it, a call that needs a member is
/// `client/invalid-token`, and both verify endpoints answer 401.
pub async fn assert_refused(app: &TestApp, token: &str) {
    let (status, current) = send_ms(as_member(app, token, Method::GET, "/member")).await;
    assert_eq!((status, &current), (StatusCode::OK, &json!({"data": null})));
    let update = send_ms(
        as_member(app, token, Method::POST, "/member").json(&json!({"customFields": {"x": "1"}})),
    )
    .await;
    assert_ms_error(&update, StatusCode::UNAUTHORIZED, "client/invalid-token");
    let (status, verified) = verify_with(app, &app.key, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{verified}");
    assert_eq!(verified["error"]["code"], "invalid_token");
    assert_eq!(
        ms_verify_with(app, &app.key, token).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn sessions_of(app: &TestApp, member_id: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/members/{member_id}/sessions")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

fn session_with<'a>(sessions: &'a [Value], token: &str) -> &'a Value {
    let sid = claims(token)["sid"].as_str().unwrap().to_owned();
    sessions
        .iter()
        .find(|s| s["id"] == sid.as_str())
        .expect("the token's session is listed")
}

async fn a_logged_out_token_is_refused(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, t) = (id(&data["member"]).to_owned(), token(&data));
    assert_live(&app, &t, &member_id).await;
    let (status, out) = send_ms(as_member(&app, &t, Method::POST, "/member/logout")).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_refused(&app, &t).await;
    // Logging out again is no error: the SDK forgets the token either way.
    let (status, _) = send_ms(as_member(&app, &t, Method::POST, "/member/logout")).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = sessions_of(&app, &member_id).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["live"], false);
    assert_eq!(sessions[0]["endReason"], "logout");
    assert!(sessions[0]["endedAt"].is_string());
}

async fn a_password_change_ends_the_other_sessions(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, current) = (id(&data["member"]).to_owned(), token(&data));
    let others = [
        login(&app, "ann@example.com", PASSWORD).await,
        login(&app, "ann@example.com", PASSWORD).await,
    ];
    // A wrong old password changes nothing and ends nothing.
    let wrong = send_ms(
        as_member(&app, &current, Method::POST, "/member-auth")
            .json(&json!({"oldPassword": "not it", "newPassword": "a brand new one"})),
    )
    .await;
    assert_ms_error(&wrong, StatusCode::UNAUTHORIZED, "invalid-password");
    for t in &others {
        assert_live(&app, t, &member_id).await;
    }

    let (status, body) = send_ms(
        as_member(&app, &current, Method::POST, "/member-auth")
            .json(&json!({"oldPassword": PASSWORD, "newPassword": "a brand new one"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_live(&app, &current, &member_id).await;
    for t in &others {
        assert_refused(&app, t).await;
    }
    let sessions = sessions_of(&app, &member_id).await;
    assert_eq!(session_with(&sessions, &current)["live"], true);
    for t in &others {
        assert_eq!(session_with(&sessions, t)["endReason"], "password_changed");
    }
    let old = login_as(&app, &app.publishable_key, "ann@example.com", PASSWORD).await;
    assert_ms_error(&old, StatusCode::UNAUTHORIZED, "invalid-credentials");
    let fresh = login(&app, "ann@example.com", "a brand new one").await;
    assert_live(&app, &fresh, &member_id).await;
}

async fn an_operator_ends_sessions(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, first) = (id(&data["member"]).to_owned(), token(&data));
    let second = login(&app, "ann@example.com", PASSWORD).await;
    let third = login(&app, "ann@example.com", PASSWORD).await;

    // One session.
    let sid = claims(&second)["sid"].as_str().unwrap().to_owned();
    let (status, ended) = app.delete(&format!("/v1/sessions/{sid}")).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(
        (&ended["id"], &ended["live"], &ended["endReason"]),
        (&json!(sid), &json!(false), &json!("revoked"))
    );
    assert_refused(&app, &second).await;
    assert_live(&app, &first, &member_id).await;
    assert_live(&app, &third, &member_id).await;

    // All of the member's.
    let path = format!("/v1/members/{member_id}/sessions/revoke");
    let (status, revoked) = app.post(&path, json!({})).await;
    assert_eq!((status, &revoked), (StatusCode::OK, &json!({"revoked": 2})));
    assert_refused(&app, &first).await;
    assert_refused(&app, &third).await;
    let (_, again) = app.post(&path, json!({})).await;
    assert_eq!(again, json!({"revoked": 0}));
    // Not a ban: the member logs in again.
    let fresh = login(&app, "ann@example.com", PASSWORD).await;
    assert_live(&app, &fresh, &member_id).await;

    let unknown = app
        .post(
            "/v1/members/mem_doesnotexist00000000/sessions/revoke",
            json!({}),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND, "{}", unknown.1);
    let unknown = app.delete("/v1/sessions/ses_doesnotexist00000000").await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND, "{}", unknown.1);
}

async fn deleting_the_member_ends_their_sessions(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, t) = (id(&data["member"]).to_owned(), token(&data));
    let other = login(&app, "ann@example.com", PASSWORD).await;
    let (status, _) = app.delete(&format!("/v1/members/{member_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused(&app, &t).await;
    assert_refused(&app, &other).await;

    // A member who deletes their own account is logged out too, and the address is free.
    let data = signup(&app, "bob@example.com").await;
    let (bob, t) = (id(&data["member"]).to_owned(), token(&data));
    let (status, deleted) = send_ms(as_member(&app, &t, Method::DELETE, "/member")).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["data"]["id"], bob.as_str());
    assert_refused(&app, &t).await;
    let (status, _) = app.get(&format!("/v1/members/{bob}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    signup(&app, "bob@example.com").await;
}

/// Without a read cache, so that a session expired behind the server's back is seen at once.
pub fn uncached_config() -> memberd_server::Config {
    memberd_server::Config {
        read_cache_lifetime: Duration::ZERO,
        ..crate::support::test_config()
    }
}

async fn an_expired_session_is_refused(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, t) = (id(&data["member"]).to_owned(), token(&data));
    assert_live(&app, &t, &member_id).await;
    // Sessions last at least a day; this one ends now, as if that day had passed. The token's
    // own `exp` is still ahead: the session's expiry alone refuses it.
    app.store
        .execute_admin("UPDATE member_sessions SET expires_at = 0")
        .await
        .unwrap();
    assert_refused(&app, &t).await;
    let sessions = sessions_of(&app, &member_id).await;
    assert_eq!(sessions[0]["live"], false);
    assert_eq!(sessions[0]["endedAt"], json!(null), "expired, not ended");
}

mod uncached {
    use super::an_expired_session_is_refused;
    crate::both_backends!(crate::member_sessions::uncached_config() => an_expired_session_is_refused);
}

async fn a_token_is_only_good_for_its_own_app_and_environment(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, t) = (id(&data["member"]).to_owned(), token(&data));
    for pk in [&app.other_publishable_key, &app.live_publishable_key] {
        let (status, current) =
            send_ms(client(&app, pk, Method::GET, "/member").bearer_auth(&t)).await;
        assert_eq!((status, &current), (StatusCode::OK, &json!({"data": null})));
        let update = send_ms(
            client(&app, pk, Method::POST, "/member")
                .bearer_auth(&t)
                .json(&json!({"customFields": {"x": "1"}})),
        )
        .await;
        assert_ms_error(&update, StatusCode::UNAUTHORIZED, "client/invalid-token");
    }
    for key in [&app.other_app_key, &app.live_key] {
        let (status, body) = verify_with(&app, key, &t).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(
            ms_verify_with(&app, key, &t).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // None of that touched it.
    assert_live(&app, &t, &member_id).await;
    let (_, stored) = app.get(&format!("/v1/members/{member_id}")).await;
    assert_eq!(stored["customFields"], json!({}), "{stored}");
}

crate::both_backends!(
    a_logged_out_token_is_refused,
    a_password_change_ends_the_other_sessions,
    an_operator_ends_sessions,
    deleting_the_member_ends_their_sessions,
    a_token_is_only_good_for_its_own_app_and_environment,
);
