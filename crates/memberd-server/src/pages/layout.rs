//! The frame every page shares (the app and environment switch, the navigation, who is
//! signed in) and the pieces forms are made of, so that every input has its label and its
//! error in the same place.

use maud::{html, Markup, DOCTYPE};
use memberd_core::{Environment, Timestamp};

use memberd_core::operator::Capability;

use super::{FieldErrors, Place, CSRF_FIELD};

/// The parts of an environment, as the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Members,
    Plans,
    Events,
    Webhooks,
    Developers,
    Transfer,
    Operators,
    Audit,
}

impl Section {
    const ALL: [Section; 9] = [
        Section::Overview,
        Section::Members,
        Section::Plans,
        Section::Events,
        Section::Webhooks,
        Section::Developers,
        Section::Transfer,
        Section::Operators,
        Section::Audit,
    ];

    fn label(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Members => "Members",
            Section::Plans => "Plans",
            Section::Events => "Events",
            Section::Webhooks => "Webhooks",
            Section::Developers => "Developers",
            Section::Transfer => "Import and export",
            Section::Operators => "Operators",
            Section::Audit => "Audit log",
        }
    }

    /// The path after `/dashboard/{app}/{env}`.
    pub fn path(self) -> &'static str {
        match self {
            Section::Overview => "",
            Section::Members => "/members",
            Section::Plans => "/plans",
            Section::Events => "/events",
            Section::Webhooks => "/webhooks",
            Section::Developers => "/developers",
            Section::Transfer => "/transfer",
            Section::Operators => "/operators",
            Section::Audit => "/audit",
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · memberd" }
            link rel="stylesheet" href=(super::assets::STYLESHEET);
            script src=(super::assets::SCRIPT) defer {}
        }
    }
}

/// A page outside any app: sign-in, errors.
pub fn bare(title: &str, message: &str) -> Markup {
    plain(
        title,
        html! { p { (message) } p { a href="/dashboard" { "Back to the dashboard" } } },
    )
}

/// A page of its own with `body` under its title, outside any app.
pub fn plain(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.plain {
                main #main.narrow {
                    p.brand { "memberd" }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page of one app and environment.
pub fn page(place: &Place, section: Section, title: &str, body: Markup) -> Markup {
    let base = place.base();
    let operator = &place.signed_in.operator;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body class={ "env-" (place.env.as_str()) } {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.bar {
                        a.brand href=(base) { "memberd" }
                        form.switch method="get" action="/dashboard/go" {
                            input type="hidden" name="section" value=(section.path());
                            label for="place" { "App" }
                            select #place name="place" data-autosubmit {
                                @for app in &place.apps {
                                    @for env in [Environment::Live, Environment::Sandbox] {
                                        @let value = format!("{}/{}", app.id, env);
                                        option value=(value) selected[app.id == place.app.id && env == place.env] {
                                            (app.name) " — " (env_label(env))
                                        }
                                    }
                                }
                            }
                            button type="submit" { "Switch" }
                        }
                        div.who {
                            span.operator { (operator.email) " (" (operator.role) ")" }
                            (post_button("/dashboard/sign-out", &place.signed_in.csrf, "Sign out", false))
                        }
                    }
                    @if place.env == Environment::Sandbox {
                        p.sandbox role="note" { strong { "Sandbox" } ": test data. Nothing here touches live members or real money." }
                    }
                    nav aria-label="Sections" {
                        ul {
                            @for s in Section::ALL.into_iter().filter(|s| *s != Section::Operators || place.may(Capability::ManageAccess)) {
                                li {
                                    a href={ (base) (s.path()) } aria-current=[(s == section).then_some("page")] { (s.label()) }
                                }
                            }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn env_label(env: Environment) -> &'static str {
    match env {
        Environment::Live => "Live",
        Environment::Sandbox => "Sandbox",
    }
}

/// The hidden field every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// A form that is one button, posting to `action`; `confirm` asks first (with JavaScript).
pub fn post_button(action: &str, csrf_token: &str, label: &str, confirm: bool) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(csrf_token))
            button type="submit" data-confirm=[confirm.then(|| format!("{label}?"))] { (label) }
        }
    }
}

/// A labelled input, with its error (as the API names the field) under it.
pub struct Field<'a> {
    pub label: &'a str,
    /// The form field's name, also its id.
    pub name: &'a str,
    pub value: &'a str,
    pub kind: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    /// The API's name for the field, whose errors belong here.
    pub api_name: &'a str,
}

impl<'a> Field<'a> {
    pub fn text(label: &'a str, name: &'a str, value: &'a str) -> Self {
        Field {
            label,
            name,
            value,
            kind: "text",
            required: false,
            hint: None,
            api_name: name,
        }
    }

    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn api(mut self, api_name: &'a str) -> Self {
        self.api_name = api_name;
        self
    }

    pub fn render(&self, errors: &FieldErrors) -> Markup {
        let error = errors.get(self.api_name);
        let error_id = format!("{}-error", self.name);
        let hint_id = format!("{}-hint", self.name);
        let described = match (error.is_some(), self.hint.is_some()) {
            (true, true) => Some(format!("{error_id} {hint_id}")),
            (true, false) => Some(error_id.clone()),
            (false, true) => Some(hint_id.clone()),
            (false, false) => None,
        };
        html! {
            div.field.invalid[error.is_some()] {
                label for=(self.name) { (self.label) }
                @if self.kind == "textarea" {
                    textarea id=(self.name) name=(self.name) rows="4" required[self.required]
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()] { (self.value) }
                } @else {
                    input id=(self.name) name=(self.name) type=(self.kind) value=(self.value) required[self.required]
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()];
                }
                @if let Some(hint) = self.hint { p.hint id=(hint_id) { (hint) } }
                @if let Some(error) = error { p.error id=(error_id) { (error) } }
            }
        }
    }
}

/// The errors no field of the form shows, at the top of it.
pub fn form_errors(errors: &FieldErrors, shown: &[&str]) -> Markup {
    let others = errors.others(shown);
    html! {
        @if !others.is_empty() {
            div.alert role="alert" {
                @for message in others { p { (message) } }
            }
        }
    }
}

/// A time as people read it, in UTC.
pub fn when(t: Timestamp) -> Markup {
    let text = t.to_rfc3339();
    let shown = text.get(..16).unwrap_or(&text).replace('T', " ");
    html! { time datetime=(text) { (shown) } }
}

/// An amount in minor units with its currency: `12.50 USD`.
pub fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        a / 100,
        a % 100,
        currency.to_uppercase()
    )
}

/// A status as a badge, its class from its name.
pub fn badge(text: &str) -> Markup {
    html! { span class={ "badge " (text.to_lowercase()) } { (text) } }
}

/// Links to the previous and next page of a cursor-paged list.
pub fn pager(base_query: &str, next: Option<String>, first: bool, path: &str) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if !first { a href={ (path) "?" (base_query) } { "First page" } }
            @if let Some(after) = next {
                a href={ (path) "?" (base_query) @if !base_query.is_empty() { "&" } "after=" (after) } rel="next" { "Next page" }
            }
        }
    }
}

/// A labelled date input.
pub fn date_field(label: &str, name: &str) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) type="date" name=(name) required;
        }
    }
}

/// Nothing to show, said plainly.
pub fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}
