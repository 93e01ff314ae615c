//! The shapes the SDK reads (`Payload.Transforms` in `@memberstack/dom`'s types).

use memberd_core::{Plan, PlanStatus, Price, Timestamp};
use memberd_store::{ConnectionView, MemberView};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `{"data": …}`, as every answer of the SDK's API is.
#[derive(Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientMember {
    id: String,
    verified: bool,
    profile_image: Option<String>,
    auth: ClientAuth,
    login_redirect: Option<String>,
    stripe_customer_id: Option<String>,
    created_at: String,
    last_login: Option<String>,
    #[schema(value_type = Object)]
    meta_data: Map<String, Value>,
    #[schema(value_type = Object)]
    custom_fields: Map<String, Value>,
    permissions: Vec<String>,
    plan_connections: Vec<ClientConnection>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClientAuth {
    email: String,
    has_password: bool,
    providers: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClientConnection {
    id: String,
    active: bool,
    status: &'static str,
    plan_id: String,
    plan_name: String,
    #[serde(rename = "type")]
    connection_type: &'static str,
    payment: Option<ClientPayment>,
}

/// Dates are Unix seconds; the amount is in the currency's major unit, as the SDK's are.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClientPayment {
    amount: f64,
    currency: String,
    status: &'static str,
    last_billing_date: Option<i64>,
    next_billing_date: Option<i64>,
    cancel_at_date: Option<i64>,
    price_id: Option<String>,
}

fn unix_seconds(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.as_unix_millis().div_euclid(1000))
}

fn major_units(minor: i64) -> f64 {
    minor as f64 / 100.0
}

fn connection(view: ConnectionView) -> ClientConnection {
    let c = view.connection;
    let payment = (c.amount > 0).then(|| ClientPayment {
        amount: major_units(c.amount),
        currency: c.currency.clone().unwrap_or_default().to_ascii_lowercase(),
        status: if c.active() { "PAID" } else { "UNPAID" },
        last_billing_date: unix_seconds(c.current_period_start),
        next_billing_date: unix_seconds(c.next_billing_date()),
        cancel_at_date: unix_seconds(c.end_date.filter(|_| c.cancel_at_period_end)),
        price_id: c.price_id.as_ref().map(ToString::to_string),
    });
    ClientConnection {
        id: c.id.to_string(),
        active: c.active(),
        status: c.status.as_str(),
        plan_id: c.plan_id.to_string(),
        plan_name: view.plan_name,
        connection_type: c.connection_type.as_str(),
        payment,
    }
}

pub fn member(view: MemberView) -> ClientMember {
    let permissions = view.permissions();
    let m = view.member;
    ClientMember {
        id: m.id.to_string(),
        verified: m.verified,
        profile_image: m.profile_image,
        auth: ClientAuth {
            email: m.email.to_string(),
            has_password: m.password_hash.is_some(),
            providers: Vec::new(),
        },
        login_redirect: m.login_redirect,
        stripe_customer_id: m.stripe_customer_id,
        created_at: m.created_at.to_rfc3339(),
        last_login: m.last_login.map(|t| t.to_rfc3339()),
        meta_data: m.meta_data.as_map().clone(),
        custom_fields: m.custom_fields.as_map().clone(),
        permissions,
        plan_connections: view.connections.into_iter().map(connection).collect(),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPlan {
    id: String,
    name: String,
    description: Option<String>,
    priority: Option<i64>,
    status: &'static str,
    /// FREE or PAID.
    #[serde(rename = "type")]
    plan_type: &'static str,
    permissions: Vec<String>,
    prices: Vec<ClientPrice>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClientPrice {
    id: String,
    /// In the currency's major unit (9.99), as the SDK's prices are.
    amount: f64,
    interval: ClientInterval,
    name: Option<String>,
    /// SUBSCRIPTION or ONETIME.
    #[serde(rename = "type")]
    price_type: &'static str,
    status: &'static str,
    currency: String,
    free_trial_days: u32,
}

#[derive(Serialize, ToSchema)]
struct ClientInterval {
    #[serde(rename = "type")]
    kind: &'static str,
    count: u32,
}

fn price(p: &Price) -> ClientPrice {
    let onetime = p.interval == memberd_core::Interval::Onetime;
    ClientPrice {
        id: p.id.to_string(),
        amount: major_units(p.amount),
        interval: ClientInterval {
            kind: p.interval.as_str(),
            count: p.interval_count,
        },
        name: None,
        price_type: if onetime { "ONETIME" } else { "SUBSCRIPTION" },
        status: if p.active { "ACTIVE" } else { "INACTIVE" },
        currency: p.currency.to_ascii_lowercase(),
        free_trial_days: p.trial_days,
    }
}

pub fn plan(p: &Plan) -> ClientPlan {
    ClientPlan {
        id: p.id.to_string(),
        name: p.name.clone(),
        description: p.description.clone(),
        priority: None,
        status: if p.status == PlanStatus::Active {
            "ACTIVE"
        } else {
            "INACTIVE"
        },
        plan_type: p.plan_type.as_str(),
        permissions: p.permissions.clone(),
        prices: p.prices.iter().map(price).collect(),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientApp {
    pub id: String,
    pub name: String,
    /// `live` or `sandbox`.
    pub mode: &'static str,
    pub plans: Vec<ClientPlan>,
    pub content_groups: Vec<Value>,
    pub custom_fields: Vec<Value>,
    pub allow_member_self_delete: bool,
    pub captcha_required: bool,
    pub auth_providers: Vec<Value>,
    #[schema(value_type = Object)]
    pub additional_auth_methods: Value,
    #[serde(rename = "ssoSignupButtonURL")]
    pub sso_signup_button_url: Option<String>,
    pub is_paid: bool,
    #[schema(value_type = Object)]
    pub branding: Value,
    pub signup_enabled: bool,
}
