//! Two rules every face applies to text, written into the OpenAPI document once rather than on
//! each field: no string holds NUL (`extract::refuse_nul`, `refuse_nul_in_uri`), and an optional
//! query parameter given empty (`?limit=`) is the same as one left out.

use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Required};

/// Any text without NUL: the pattern of a string that has no pattern of its own.
const NO_NUL: &str = "^[^\\u0000]*$";

fn is_string(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// Gives every free string in `schema` the NUL rule.
fn refuse_nul(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            let free = is_string(&object.schema_type)
                && object.pattern.is_none()
                && object.enum_values.is_none()
                && object.format.is_none();
            if free {
                object.pattern = Some(NO_NUL.to_owned());
            }
            for property in object.properties.values_mut() {
                refuse_nul(property);
            }
            if let Some(utoipa::openapi::schema::AdditionalProperties::RefOr(schema)) =
                object.additional_properties.as_deref_mut()
            {
                refuse_nul(schema);
            }
        }
        Schema::Array(array) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut array.items {
                refuse_nul(items);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(refuse_nul),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(refuse_nul),
        Schema::AllOf(all) => all.items.iter_mut().for_each(refuse_nul),
        _ => {}
    }
}

/// An optional query parameter may be sent empty, which reads as left out.
fn empty_is_absent(parameter: &mut Parameter) {
    let optional = !matches!(parameter.required, Required::True);
    let in_query = matches!(
        parameter.parameter_in,
        utoipa::openapi::path::ParameterIn::Query
    );
    if !(optional && in_query) {
        return;
    }
    if let Some(schema) = parameter.schema.take() {
        let empty = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(0))
            .description(Some("empty: the same as leaving the parameter out"));
        parameter.schema = Some(AnyOfBuilder::new().item(schema).item(empty).into());
    }
}

/// Applies both rules to every parameter, body and component of the document.
pub fn apply(openapi: &mut OpenApi) {
    if let Some(components) = openapi.components.as_mut() {
        for schema in components.schemas.values_mut() {
            refuse_nul(schema);
        }
    }
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let Some(schema) = parameter.schema.as_mut() {
                    refuse_nul(schema);
                }
                empty_is_absent(parameter);
            }
            if let Some(body) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    if let Some(schema) = content.schema.as_mut() {
                        refuse_nul(schema);
                    }
                }
            }
        }
    }
}
