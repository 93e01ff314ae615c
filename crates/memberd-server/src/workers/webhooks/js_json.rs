//! JSON written the way JavaScript's `JSON.stringify` writes it, so that a receiver that
//! parses a body and serialises it again (the Memberstack SDK signs `JSON.stringify(body)`)
//! gets the very bytes that were signed.
//!
//! Two things differ from serde_json's compact output: JavaScript puts object keys that are
//! array indices ("0", "7", "10") first, in numeric order; and it writes numbers its own way
//! (`1` not `1.0`, `1e+21` not `1e21`, integers beyond 2^53 rounded).

use std::fmt::Write;

use serde_json::{Number, Value};

pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut indices: Vec<(u32, &String, &Value)> = Vec::new();
            let mut others: Vec<(&String, &Value)> = Vec::with_capacity(map.len());
            for (k, v) in map {
                match array_index(k) {
                    Some(i) => indices.push((i, k, v)),
                    None => others.push((k, v)),
                }
            }
            indices.sort_by_key(|(i, _, _)| *i);
            out.push('{');
            let entries = indices.into_iter().map(|(_, k, v)| (k, v)).chain(others);
            for (n, (k, v)) in entries.enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A key JavaScript orders as an array index: "0", or digits without a leading zero, below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0"
        || (!key.is_empty()
            && !key.starts_with('0')
            && key.len() <= 10
            && key.bytes().all(|b| b.is_ascii_digit()));
    if !canonical {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|n| *n < u64::from(u32::MAX))
        .map(|n| n as u32)
}

fn write_string(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON.stringify does: `"`, `\`, \b \f \n \r \t, and the
    // other control characters as lower-case \u00XX.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn write_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        if u <= MAX_SAFE_INTEGER {
            let _ = write!(out, "{u}");
            return;
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_SAFE_INTEGER {
            let _ = write!(out, "{i}");
            return;
        }
    }
    write_js_double(out, n.as_f64().unwrap_or(0.0));
}

/// ECMAScript's Number::toString for a finite double, from Rust's shortest round-trip digits.
fn write_js_double(out: &mut String, f: f64) {
    if f == 0.0 || !f.is_finite() {
        out.push_str(if f.is_finite() { "0" } else { "null" });
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e >= 0 { "+" } else { "-" }, e.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        let cases = [
            (json!(1.0), "1"),
            (json!(-0.0), "0"),
            (json!(0.1), "0.1"),
            (json!(123.456), "123.456"),
            (json!(1e21), "1e+21"),
            (json!(1e20), "100000000000000000000"),
            (json!(1.5e-7), "1.5e-7"),
            (json!(0.000001), "0.000001"),
            (json!(-2.5e30), "-2.5e+30"),
            (json!(9007199254740993u64), "9007199254740992"),
            (json!(-42), "-42"),
            (json!(u64::MAX), "18446744073709552000"),
        ];
        for (value, want) in cases {
            assert_eq!(to_string(&value), want, "{value}");
        }
    }

    #[test]
    fn index_keys_come_first_in_numeric_order_then_the_rest_as_given() {
        let value = json!({"b": 1, "10": 2, "9": 3, "a": 4, "01": 5, "-1": 6, "4294967295": 7});
        assert_eq!(
            to_string(&value),
            r#"{"9":3,"10":2,"b":1,"a":4,"01":5,"-1":6,"4294967295":7}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_javascript_escapes_them() {
        let value = json!({"s": "a\"b\\c\n\u{1}\u{7f}é/"});
        assert_eq!(
            to_string(&value),
            "{\"s\":\"a\\\"b\\\\c\\n\\u0001\u{7f}é/\"}"
        );
    }
}
