//! The OpenAPI document describes exactly the routes the server serves.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{send, TestApp};

/// The routes the foundation promised to every later face and tool.
const PROMISED: &[(&str, &str)] = &[
    ("post", "/v1/plans"),
    ("get", "/v1/plans"),
    ("get", "/v1/plans/{id}"),
    ("patch", "/v1/plans/{id}"),
    ("post", "/v1/plans/{id}/archive"),
    ("post", "/v1/members"),
    ("get", "/v1/members"),
    ("get", "/v1/members/{id}"),
    ("patch", "/v1/members/{id}"),
    ("delete", "/v1/members/{id}"),
    ("post", "/v1/members/{id}/plan-connections"),
    ("get", "/v1/members/{id}/plan-connections"),
    ("get", "/v1/plan-connections/{id}"),
    ("post", "/v1/plan-connections/{id}/cancel"),
    ("post", "/v1/plan-connections/{id}/pause"),
    ("post", "/v1/plan-connections/{id}/resume"),
    ("post", "/v1/plan-connections/{id}/replace"),
    ("get", "/v1/members/{id}/access"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
];

const METHODS: &[&str] = &["get", "post", "patch", "delete", "put"];

async fn the_document_and_the_router_agree(app: Arc<TestApp>) {
    let (status, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    let paths = doc["paths"].as_object().unwrap();

    for (method, path) in PROMISED {
        let operation = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is documented"))[*method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert!(operation["responses"].is_object());
    }

    // Every documented operation is served, and every undocumented method of a documented
    // path is not: the router and the document cannot have drifted apart. Each face is called
    // as its clients call it.
    let (_, store_keys) = memberd_server::ops::create_app(
        &app.store,
        "Store",
        Some("doc-store.myshopify.com".into()),
    )
    .await
    .unwrap();
    let store_key = store_keys[0].secret.clone();
    for face in ["/v1/", "/memberstack/", "/api/external/v2/"] {
        assert!(
            paths.keys().any(|p| p.starts_with(face)),
            "{face} is documented"
        );
    }
    for (path, item) in paths {
        let concrete = path.replace("{id}", "x_unknown");
        for method in METHODS {
            let documented = item.get(*method).is_some();
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let request = if path.starts_with("/api/external/v2/") {
                app.client
                    .request(
                        verb,
                        app.url(&format!("{concrete}?shop=doc-store.myshopify.com")),
                    )
                    .header("X-API-Key", &store_key)
            } else if path.starts_with("/memberstack/") {
                app.ms(verb, &concrete)
            } else {
                assert!(path.starts_with("/v1/"), "{path}");
                app.request(verb, &concrete)
            };
            let response = request
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"]
                .as_str()
                .or_else(|| {
                    body["message"]
                        .as_str()
                        .and_then(|m| m.strip_prefix("error."))
                })
                .unwrap_or("");
            if documented {
                assert!(
                    code != "route_not_found" && code != "method_not_allowed",
                    "{method} {path} is documented but not served: {body}"
                );
                let operation = &item[*method];
                if status.is_client_error() {
                    assert!(
                        operation["responses"][status.as_str()].is_object()
                            || [StatusCode::UNAUTHORIZED, StatusCode::UNPROCESSABLE_ENTITY, StatusCode::PAYLOAD_TOO_LARGE]
                                .contains(&status),
                        "{method} {path} answered {status}, which its document does not list: {body}"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented: {body}"
                );
            }
        }
    }
    let described: Value = doc["components"]["securitySchemes"].clone();
    assert!(described["bearer"].is_object() && described["apiKey"].is_object());
}

crate::both_backends!(the_document_and_the_router_agree);
