//! The native API, `/v1`: memberd's own face, which every later face and tool can rely on.

pub mod access;
pub mod accounts;
pub mod analytics;
pub mod connections;
pub mod emails;
pub mod events;
pub mod export;
pub mod members;
pub mod page;
pub mod payment_methods;
pub mod plans;
pub mod secure_content;
pub mod test_clocks;
pub mod webhooks;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorEnvelope;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "memberd",
        description = "A self-hosted membership server: members, plans, plan connections, access checks and a change feed.\n\nAuthenticate with a secret key (`sk_sb_…` for sandbox data, `sk_live_…` for live data) as `Authorization: Bearer <key>` or `X-API-KEY: <key>`. Every error has the same envelope; every POST takes an `Idempotency-Key`."
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("apiKey" = [])),
    tags(
        (name = "plans", description = "What members can hold"),
        (name = "members", description = "The people of an app"),
        (name = "plan connections", description = "A member's hold on a plan, and its lifecycle"),
        (name = "access", description = "May this member pass?"),
        (name = "events", description = "The change feed"),
        (name = "webhooks", description = "Signed delivery of every event to your endpoints"),
        (name = "billing", description = "Payment methods and the sandbox gateway"),
        (name = "test clocks", description = "Sandbox clocks that move time on for their members"),
        (name = "app", description = "The key's app, and the settings of members' own accounts"),
        (name = "secure content", description = "Content handed only to members whose plans unlock it"),
        (name = "emails", description = "What memberd emails members, and the templates it writes them from"),
    )
)]
struct NativeDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-KEY"))),
        );
        // The member-facing API's (`/memberstack/client/`): an environment's publishable key,
        // and a member's session token.
        components.add_security_scheme(
            "publishableKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "memberToken",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every `/v1` route, registered together with its OpenAPI description so the two cannot drift.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(NativeDoc::openapi())
        .routes(routes!(plans::create, plans::list))
        .routes(routes!(plans::retrieve, plans::update))
        .routes(routes!(plans::archive))
        .routes(routes!(members::create, members::list))
        .routes(routes!(export::export_members))
        .routes(routes!(members::retrieve, members::update, members::delete))
        .routes(routes!(accounts::list_sessions))
        .routes(routes!(accounts::revoke_sessions))
        .routes(routes!(accounts::end_session))
        .routes(routes!(accounts::verify_token))
        .routes(routes!(accounts::retrieve_app, accounts::update_app))
        .routes(routes!(emails::list))
        .routes(routes!(emails::retrieve))
        .routes(routes!(emails::list_templates))
        .routes(routes!(
            emails::retrieve_template,
            emails::update_template,
            emails::reset_template
        ))
        .routes(routes!(emails::send_verification))
        .routes(routes!(emails::send_password_reset))
        .routes(routes!(secure_content::create, secure_content::list))
        .routes(routes!(
            secure_content::retrieve,
            secure_content::update,
            secure_content::delete
        ))
        .routes(routes!(connections::connect, connections::list_for_member))
        .routes(routes!(connections::retrieve))
        .routes(routes!(connections::cancel))
        .routes(routes!(connections::pause))
        .routes(routes!(connections::resume))
        .routes(routes!(connections::replace))
        .routes(routes!(access::check_access))
        .routes(routes!(payment_methods::attach, payment_methods::list))
        .routes(routes!(payment_methods::payments))
        .routes(routes!(analytics::summary))
        .routes(routes!(test_clocks::create))
        .routes(routes!(test_clocks::retrieve))
        .routes(routes!(test_clocks::advance))
        .routes(routes!(events::list))
        .routes(routes!(events::retrieve))
        .routes(routes!(webhooks::event_attempts))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(
            webhooks::retrieve,
            webhooks::update,
            webhooks::delete
        ))
        .routes(routes!(webhooks::secret))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::endpoint_attempts))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(webhooks::recover))
}
