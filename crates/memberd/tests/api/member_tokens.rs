//! Members' tokens themselves: a forged or altered one is refused, the public keys that check
//! them are published, and no token or password reaches the log.

use std::sync::Arc;
use std::time::Duration;

use memberd_core::{AppId, MemberId, SessionId, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::member_accounts::{get_as, send_raw, signup, token, PASSWORD};
use crate::member_sessions::{assert_live, assert_refused, claims, encoded, segment, unb64url};
use crate::support::{id, send, send_ms, TestApp};

async fn forged_and_altered_tokens_are_refused(app: Arc<TestApp>) {
    let data = signup(&app, "ann@example.com").await;
    let (member_id, real) = (id(&data["member"]).to_owned(), token(&data));
    let bob = signup(&app, "bob@example.com").await;
    let bob_id = id(&bob["member"]).to_owned();
    let [header, payload, signature]: [&str; 3] = real
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .expect("three segments");
    let original = claims(&real);
    let kid = segment(&real, 0)["kid"].as_str().unwrap().to_owned();
    assert_eq!(segment(&real, 0)["alg"], "ES256");

    let mut forged = Vec::new();
    // No signature at all.
    for none in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT", "kid": kid}),
    ] {
        forged.push(format!("{}.{payload}.", encoded(&none)));
    }
    // The real signature over changed claims: another member, a later expiry.
    for (claim, value) in [("id", json!(bob_id)), ("exp", json!(4_102_444_800_i64))] {
        let mut changed = original.clone();
        changed[claim] = value;
        forged.push(format!("{header}.{}.{signature}", encoded(&changed)));
    }
    // A changed signature.
    let mut flipped: Vec<char> = signature.chars().collect();
    flipped[10] = if flipped[10] == 'A' { 'B' } else { 'A' };
    forged.push(format!(
        "{header}.{payload}.{}",
        flipped.iter().collect::<String>()
    ));

    // The same claims and `kid`, signed by a key that is not the server's.
    let issuer = original["iss"].as_str().unwrap().to_owned();
    let (app_id, member, session) = (
        AppId::parse(&app.app_id).unwrap(),
        MemberId::parse(&member_id).unwrap(),
        SessionId::parse(original["sid"].as_str().unwrap()).unwrap(),
    );
    let issued = Timestamp::from_micros(original["iat"].as_i64().unwrap() * 1_000_000);
    let expires = Timestamp::from_micros(original["exp"].as_i64().unwrap() * 1_000_000);
    let dir = std::env::temp_dir().join(format!("memberd-forger-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let elsewhere =
        memberd_store::Store::connect(&format!("sqlite:{}", dir.join("keys.db").display()))
            .await
            .unwrap();
    elsewhere.migrate().await.unwrap();
    let mut foreign =
        memberd_server::tokens::generate_signing_key(memberd_server::ops::now()).unwrap();
    foreign.kid = kid.clone();
    elsewhere
        .add_signing_key(&foreign, Timestamp::from_micros(0), false)
        .await
        .unwrap();
    let forger = memberd_server::tokens::Tokens::new(elsewhere.clone(), issuer.clone());
    let impostor = forger
        .sign(&app_id, &member, &session, issued, expires)
        .await
        .unwrap();
    assert_eq!(segment(&impostor, 0)["kid"], kid.as_str());
    assert_eq!(claims(&impostor), original, "the very same claims");
    forged.push(impostor);

    // With the server's own key: the same claims verify (so the forgeries above fail for
    // their forgery alone), while an expired token and one of no session do not.
    let signer = memberd_server::tokens::Tokens::new(app.store.clone(), issuer);
    let twin = signer
        .sign(&app_id, &member, &session, issued, expires)
        .await
        .unwrap();
    assert_live(&app, &twin, &member_id).await;
    let past = Timestamp::from_micros(memberd_server::ops::now().as_micros() - 60_000_000);
    forged.push(
        signer
            .sign(&app_id, &member, &session, issued, past)
            .await
            .unwrap(),
    );
    forged.push(
        signer
            .sign(&app_id, &member, &SessionId::generate(), issued, expires)
            .await
            .unwrap(),
    );

    for token in &forged {
        assert_refused(&app, token).await;
    }
    assert_live(&app, &real, &member_id).await;
    elsewhere.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn the_public_keys_are_published_without_their_private_half(app: Arc<TestApp>) {
    let t = token(&signup(&app, "ann@example.com").await);
    let kid = segment(&t, 0)["kid"].as_str().unwrap().to_owned();
    let (status, headers, text) = send_raw(app.client.get(app.url("/.well-known/jwks.json"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let jwks: Value = serde_json::from_str(&text).unwrap();
    let keys = jwks["keys"].as_array().expect("a JWK Set");
    assert!(!keys.is_empty());
    for key in keys {
        assert_eq!(key["kty"], "EC", "{key}");
        assert_eq!(key["crv"], "P-256", "{key}");
        assert_eq!(key["alg"], "ES256", "{key}");
        for coordinate in ["x", "y"] {
            let raw = unb64url(key[coordinate].as_str().unwrap());
            assert_eq!(raw.len(), 32, "{coordinate} of {key}");
        }
        let fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        assert!(
            fields
                .iter()
                .all(|f| ["kty", "crv", "alg", "use", "kid", "x", "y"].contains(&f.as_str())),
            "only public members, no `d`: {key}"
        );
    }
    assert!(
        keys.iter().any(|k| k["kid"] == kid.as_str()),
        "the token's kid {kid} is published: {jwks}"
    );
    assert!(!text.contains("\"d\""), "{text}");
}

/// A `memberd serve` already started with its output piped, once it says where it listens;
/// what it logs is kept as `cli::Served` keeps it.
fn served_from(mut child: std::process::Child) -> crate::cli::Served {
    use std::io::{BufRead, BufReader};
    let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let kept = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed: Vec<String> = Vec::new();
    // The apps exist already, so memberd prints no keys, only where they are.
    while !printed.last().is_some_and(|l| l.contains("keys: see")) {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!(
                    "memberd printed {printed:?}, logged {:?}",
                    logs.lock().unwrap()
                )
            });
        printed.push(line);
    }
    let base = printed[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the first line says where memberd listens")
        .to_owned();
    crate::cli::Served {
        child,
        base,
        printed,
        logs,
    }
}

async fn no_token_or_password_reaches_the_log(app: Arc<TestApp>) {
    use std::process::Stdio;
    let database_url = app.database_url.clone();
    let served = tokio::task::spawn_blocking(move || {
        let child = crate::cli::memberd()
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(&database_url)
            .env("MEMBERD_LOG", "debug")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("memberd starts");
        served_from(child)
    })
    .await
    .unwrap();
    let base = format!("{}/memberstack/client", served.base);
    let http = reqwest::Client::new();
    let pk = app.publishable_key.clone();
    let call = |method: Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .header("X-API-Key", &pk)
            .header("Origin", "http://localhost:5173")
    };
    let (second, wrong) = ("another good password", "a wrong password");
    let (status, signed_up) = send_ms(
        call(Method::POST, "/auth/signup")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed_up}");
    let t = token(&signed_up["data"]);
    let (status, _) = send_ms(
        call(Method::POST, "/auth/login")
            .json(&json!({"email": "ann@example.com", "password": wrong})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, logged_in) = send_ms(
        call(Method::POST, "/auth/login")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let t2 = token(&logged_in["data"]);
    let (status, _) = send_ms(call(Method::GET, "/member").bearer_auth(&t)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_ms(
        call(Method::POST, "/member-auth")
            .bearer_auth(&t)
            .json(&json!({"oldPassword": PASSWORD, "newPassword": second})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A refused token, on both faces and to the operator's verify.
    let (status, _) = send_ms(
        call(Method::POST, "/member")
            .bearer_auth(&t2)
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        http.post(format!("{}/v1/tokens/verify", served.base))
            .bearer_auth(&app.key)
            .json(&json!({ "token": t })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_ms(
        http.post(format!("{}/memberstack/members/verify-token", served.base))
            .header("X-API-KEY", &app.key)
            .json(&json!({ "token": t2 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send_ms(call(Method::POST, "/member/logout").bearer_auth(&t)).await;
    assert_eq!(status, StatusCode::OK);

    let logs = served.logs.clone();
    tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        text = logs.lock().unwrap().join("\n");
        if text.contains("stopped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.contains("stopped"), "the whole log was read: {text}");
    assert!(
        text.contains("DEBUG"),
        "logged at debug level, so that the test means something"
    );
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_owned();
    for secret in [
        t.clone(),
        t2.clone(),
        signature(&t),
        signature(&t2),
        PASSWORD.to_owned(),
        second.to_owned(),
        wrong.to_owned(),
        app.key.clone(),
        "$argon2".to_owned(),
    ] {
        assert!(!text.contains(&secret), "{secret:?} is in the log");
    }
    let (_, events) = get_as(&app, &app.key, "/v1/events?types=member.created").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

crate::both_backends!(
    forged_and_altered_tokens_are_refused,
    the_public_keys_are_published_without_their_private_half,
    no_token_or_password_reaches_the_log,
);
