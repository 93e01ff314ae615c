//! Who may reach the dashboard's pages: no session is sent to sign in, an operator of one app
//! finds nothing in another, a viewer's POST is refused, a form without its CSRF token is
//! refused, and guessing passwords is stopped as members' guessing is.

use std::sync::Arc;
use std::time::Duration;

use memberd_core::operator::{AppAccess, Operator, Role};
use memberd_core::AppId;
use memberd_server::ops;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::support::TestApp;

const PASSWORD: &str = "a long operator password";

/// A browser of its own: keeps its cookies, never follows redirects (the tests read them).
pub struct Browser {
    client: reqwest::Client,
    cookies: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

pub fn browser() -> Browser {
    Browser {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        cookies: Default::default(),
    }
}

impl Browser {
    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let jar = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if jar.is_empty() {
            request
        } else {
            request.header(COOKIE, jar)
        };
        let response = request.send().await.unwrap();
        for set in response.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let mut cookies = self.cookies.lock().unwrap();
            if value.is_empty() {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }

    pub async fn get(&self, url: String) -> reqwest::Response {
        self.send(self.client.get(url)).await
    }

    pub async fn text(&self, url: String) -> String {
        self.get(url).await.text().await.unwrap()
    }

    pub async fn post_multipart(&self, url: String, body: String) -> reqwest::Response {
        let request = self
            .client
            .post(url)
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(body);
        self.send(request).await
    }

    pub async fn post<T: serde::Serialize + ?Sized>(
        &self,
        url: String,
        form: &T,
    ) -> reqwest::Response {
        self.send(self.client.post(url).form(form)).await
    }
}

/// The value of `name` in a page's form: the CSRF token, say.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// An operator with a password, made as the set-password link makes them.
async fn operator(app: &TestApp, email: &str, role: Role, apps: AppAccess) -> Operator {
    let mut op = Operator::create(email, role, apps, ops::now()).unwrap();
    let link = ops::create_operator(&app.store, &op).await.unwrap();
    let token = link.rsplit('=').next().unwrap();
    let hash = memberd_server::passwords::hash_password(PASSWORD.into())
        .await
        .unwrap();
    app.store
        .set_operator_password(&memberd_server::pages::token_hash(token), &hash, ops::now())
        .await
        .unwrap()
        .unwrap();
    op.password_hash = Some(hash);
    op
}

async fn sign_in(app: &TestApp, browser: &Browser, email: &str, password: &str) -> StatusCode {
    let page = browser.text(app.url("/dashboard/sign-in")).await;
    let csrf = field(&page, "csrf");
    browser
        .post(
            app.url("/dashboard/sign-in"),
            &[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ],
        )
        .await
        .status()
}

async fn status_of(browser: &Browser, url: String) -> (StatusCode, Option<String>) {
    let response = browser.get(url).await;
    let location = response
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    (response.status(), location)
}

async fn without_a_session_every_page_sends_to_sign_in(app: Arc<TestApp>) {
    let browser = browser();
    let scoped = format!("/dashboard/{}/sandbox", app.app_id);
    for path in [
        "/dashboard".to_owned(),
        scoped.clone(),
        format!("{scoped}/members"),
        format!("{scoped}/members/new"),
        format!("{scoped}/plans"),
        format!("{scoped}/events"),
        format!("{scoped}/webhooks"),
        format!("{scoped}/developers"),
        format!("{scoped}/transfer"),
        format!("{scoped}/transfer/members.csv"),
        format!("{scoped}/operators"),
        format!("{scoped}/audit"),
    ] {
        let (status, location) = status_of(&browser, app.url(&path)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        let location = location.unwrap();
        assert!(
            location.starts_with("/dashboard/sign-in?next="),
            "{path}: {location}"
        );
    }
    let posted = browser
        .post(
            app.url(&format!("{scoped}/members")),
            &[("email", "forged@example.com")],
        )
        .await;
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.member_count().await, 0, "nothing was created");
    // A cookie that was never a session is no better.
    let (status, _) = status_of(&browser, app.url(&scoped)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = forged
        .get(app.url(&scoped))
        .header(COOKIE, "memberd_session=made-up-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn an_operator_of_one_app_finds_nothing_in_another(app: Arc<TestApp>) {
    let first = AppId::parse(&app.app_id).unwrap();
    let second = app
        .store
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.id != first)
        .unwrap()
        .id;
    operator(
        &app,
        "first@example.com",
        Role::Admin,
        AppAccess::Only(vec![first.clone()]),
    )
    .await;
    let browser = browser();
    assert_eq!(
        sign_in(&app, &browser, "first@example.com", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let (status, location) = status_of(&browser, app.url("/dashboard")).await;
    assert_eq!(
        (status, location.as_deref()),
        (
            StatusCode::SEE_OTHER,
            Some(format!("/dashboard/{first}/live").as_str())
        )
    );
    let (status, _) = status_of(
        &browser,
        app.url(&format!("/dashboard/{first}/sandbox/members")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "",
        "/members",
        "/plans",
        "/events",
        "/webhooks",
        "/audit",
        "/members/new",
    ] {
        let (status, _) = status_of(
            &browser,
            app.url(&format!("/dashboard/{second}/sandbox{path}")),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // The switch lists only the app they may enter.
    let page = browser
        .text(app.url(&format!("/dashboard/{first}/sandbox")))
        .await;
    assert!(page.contains(first.as_str()) && !page.contains(second.as_str()));
    // A form of the app they may enter, posted to the other: refused, nothing made.
    let csrf = field(&page, "csrf");
    let posted = browser
        .post(
            app.url(&format!("/dashboard/{second}/sandbox/members")),
            &[("csrf", csrf.as_str()), ("email", "crossed@example.com")],
        )
        .await;
    assert_eq!(posted.status(), StatusCode::NOT_FOUND);
    let (status, body) = crate::support::send(app.request_as(
        &app.other_app_key,
        reqwest::Method::GET,
        "/v1/members",
    ))
    .await;
    assert_eq!(
        (status, &body["totalCount"]),
        (StatusCode::OK, &serde_json::json!(0)),
        "{body}"
    );
}

async fn a_viewer_may_read_and_not_write(app: Arc<TestApp>) {
    operator(&app, "viewer@example.com", Role::Viewer, AppAccess::All).await;
    let member = app.create_member("ann@example.com").await;
    let browser = browser();
    assert_eq!(
        sign_in(&app, &browser, "viewer@example.com", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let member_path = format!(
        "/dashboard/{}/sandbox/members/{}",
        app.app_id,
        member["id"].as_str().unwrap()
    );
    let page = browser.text(app.url(&member_path)).await;
    assert!(page.contains("ann@example.com"));
    assert!(
        !page.contains("Delete member") && !page.contains("Save profile"),
        "{page}"
    );
    let csrf = field(&page, "csrf");
    for (path, form) in [
        (
            format!("{member_path}/delete"),
            vec![("csrf", csrf.clone())],
        ),
        (
            member_path.clone(),
            vec![
                ("csrf", csrf.clone()),
                ("email", "changed@example.com".into()),
            ],
        ),
        (
            format!("/dashboard/{}/sandbox/plans", app.app_id),
            vec![("csrf", csrf.clone()), ("name", "Viewer's".into())],
        ),
    ] {
        let status = browser.post(app.url(&path), &form).await.status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, body) = app
        .get(&format!("/v1/members/{}", member["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (status, body["email"].as_str()),
        (StatusCode::OK, Some("ann@example.com"))
    );
    let (_, plans) = app.get("/v1/plans").await;
    assert_eq!(plans["totalCount"], 0);
}

async fn an_admin_may_change_members_but_not_keys(app: Arc<TestApp>) {
    operator(&app, "admin@example.com", Role::Admin, AppAccess::All).await;
    let browser = browser();
    assert_eq!(
        sign_in(&app, &browser, "admin@example.com", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let developers = format!("/dashboard/{}/sandbox/developers", app.app_id);
    let page = browser.text(app.url(&developers)).await;
    assert!(
        page.contains("Only owners create and revoke keys"),
        "{page}"
    );
    assert!(!page.contains("Create secret key"));
    let csrf = field(&page, "csrf");
    let keys_before = app.store.list_keys(None).await.unwrap().len();
    let made = browser
        .post(
            app.url(&format!("{developers}/keys")),
            &[("csrf", csrf.as_str()), ("name", "sneaky")],
        )
        .await;
    assert_eq!(made.status(), StatusCode::FORBIDDEN);
    let key = app.store.list_keys(None).await.unwrap().remove(0);
    let revoked = browser
        .post(
            app.url(&format!("{developers}/keys/{}/revoke", key.id)),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::FORBIDDEN);
    let keys = app.store.list_keys(None).await.unwrap();
    assert_eq!(keys.len(), keys_before);
    assert!(keys.iter().all(|k| k.revoked_at.is_none()));
    let created = browser
        .post(
            app.url(&format!("/dashboard/{}/sandbox/members", app.app_id)),
            &[
                ("csrf", csrf.as_str()),
                ("email", "made-by-admin@example.com"),
            ],
        )
        .await;
    assert_eq!(
        created.status(),
        StatusCode::SEE_OTHER,
        "admins change members"
    );
    assert_eq!(app.member_count().await, 1);
}

async fn a_form_without_its_token_is_refused(app: Arc<TestApp>) {
    operator(&app, "owner@example.com", Role::Owner, AppAccess::All).await;
    let browser = browser();
    assert_eq!(
        sign_in(&app, &browser, "owner@example.com", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let path = format!("/dashboard/{}/sandbox/members", app.app_id);
    for form in [
        vec![],
        vec![("csrf", "0".repeat(32))],
        vec![("csrf", "nope".to_owned())],
    ] {
        let mut form = form;
        form.push(("email", "forged@example.com".to_owned()));
        let response = browser.post(app.url(&path), &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form:?}");
    }
    assert_eq!(app.member_count().await, 0);
    // An upload is a form too: without the token, nothing is imported.
    let upload = |csrf: Option<&str>| {
        let mut body = String::new();
        if let Some(csrf) = csrf {
            body.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            ));
        }
        body.push_str("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\nuploaded@example.com\r\n--XyZ--\r\n");
        body
    };
    let import = format!("/dashboard/{}/sandbox/transfer/import", app.app_id);
    let refused = browser.post_multipart(app.url(&import), upload(None)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_multipart(app.url(&import), upload(Some(&"0".repeat(32))))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.member_count().await, 0);
    // The sign-in form's token is the form cookie's: without the cookie, refused.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = bare
        .post(app.url("/dashboard/sign-in"))
        .form(&[
            ("csrf", "0"),
            ("email", "owner@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers().get(SET_COOKIE).is_none(),
        "no session for a forged form"
    );
    // The token that works makes the member.
    let page = browser.text(app.url(&format!("{path}/new"))).await;
    let csrf = field(&page, "csrf");
    let response = browser
        .post(
            app.url(&path),
            &[("csrf", csrf.as_str()), ("email", "real@example.com")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.member_count().await, 1);
    let started = browser
        .post_multipart(app.url(&import), upload(Some(&csrf)))
        .await;
    assert_eq!(
        started.status(),
        StatusCode::SEE_OTHER,
        "with its token, the upload is taken"
    );
    for _ in 0..100 {
        if app.member_count().await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.member_count().await, 2);
}

async fn guessing_passwords_is_stopped(app: Arc<TestApp>) {
    operator(&app, "owner@example.com", Role::Owner, AppAccess::All).await;
    let browser = browser();
    for _ in 0..3 {
        assert_eq!(
            sign_in(&app, &browser, "owner@example.com", "wrong password!").await,
            StatusCode::OK
        );
    }
    // The right password no longer helps while the window lasts, nor does another address.
    assert_eq!(
        sign_in(&app, &browser, "owner@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let unknown = sign_in(&app, &browser, "nobody@example.com", "wrong password!").await;
    assert_eq!(
        unknown,
        StatusCode::TOO_MANY_REQUESTS,
        "the client address is counted too"
    );
}

async fn signing_out_ends_the_session_everywhere(app: Arc<TestApp>) {
    operator(&app, "owner@example.com", Role::Owner, AppAccess::All).await;
    let browser = browser();
    assert_eq!(
        sign_in(&app, &browser, "owner@example.com", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let overview = format!("/dashboard/{}/live", app.app_id);
    let page = browser.text(app.url(&overview)).await;
    let csrf = field(&page, "csrf");
    let out = browser
        .post(app.url("/dashboard/sign-out"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _) = status_of(&browser, app.url(&overview)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
}

fn guarded() -> memberd_server::Config {
    let mut config = crate::support::test_config();
    config.logins.failures = 3;
    config.logins.window = Duration::from_secs(3600);
    config
}

crate::both_backends!(super::guarded() =>
    without_a_session_every_page_sends_to_sign_in,
    an_operator_of_one_app_finds_nothing_in_another,
    a_viewer_may_read_and_not_write,
    an_admin_may_change_members_but_not_keys,
    a_form_without_its_token_is_refused,
    guessing_passwords_is_stopped,
    signing_out_ends_the_session_everywhere,
);
