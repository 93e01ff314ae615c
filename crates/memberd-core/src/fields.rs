//! The free-form fields a member carries, and their limits (seed 001: metaData holds at most 50
//! keys, each key at most 50 characters, each value at most 500 characters).

use serde_json::{Map, Value};

use crate::DomainError;

pub const META_DATA_MAX_KEYS: usize = 50;
pub const META_DATA_MAX_KEY_LEN: usize = 50;
pub const META_DATA_MAX_VALUE_LEN: usize = 500;
pub const CUSTOM_FIELDS_MAX_KEYS: usize = 100;
pub const CUSTOM_FIELD_MAX_KEY_LEN: usize = 100;
pub const CUSTOM_FIELD_MAX_VALUE_LEN: usize = 5_000;
/// The free `json` document of a member, serialised.
pub const JSON_MAX_BYTES: usize = 64 * 1024;

/// The length a limit is measured on: characters for a string, the serialised form otherwise.
fn value_len(value: &Value) -> usize {
    match value {
        Value::String(s) => s.chars().count(),
        other => other.to_string().chars().count(),
    }
}

/// Merges `patch` into `base` one level deep: a key set to `null` is removed.
fn shallow_merge(base: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = base.clone();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

struct Limits {
    field: &'static str,
    code: &'static str,
    max_keys: usize,
    max_key_len: usize,
    max_value_len: usize,
}

impl Limits {
    fn check(&self, map: &Map<String, Value>) -> Result<(), DomainError> {
        if map.len() > self.max_keys {
            return Err(DomainError::invalid(
                self.field,
                self.code,
                format!(
                    "{} can hold at most {} keys, got {}",
                    self.field,
                    self.max_keys,
                    map.len()
                ),
            ));
        }
        for (key, value) in map {
            let field = format!("{}.{}", self.field, truncate(key, 60));
            if key.is_empty() || key.chars().count() > self.max_key_len {
                return Err(DomainError::invalid(
                    field,
                    self.code,
                    format!(
                        "keys of {} must be 1 to {} characters long",
                        self.field, self.max_key_len
                    ),
                ));
            }
            if value_len(value) > self.max_value_len {
                return Err(DomainError::invalid(
                    field,
                    self.code,
                    format!(
                        "values of {} must be at most {} characters long",
                        self.field, self.max_value_len
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

const META_DATA_LIMITS: Limits = Limits {
    field: "metaData",
    code: "meta_data_limit",
    max_keys: META_DATA_MAX_KEYS,
    max_key_len: META_DATA_MAX_KEY_LEN,
    max_value_len: META_DATA_MAX_VALUE_LEN,
};

const CUSTOM_FIELDS_LIMITS: Limits = Limits {
    field: "customFields",
    code: "custom_fields_limit",
    max_keys: CUSTOM_FIELDS_MAX_KEYS,
    max_key_len: CUSTOM_FIELD_MAX_KEY_LEN,
    max_value_len: CUSTOM_FIELD_MAX_VALUE_LEN,
};

macro_rules! limited_map {
    ($(#[$doc:meta])* $name:ident, $limits:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(Map<String, Value>);

        impl $name {
            pub fn parse(map: Map<String, Value>) -> Result<Self, DomainError> {
                $limits.check(&map)?;
                // `null` means "no value" and is not kept.
                Ok($name(map.into_iter().filter(|(_, v)| !v.is_null()).collect()))
            }

            /// Applies a PATCH: shallow merge, `null` removes a key; the result must still
            /// respect the limits.
            pub fn merge(&self, patch: &Map<String, Value>) -> Result<Self, DomainError> {
                let merged = shallow_merge(&self.0, patch);
                $limits.check(&merged)?;
                Ok($name(merged))
            }

            pub fn from_trusted(map: Map<String, Value>) -> Self {
                $name(map)
            }

            pub fn as_map(&self) -> &Map<String, Value> {
                &self.0
            }
        }
    };
}

limited_map!(
    /// Operator-controlled data on a member (seed 001's limits).
    MetaData, META_DATA_LIMITS);
limited_map!(
    /// The fields of a member's signup form.
    CustomFields, CUSTOM_FIELDS_LIMITS);

/// Checks a member's free `json` document: an object, of bounded size.
pub fn check_json(value: &Value) -> Result<(), DomainError> {
    if !value.is_object() {
        return Err(DomainError::invalid(
            "json",
            "invalid_json_document",
            "json must be a JSON object (or null to clear it)",
        ));
    }
    if value.to_string().len() > JSON_MAX_BYTES {
        return Err(DomainError::invalid(
            "json",
            "json_too_large",
            format!("json must be at most {JSON_MAX_BYTES} bytes once serialised"),
        ));
    }
    Ok(())
}

/// The one character that no text may hold, whatever the field: PostgreSQL cannot store it
/// in text, SQLite would keep it, and no client that sends it means it. Every face applies this
/// to every string of a JSON body (`nul_in`) and to every query parameter, before anything else
/// reads them, so that the two backends answer alike.
pub fn check_no_nul(field: &str, text: &str) -> Result<(), DomainError> {
    if text.contains('\0') {
        return Err(DomainError::invalid(
            field.to_owned(),
            "invalid_characters",
            format!("{field} must not contain a NUL character"),
        ));
    }
    Ok(())
}

/// Where in `value` a string or a key holds NUL, written as the API names fields
/// (`metaData.plan`, `prices[1].currency`), or `None` when nowhere. `field` is the path of
/// `value` itself (empty for a whole body).
pub fn nul_in(value: &Value, field: &str) -> Option<String> {
    let join = |key: &str| {
        if field.is_empty() {
            key.to_owned()
        } else {
            format!("{field}.{key}")
        }
    };
    match value {
        Value::String(s) => s.contains('\0').then(|| field.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &format!("{field}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "")))
            } else {
                nul_in(item, &join(key))
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// Checks an optional free-text field such as `loginRedirect`.
pub fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), DomainError> {
    if value.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(DomainError::invalid(
            field,
            "invalid_characters",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn meta_data_at_the_limits_is_accepted() {
        let mut m = Map::new();
        for i in 0..META_DATA_MAX_KEYS {
            m.insert(format!("{i:0>50}"), Value::String("é".repeat(500)));
        }
        assert!(MetaData::parse(m).is_ok());
    }

    #[test]
    fn meta_data_over_the_limits_names_the_field() {
        let err = MetaData::parse(map(json!({"plan": "x".repeat(501)}))).unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "metaData.plan"));
        let long_key = "k".repeat(51);
        assert!(MetaData::parse(map(json!({ long_key: 1 }))).is_err());
        let many: Map<String, Value> = (0..51).map(|i| (i.to_string(), json!(i))).collect();
        let err = MetaData::parse(many).unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "metaData"));
    }

    #[test]
    fn merge_is_shallow_and_null_removes() {
        let base = MetaData::parse(map(json!({"a": 1, "b": {"x": 1}}))).unwrap();
        let merged = base
            .merge(&map(json!({"a": null, "b": {"y": 2}, "c": "new"})))
            .unwrap();
        assert_eq!(
            Value::Object(merged.as_map().clone()),
            json!({"b": {"y": 2}, "c": "new"})
        );
    }

    #[test]
    fn nul_is_found_wherever_it_is_and_named_as_the_api_names_fields() {
        assert_eq!(nul_in(&json!({"name": "ok", "n": 1}), ""), None);
        assert_eq!(
            nul_in(&json!({"description": "a\0b"}), ""),
            Some("description".into())
        );
        assert_eq!(
            nul_in(
                &json!({"prices": [{"currency": "usd"}, {"currency": "u\0"}]}),
                ""
            ),
            Some("prices[1].currency".into())
        );
        assert_eq!(
            nul_in(&json!({"metaData": {"k\0ey": "v"}}), ""),
            Some("metaData.key".into())
        );
        assert_eq!(
            nul_in(&json!(["\0"]), "permissions"),
            Some("permissions[0]".into())
        );
        let err = check_no_nul("customerId", "a\0b").unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "customerId"));
        assert!(check_no_nul("customerId", "ab").is_ok());
    }

    #[test]
    fn json_is_an_object() {
        assert!(check_json(&json!({"a": [1]})).is_ok());
        for not_an_object in [json!("notobj"), json!([1]), json!(1), json!(true)] {
            let err = check_json(&not_an_object).unwrap_err();
            assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "json"));
        }
    }

    proptest! {
        #[test]
        fn nul_in_finds_a_nul_exactly_when_one_is_there(
            strings in proptest::collection::vec("[a-z\\x00]{0,6}", 0..6)
        ) {
            let has_nul = strings.iter().any(|s| s.contains('\0'));
            let value = json!({"list": strings, "nested": {"k": "v"}});
            prop_assert_eq!(nul_in(&value, "").is_some(), has_nul);
        }

        #[test]
        fn parse_accepts_exactly_what_is_within_the_limits(
            entries in proptest::collection::vec((".{0,60}", ".{0,520}"), 0..60)
        ) {
            let m: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let within = m.len() <= META_DATA_MAX_KEYS
                && m.iter().all(|(k, v)| {
                    let klen = k.chars().count();
                    (1..=META_DATA_MAX_KEY_LEN).contains(&klen) && value_len(v) <= META_DATA_MAX_VALUE_LEN
                });
            prop_assert_eq!(MetaData::parse(m).is_ok(), within);
        }

        #[test]
        fn merge_never_yields_an_over_limit_map(
            base in proptest::collection::vec(("[a-z]{1,3}", "[a-z]{0,5}"), 0..50),
            patch in proptest::collection::vec(("[a-z]{1,3}", proptest::option::of("[a-z]{0,600}")), 0..20)
        ) {
            let base: Map<String, Value> = base.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let Ok(base) = MetaData::parse(base) else { return Ok(()) };
            let patch: Map<String, Value> = patch
                .into_iter()
                .map(|(k, v)| (k, v.map(Value::String).unwrap_or(Value::Null)))
                .collect();
            if let Ok(merged) = base.merge(&patch) {
                prop_assert!(META_DATA_LIMITS.check(merged.as_map()).is_ok());
            }
        }
    }
}
