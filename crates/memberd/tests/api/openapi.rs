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
    for face in [
        "/v1/",
        "/memberstack/",
        "/api/external/v2/",
        "/memberstack/client/",
        "/.well-known/",
    ] {
        assert!(
            paths.keys().any(|p| p.starts_with(face)),
            "{face} is documented"
        );
    }
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "x_unknown")
            .replace("{planId}", "x_unknown")
            .replace("{table}", "x_unknown");
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
            } else if path.starts_with("/memberstack/client/") {
                // A browser: the publishable key, and no member logged in.
                app.client
                    .request(verb, app.url(&concrete))
                    .header("X-API-Key", &app.publishable_key)
            } else if path.starts_with("/memberstack/") {
                app.ms(verb, &concrete)
            } else if path.starts_with("/.well-known/") {
                app.client.request(verb, app.url(&concrete))
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
                    ![
                        "route_not_found",
                        "method_not_allowed",
                        "route-not-found",
                        "method-not-allowed"
                    ]
                    .contains(&code),
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

crate::both_backends!(
    the_document_and_the_router_agree,
    enums_are_the_wire_values,
    every_operation_documents_the_common_answers,
    parameters_and_bodies_say_their_limits,
);

/// The envelope each face writes its errors in, by the prefix of its paths.
fn envelope_of(path: &str) -> &'static str {
    if path.starts_with("/memberstack/") {
        "#/components/schemas/MsErrorEnvelope"
    } else if path.starts_with("/api/external/v2/") {
        "#/components/schemas/AppstleProblem"
    } else {
        "#/components/schemas/ErrorEnvelope"
    }
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                out.push((method.to_string(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// The document's enums list the values the server sends and accepts, not the Rust names.
async fn enums_are_the_wire_values(app: Arc<TestApp>) {
    let (_, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    let schemas = &doc["components"]["schemas"];
    let values = |name: &str| -> Vec<String> {
        serde_json::from_value(schemas[name]["enum"].clone())
            .unwrap_or_else(|_| panic!("{name} is a documented enum: {}", schemas[name]))
    };
    let wire = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    use memberd_core::{ConnectionStatus, ConnectionType, Interval, PlanStatus, PlanType};
    assert_eq!(
        values("PlanStatus"),
        wire(
            &PlanStatus::ALL
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(values("PlanStatus"), ["ACTIVE", "ARCHIVED"]);
    assert_eq!(
        values("Interval"),
        ["DAY", "WEEK", "MONTH", "YEAR", "ONETIME"]
    );
    assert_eq!(
        values("Interval"),
        wire(&Interval::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())
    );
    assert_eq!(
        values("PlanType"),
        wire(&PlanType::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>())
    );
    assert_eq!(
        values("ConnectionStatus"),
        wire(
            &ConnectionStatus::ALL
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
        )
    );
    assert!(values("ConnectionStatus").contains(&"CANCELED".to_string()));
    assert_eq!(
        values("ConnectionType"),
        wire(
            &ConnectionType::ALL
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(values("Flavour"), ["native", "memberstack", "appstle"]);

    // A client that sends what the document lists is understood.
    let response = app
        .request(Method::POST, "/v1/plans")
        .json(&serde_json::json!({
            "name": "Monthly",
            "prices": [{"amount": 500, "currency": "USD", "interval": values("Interval")[2]}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Every keyed operation documents what the key check, the rate limit, the body limit and the
/// idempotency replay can answer, in its face's envelope, and takes either key header.
async fn every_operation_documents_the_common_answers(app: Arc<TestApp>) {
    let (_, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["apiKey"]["name"], "X-API-KEY");
    let mut ids = std::collections::HashSet::new();
    for (method, path, operation) in operations(&doc) {
        let what = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap().to_owned();
        assert!(
            ids.insert(id.clone()),
            "{what}: operationId {id} is not unique"
        );
        // The JWKS, and the link of a verification email, opened from a mail client.
        if path.starts_with("/.well-known/") || path == "/memberstack/client/auth/verify-email" {
            assert_eq!(
                operation["security"],
                serde_json::json!([]),
                "{what} needs no key"
            );
            continue;
        }
        if path.starts_with("/memberstack/client/") {
            member_facing_operation(&what, &operation);
            continue;
        }
        assert_eq!(
            operation["security"],
            serde_json::json!([{"bearer": []}, {"apiKey": []}]),
            "{what} takes either key header"
        );
        let mut expected = vec!["400", "401", "403", "429"];
        if method == "post" {
            expected.extend(["409", "413", "422"]);
        }
        if operation.get("requestBody").is_some() {
            expected.push("413");
        }
        for status in expected {
            let response = &operation["responses"][status];
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                envelope_of(&path),
                "{what} documents {status} in its face's envelope"
            );
        }
        assert!(
            operation["responses"]["429"]["headers"]["Retry-After"].is_object(),
            "{what}: 429 says Retry-After"
        );
        if method == "post" {
            let key = operation["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "Idempotency-Key"))
                .unwrap_or_else(|| panic!("{what} takes an Idempotency-Key"));
            assert_eq!(key["in"], "header");
            assert_eq!(
                key["schema"]["minLength"], 1,
                "{what}: an empty key is refused"
            );
            assert_eq!(key["schema"]["maxLength"], 255);
        }
    }
    // A pause can be refused for its resumeAt.
    let pause = &doc["paths"]["/v1/plan-connections/{id}/pause"]["post"]["responses"];
    assert!(pause["400"].is_object());
}

/// A member-facing operation: a publishable key, with or without a member's token; refusals
/// in the SDK's envelope; neither an Idempotency-Key nor a rate limit (browsers send neither).
fn member_facing_operation(what: &str, operation: &Value) {
    assert_eq!(
        operation["security"],
        serde_json::json!([{"publishableKey": []}, {"publishableKey": [], "memberToken": []}]),
        "{what} takes a publishable key and, where it needs one, a member's token"
    );
    let mut expected = vec!["400", "401", "403"];
    if operation.get("requestBody").is_some() {
        expected.push("413");
    }
    for status in expected {
        assert_eq!(
            operation["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ClientErrorEnvelope",
            "{what} documents {status} in the SDK's envelope"
        );
    }
    let parameters = operation["parameters"].as_array().into_iter().flatten();
    assert!(
        !parameters
            .into_iter()
            .any(|p| p["name"] == "Idempotency-Key"),
        "{what} takes no Idempotency-Key"
    );
}

/// Parameters and bodies say the limits the server holds them to.
async fn parameters_and_bodies_say_their_limits(app: Arc<TestApp>) {
    let (_, doc) = send(app.client.get(app.url("/openapi.json"))).await;
    for (method, path, operation) in operations(&doc) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["name"] == "limit" && path.starts_with("/v1/") {
                // An optional parameter may also be sent empty, which reads as left out.
                let [schema, empty] = &parameter["schema"]["anyOf"].as_array().unwrap()[..] else {
                    panic!("{method} {path}: limit is a number or empty");
                };
                assert_eq!(empty["maxLength"], 0, "{method} {path}: limit");
                assert_eq!(schema["type"], "integer", "{method} {path}: limit");
                assert_eq!(schema["minimum"], 1, "{method} {path}: limit");
                assert_eq!(schema["maximum"], 100, "{method} {path}: limit");
            }
            if parameter["name"] == "shop" {
                assert_eq!(parameter["required"], true, "{method} {path}: shop");
                assert_eq!(parameter["schema"]["minLength"], 1, "{method} {path}: shop");
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    for body in ["MemberIn", "MsMemberIn", "V1MemberIn"] {
        let email = &schemas[body]["properties"]["email"];
        assert_eq!(email["format"], "email", "{body}.email");
        assert_eq!(email["maxLength"], 254, "{body}.email");
        let meta = &schemas[body]["properties"]["metaData"];
        assert_eq!(meta["maxProperties"], 50, "{body}.metaData");
        assert_eq!(meta["propertyNames"]["maxLength"], 50, "{body}.metaData");
        assert_eq!(
            meta["additionalProperties"]["maxLength"], 500,
            "{body}.metaData"
        );
        assert!(
            meta["additionalProperties"].get("type").is_none(),
            "{body}.metaData values are any JSON, as the server keeps them"
        );
        let password = &schemas[body]["properties"]["password"];
        assert_eq!(password["minLength"], 8, "{body}.password");
    }
    // Appstle's bodies are its own, not the native ones of the same Rust name.
    let cancel = &doc["paths"]["/api/external/v2/membership-contracts/{id}/cancel"]["post"];
    let cancel = cancel["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert!(schemas[cancel]["properties"]["cancelAtPeriodEnd"].is_object());
    assert!(schemas["CancelIn"]["properties"]["atPeriodEnd"].is_object());
}
