//! What members' browsers may reach: CORS for the sites an environment allows, secure content
//! for the members whose plans unlock it, and the new routes kept to their own app and
//! environment.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::member_accounts::{as_member, client, get_as, send_raw, signup, token, PASSWORD};
use crate::support::{assert_error, assert_ms_error, id, send, send_ms, TestApp};

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

async fn preflight(app: &TestApp, origin: &str) -> HeaderMap {
    let (_, headers, _) = send_raw(
        app.client
            .request(Method::OPTIONS, app.url("/memberstack/client/auth/login"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "x-api-key,content-type,authorization,x-app-id",
            ),
    )
    .await;
    headers
}

/// A login from a page on `origin`, with a wrong password.
async fn login_from_page(app: &TestApp, pk: &str, origin: &str) -> (StatusCode, HeaderMap, String) {
    send_raw(
        client(app, pk, Method::POST, "/auth/login")
            .header("Origin", origin)
            .json(&json!({"email": "ann@example.com", "password": "not it"})),
    )
    .await
}

#[track_caller]
fn assert_allowed_for(headers: &HeaderMap, origin: &str) {
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some(origin),
        "{headers:?}"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
}

fn code_of(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn cors_answers_the_origins_each_environment_allows(app: Arc<TestApp>) {
    signup(&app, "ann@example.com").await;
    let local = "http://localhost:5173";
    let headers = preflight(&app, local).await;
    assert_allowed_for(&headers, local);
    let allowed: Vec<String> = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for needed in ["x-api-key", "authorization", "content-type", "x-app-id"] {
        assert!(
            allowed.iter().any(|h| h == needed),
            "{needed} in {allowed:?}"
        );
    }
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let max_age: u64 = headers["access-control-max-age"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 0);

    for stranger in [
        "https://unknown.example",
        "http://localhost.evil.example:5173",
        "https://localhost:5173",
    ] {
        let headers = preflight(&app, stranger).await;
        assert_eq!(cors_headers(&headers), Vec::<String>::new(), "{stranger}");
    }
    let (status, headers, body) =
        login_from_page(&app, &app.publishable_key, "https://unknown.example").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code_of(&body), "origin-not-allowed");
    assert_eq!(cors_headers(&headers), Vec::<String>::new());

    // A refusal from an allowed page carries the headers, or the SDK would see no error.
    let (status, headers, body) = login_from_page(&app, &app.publishable_key, local).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "invalid-credentials");
    assert_allowed_for(&headers, local);
    let (status, headers, body) = send_raw(
        client(&app, &app.publishable_key, Method::POST, "/auth/login")
            .header("Origin", local)
            .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_allowed_for(&headers, local);

    // Live allows no page until it is told which; then only those, and for live only.
    let (status, _, body) = login_from_page(&app, &app.live_publishable_key, local).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (StatusCode::FORBIDDEN, "origin-not-allowed")
    );
    let shop = "https://shop.example";
    assert_eq!(
        cors_headers(&preflight(&app, shop).await),
        Vec::<String>::new()
    );
    let (status, set) = send(
        app.request_as(&app.live_key, Method::PATCH, "/v1/app")
            .json(&json!({"allowedOrigins": [shop]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["env"], "live");
    assert_eq!(set["settings"]["allowedOrigins"], json!([shop]));
    assert_allowed_for(&preflight(&app, shop).await, shop);
    let (status, headers, body) = send_raw(
        client(
            &app,
            &app.live_publishable_key,
            Method::POST,
            "/auth/signup",
        )
        .header("Origin", shop)
        .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_allowed_for(&headers, shop);
    let (status, headers, body) = login_from_page(&app, &app.publishable_key, shop).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (StatusCode::FORBIDDEN, "origin-not-allowed"),
        "sandbox still allows only its own origins"
    );
    assert_eq!(cors_headers(&headers), Vec::<String>::new());
    // Sandbox keeps its defaults; the live list replaced live's (empty) default.
    let (status, _, _) = login_from_page(&app, &app.publishable_key, local).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = login_from_page(&app, &app.live_publishable_key, local).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (StatusCode::FORBIDDEN, "origin-not-allowed")
    );
}

async fn secure_content_is_kept_and_checked(app: Arc<TestApp>) {
    let gold = app.create_plan(json!({"name": "Gold"})).await;
    let silver = app
        .create_plan(json!({"name": "Silver", "permissions": ["view:silver"]}))
        .await;
    let (status, created) = app
        .post(
            "/v1/secure-content",
            json!({"id": "gold-article", "type": "HTML", "content": "<p>gold</p>", "planIds": [id(&gold)]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "gold-article");
    assert_eq!(created["type"], "HTML");
    assert_eq!(created["planIds"], json!([id(&gold)]));
    assert_eq!(created["permissions"], json!([]));
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());
    let duplicate = app
        .post(
            "/v1/secure-content",
            json!({"id": "gold-article", "content": "again"}),
        )
        .await;
    assert_error(&duplicate, StatusCode::CONFLICT, Some("id"));

    let bad = [
        (json!({"id": "x", "type": "PDF", "content": "c"}), "type"),
        (
            json!({"id": "x", "content": "c", "planIds": ["gold"]}),
            "planIds[0]",
        ),
        (json!({"id": "a b", "content": "c"}), "id"),
    ];
    for (body, field) in bad {
        let answer = app.post("/v1/secure-content", body).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, Some(field));
    }
    let (status, got) = app.get("/v1/secure-content/gold-article").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["content"], "<p>gold</p>");
    let (status, patched) = app
        .patch(
            "/v1/secure-content/gold-article",
            json!({"type": "TEXT", "content": "gold, plain"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (&patched["type"], &patched["content"]),
        (&json!("TEXT"), &json!("gold, plain"))
    );
    assert_eq!(patched["planIds"], json!([id(&gold)]), "left out, kept");
    let bad_patch = app
        .patch("/v1/secure-content/gold-article", json!({"type": "PDF"}))
        .await;
    assert_error(&bad_patch, StatusCode::BAD_REQUEST, Some("type"));
    let (status, _) = app.get("/v1/secure-content/no-such").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.post(
        "/v1/secure-content",
        json!({"id": "silver-note", "content": "silver", "permissions": ["view:silver"]}),
    )
    .await;
    let (_, listed) = app.get("/v1/secure-content").await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gold-article", "silver-note"]);

    // A member sees content only once a plan unlocks it; an unknown id is told apart from
    // a locked one by nothing.
    let t = token(&signup(&app, "ann@example.com").await);
    let read = |content_id: &str| {
        send_ms(
            as_member(&app, &t, Method::POST, "/secure-content")
                .json(&json!({ "contentId": content_id })),
        )
    };
    let locked = read("gold-article").await;
    assert_ms_error(&locked, StatusCode::FORBIDDEN, "access-denied");
    let unknown = read("no-such").await;
    assert_eq!(unknown, locked);
    assert_ms_error(
        &read("silver-note").await,
        StatusCode::FORBIDDEN,
        "access-denied",
    );
    for plan in [&gold, &silver] {
        let (status, body) = send_ms(
            as_member(&app, &t, Method::POST, "/member/plans/add")
                .json(&json!({"planId": id(plan)})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = read("gold-article").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"content": "gold, plain", "type": "TEXT"})
    );
    let (status, body) = read("silver-note").await;
    assert_eq!(
        (status, &body["data"]["content"]),
        (StatusCode::OK, &json!("silver"))
    );
    let (status, _) = send_ms(
        as_member(&app, &t, Method::POST, "/member/plans/remove")
            .json(&json!({"planId": id(&gold)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ms_error(
        &read("gold-article").await,
        StatusCode::FORBIDDEN,
        "access-denied",
    );
    let anonymous = send_ms(
        client(&app, &app.publishable_key, Method::POST, "/secure-content")
            .json(&json!({"contentId": "silver-note"})),
    )
    .await;
    assert_ms_error(&anonymous, StatusCode::UNAUTHORIZED, "login-required");

    let (status, deleted) = app.delete("/v1/secure-content/silver-note").await;
    assert_eq!(
        (status, &deleted),
        (
            StatusCode::OK,
            &json!({"id": "silver-note", "deleted": true})
        )
    );
    let (status, _) = app.delete("/v1/secure-content/silver-note").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ms_error(
        &read("silver-note").await,
        StatusCode::FORBIDDEN,
        "access-denied",
    );
}

async fn the_new_routes_keep_to_their_app_and_environment(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, t) = (id(&data["member"]).to_owned(), token(&data));
    let sid = {
        let (_, page) = app.get(&format!("/v1/members/{member_id}/sessions")).await;
        page["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let (status, _) = app
        .post(
            "/v1/secure-content",
            json!({"id": "s1", "content": "sandbox only"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let probes: Vec<(Method, String, Value)> = vec![
        (
            Method::GET,
            format!("/v1/members/{member_id}/sessions"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/members/{member_id}/sessions/revoke"),
            json!({}),
        ),
        (Method::DELETE, format!("/v1/sessions/{sid}"), json!(null)),
        (Method::GET, "/v1/secure-content/s1".into(), json!(null)),
        (
            Method::PATCH,
            "/v1/secure-content/s1".into(),
            json!({"content": "mine"}),
        ),
        (Method::DELETE, "/v1/secure-content/s1".into(), json!(null)),
    ];
    for key in [&app.other_app_key, &app.live_key] {
        for (method, path, body) in &probes {
            let mut request = app.request_as(key, method.clone(), path);
            if !body.is_null() {
                request = request.json(body);
            }
            let (status, answer) = send(request).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        }
        let (_, listed) = get_as(&app, key, "/v1/secure-content").await;
        assert_eq!(listed["data"], json!([]), "{listed}");
    }

    // Nothing of the first app's sandbox changed.
    let (status, current) = send_ms(as_member(&app, &t, Method::GET, "/member")).await;
    assert_eq!(
        (status, &current["data"]["id"]),
        (StatusCode::OK, &json!(member_id))
    );
    let (_, content) = app.get("/v1/secure-content/s1").await;
    assert_eq!(content["content"], "sandbox only");
    let (_, sessions) = app.get(&format!("/v1/members/{member_id}/sessions")).await;
    assert_eq!(sessions["data"][0]["live"], true);

    // Live has content ids of its own, and its members never see sandbox's.
    let (status, live_content) = send(
        app.request_as(&app.live_key, Method::POST, "/v1/secure-content")
            .json(&json!({"id": "s1", "content": "live only", "permissions": ["view:live"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{live_content}");
    app.post(
        "/v1/secure-content",
        json!({"id": "open", "content": "any sandbox member"}),
    )
    .await;
    let (status, body) = send_ms(
        client(
            &app,
            &app.live_publishable_key,
            Method::POST,
            "/auth/signup",
        )
        .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let live_token = token(&body["data"]);
    let read = |pk: &str, token: &str, content_id: &str| {
        send_ms(
            client(&app, pk, Method::POST, "/secure-content")
                .bearer_auth(token)
                .json(&json!({ "contentId": content_id })),
        )
    };
    let (status, body) = read(&app.publishable_key, &t, "open").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "content without rules is for any member: {body}"
    );
    assert_ms_error(
        &read(&app.live_publishable_key, &live_token, "open").await,
        StatusCode::FORBIDDEN,
        "access-denied",
    );
    let (status, body) = read(&app.publishable_key, &t, "s1").await;
    assert_eq!(
        (status, &body["data"]["content"]),
        (StatusCode::OK, &json!("sandbox only"))
    );
    assert_ms_error(
        &read(&app.live_publishable_key, &live_token, "s1").await,
        StatusCode::FORBIDDEN,
        "access-denied",
    );
}

crate::both_backends!(
    cors_answers_the_origins_each_environment_allows,
    secure_content_is_kept_and_checked,
    the_new_routes_keep_to_their_app_and_environment,
);
