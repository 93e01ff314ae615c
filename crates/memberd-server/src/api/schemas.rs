//! The OpenAPI schemas of the free-form member fields, whose limits (the core's `fields`) the
//! derive cannot say: how many keys, how long a key, how long a value.

use memberd_core::fields::{
    CUSTOM_FIELDS_MAX_KEYS, CUSTOM_FIELD_MAX_KEY_LEN, CUSTOM_FIELD_MAX_VALUE_LEN,
    META_DATA_MAX_KEYS, META_DATA_MAX_KEY_LEN, META_DATA_MAX_VALUE_LEN,
};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// Text without control characters (U+0000–U+001F, U+007F–U+009F), which the core refuses in
/// every text field it checks.
pub const NO_CONTROL: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

fn keys(max_len: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_len))
}

/// `metaData`: at most 50 keys of 1 to 50 characters, each value any JSON of at most 500
/// characters (a string's own, anything else's JSON text), as Memberstack keeps them; `null`
/// removes a key in an update.
pub fn meta_data() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(format!(
            "At most {META_DATA_MAX_KEYS} keys of 1 to {META_DATA_MAX_KEY_LEN} characters; each value any JSON, a string of at most {META_DATA_MAX_VALUE_LEN} characters or another value whose JSON text is at most that long (null removes the key)"
        )))
        .max_properties(Some(META_DATA_MAX_KEYS))
        .property_names(Some(keys(META_DATA_MAX_KEY_LEN)))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .max_length(Some(META_DATA_MAX_VALUE_LEN)),
        ))
        .into()
}

/// `customFields`: at most 100 keys of 1 to 100 characters, values of at most 5,000 characters.
pub fn custom_fields() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(format!(
            "At most {CUSTOM_FIELDS_MAX_KEYS} keys of 1 to {CUSTOM_FIELD_MAX_KEY_LEN} characters; each value at most {CUSTOM_FIELD_MAX_VALUE_LEN} characters (null removes the key)"
        )))
        .max_properties(Some(CUSTOM_FIELDS_MAX_KEYS))
        .property_names(Some(keys(CUSTOM_FIELD_MAX_KEY_LEN)))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .max_length(Some(CUSTOM_FIELD_MAX_VALUE_LEN)),
        ))
        .into()
}

/// `json`: a JSON object of at most 64 KiB once serialised, or null.
pub fn json_document() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Any JSON object, up to 64 KiB once serialised; null clears it",
        ))
        .into()
}

/// A permission such as `view:premium`: 1 to 100 letters, digits and `_-:./*`.
pub struct Permission;

impl utoipa::PartialSchema for Permission {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1 to 100 letters, digits and _-:./*, such as view:premium",
            ))
            .pattern(Some("^[A-Za-z0-9_:./*-]{1,100}$"))
            .into()
    }
}

impl utoipa::ToSchema for Permission {}

/// A time as the API reads one: RFC 3339 (`2026-01-31T12:00:00Z`) or a date (`2026-01-31`).
pub struct TimeText;

impl utoipa::PartialSchema for TimeText {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat};
        let string = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        AnyOfBuilder::new()
            .item(string(KnownFormat::DateTime))
            .item(string(KnownFormat::Date))
            .description(Some(
                "RFC 3339, such as 2026-01-31T12:00:00Z, or a date such as 2026-01-31",
            ))
            .into()
    }
}

impl utoipa::ToSchema for TimeText {}
