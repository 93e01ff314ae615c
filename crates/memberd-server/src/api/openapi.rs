//! What every keyed operation of a face can answer, added to the OpenAPI document in one place
//! rather than on each route: the key check (401), the face's own admission check (403), the
//! body limit (413), the Idempotency-Key replay of POSTs (400, 409, 422) and the rate limit
//! (429), each in the envelope of its face. A route documents only what its handler adds (its
//! 404s, 409s, 400s). Both key headers are alternative security schemes of every operation.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder,
};

/// The envelope a face writes its errors in, by the prefix of its paths.
fn envelope_of(path: &str) -> &'static str {
    if path.starts_with("/memberstack/") {
        "MsErrorEnvelope"
    } else if path.starts_with("/api/external/v2/") {
        "AppstleProblem"
    } else {
        "ErrorEnvelope"
    }
}

fn error_response(envelope: &str, description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(envelope)))
            .build(),
    )
}

fn integer_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

/// Adds `status` unless the route documents it itself.
fn add(operation: &mut Operation, status: &str, response: impl Into<RefOr<Response>>) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| response.into());
}

/// The longest `Idempotency-Key` the replay takes (see `middleware::idempotency`).
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// `Idempotency-Key` as the replay reads it: 1 to 255 visible ASCII characters, spaces only
/// inside (HTTP trims a header's ends, and the replay refuses a key that is empty).
fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: a retry with the same key and the same request replays the first response; the same key on another request is a 422",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(IDEMPOTENCY_KEY_MAX))
                .pattern(Some("^[!-~]([\t !-~]*[!-~])?$")),
        ))
        .build()
}

/// Whether a body's schema requires no field, so that an empty body (read as `{}`) will do.
fn needs_no_field(
    openapi_schemas: &Schemas,
    body: &utoipa::openapi::request_body::RequestBody,
) -> bool {
    let Some(content) = body.content.get("application/json") else {
        return false;
    };
    let schema = match &content.schema {
        Some(RefOr::Ref(r)) => r
            .ref_location
            .rsplit('/')
            .next()
            .and_then(|name| openapi_schemas.get(name)),
        Some(RefOr::T(schema)) => Some(schema),
        None => None,
    };
    matches!(schema, Some(Schema::Object(object)) if object.required.is_empty())
}

type Schemas = std::collections::BTreeMap<String, Schema>;

/// The member-facing API's operations: a publishable key always, a member's token where the
/// route needs one; no rate limit or Idempotency-Key (a browser sends neither), and refusals
/// in the SDK's envelope.
fn complete_client_operation(path: &str, method: &str, operation: &mut Operation) {
    operation.operation_id = Some(operation_id(method, path));
    operation.security = Some(vec![
        SecurityRequirement::new("publishableKey", Vec::<String>::new()),
        SecurityRequirement::new("publishableKey", Vec::<String>::new())
            .add("memberToken", Vec::<String>::new()),
    ]);
    let envelope = "ClientErrorEnvelope";
    add(
        operation,
        "400",
        error_response(envelope, "The request is not valid").build(),
    );
    add(
        operation,
        "401",
        error_response(
            envelope,
            "No publishable key or an unknown one, or no member's token (or a dead one) where the call needs one",
        )
        .build(),
    );
    add(
        operation,
        "403",
        error_response(
            envelope,
            "The page's origin is not among the app's allowed origins",
        )
        .build(),
    );
    if operation.request_body.is_some() {
        add(
            operation,
            "413",
            error_response(envelope, "The body is larger than the server accepts").build(),
        );
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut Operation, schemas: &Schemas) {
    if path.starts_with("/.well-known/") {
        operation.operation_id = Some(operation_id(method, path));
        operation.security = Some(Vec::new());
        return;
    }
    if path == "/memberstack/client/auth/verify-email" {
        // A link opened from a mail client: no key, and a page for an answer.
        operation.operation_id = Some(operation_id(method, path));
        operation.security = Some(Vec::new());
        return;
    }
    if path.starts_with("/memberstack/client/") {
        complete_client_operation(path, method, operation);
        return;
    }
    // Every body extractor of these faces reads an empty body as `{}`: a body whose fields are
    // all optional may be left out (the member-facing API refuses an empty body).
    if let Some(body) = operation.request_body.as_mut() {
        if needs_no_field(schemas, body) {
            body.required = Some(Required::False);
        }
    }
    let envelope = envelope_of(path);
    let post = method == "post";
    let has_body = operation.request_body.is_some();

    // The handlers' names (`create`, `list`) repeat across resources and faces; an operation
    // id must be unique in the document, so it is made from the method and the path.
    operation.operation_id = Some(operation_id(method, path));
    operation.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("apiKey", Vec::<String>::new()),
    ]);
    if post {
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        parameters.retain(|p| !p.name.eq_ignore_ascii_case("Idempotency-Key"));
        parameters.push(idempotency_key());
    }

    add(
        operation,
        "400",
        error_response(
            envelope,
            "The request is not valid: the error names the field at fault",
        )
        .build(),
    );
    add(
        operation,
        "401",
        error_response(envelope, "No key, or a key that is unknown or revoked").build(),
    );
    let forbidden = if envelope == "AppstleProblem" {
        "The key does not belong to the store named by `shop`, or the store needs a partner key"
    } else {
        "The key may not do this (such as a live key on a sandbox-only route)"
    };
    add(
        operation,
        "403",
        error_response(envelope, forbidden).build(),
    );
    if has_body || post {
        add(
            operation,
            "413",
            error_response(envelope, "The body is larger than the server accepts").build(),
        );
    }
    if post {
        add(
            operation,
            "409",
            error_response(
                envelope,
                "A conflict with the current state, or a request with the same Idempotency-Key is still running",
            )
            .build(),
        );
        add(
            operation,
            "422",
            error_response(
                envelope,
                "The Idempotency-Key was used before for a different request",
            )
            .build(),
        );
    }
    add(
        operation,
        "429",
        error_response(
            envelope,
            "Over the key's rate limit; retry after `Retry-After` seconds",
        )
        .header(
            "Retry-After",
            integer_header("Seconds to wait before retrying"),
        )
        .build(),
    );
}

/// `get /v1/members/{id}/access` → `get_v1_members_id_access`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// Completes every operation of the document (see the module's documentation).
pub fn complete(openapi: &mut OpenApi) {
    let schemas: Schemas = openapi
        .components
        .as_ref()
        .map(|c| {
            c.schemas
                .iter()
                .filter_map(|(name, schema)| match schema {
                    RefOr::T(schema) => Some((name.clone(), schema.clone())),
                    RefOr::Ref(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                complete_operation(path, method, operation, &schemas);
            }
        }
    }
}
