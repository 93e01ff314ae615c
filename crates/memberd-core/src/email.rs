use std::fmt;

use crate::DomainError;

/// An email address, trimmed and lowercased: the form in which it is stored and compared, so
/// that `Ann@Example.com` and `ann@example.com` are one member.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = |message: &str| DomainError::invalid("email", "invalid_email", message);
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(invalid("email is required"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(invalid("email must be at most 254 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("email must not contain spaces"));
        }
        if email.chars().any(is_invisible) {
            // `zw\u{200b}j@…` would be a second member who looks like `zwj@…` everywhere.
            return Err(invalid(
                "email must not contain invisible or bidirectional-control characters",
            ));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("email must contain an @"));
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(invalid("email is not a valid address"));
        }
        let labels_ok = domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err(invalid("email must have a domain such as example.com"));
        }
        Ok(Email(email))
    }

    pub fn from_trusted(s: String) -> Self {
        Email(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that print as nothing, or that reorder what is around them: Unicode's format
/// characters (category Cf: zero-width spaces and joiners, the byte-order mark, the
/// bidirectional embeddings, overrides, isolates and marks, the invisible operators, tags),
/// and the fillers and selectors that render blank. Spaces and control characters are refused
/// on their own.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn refuses_invisible_and_bidirectional_characters() {
        for look_alike in [
            "zw\u{200b}j@example.com",
            "admin\u{200d}@example.com",
            "\u{feff}admin@example.com",
            "ad\u{202e}nimda@example.com",
            "ann\u{2066}@example.com",
            "ann@exa\u{00ad}mple.com",
            "ann\u{e0041}@example.com",
        ] {
            let err = Email::parse(look_alike).unwrap_err();
            assert!(
                matches!(err, DomainError::Invalid { ref field, code: "invalid_email", .. } if field == "email"),
                "{look_alike:?}"
            );
        }
        // Letters of other scripts are letters.
        assert!(Email::parse("jörg@example.com").is_ok());
        assert!(Email::parse("用户@例子.广告").is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@@example.com",
            "ann@-x.com",
            "ann@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
