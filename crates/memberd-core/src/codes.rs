//! One-time codes: what a member proves by reading an email. A password reset or a
//! passwordless login is a 6-digit code typed into a form; an email verification is a link.
//! Each lives a short while, is good once, and dies after a few wrong tries.

use crate::mail::EmailKind;

/// Wrong tries a code survives; the next one (right or wrong) is refused.
pub const MAX_WRONG_TRIES: u32 = 5;
/// The length of a typed code.
pub const CODE_DIGITS: usize = 6;
/// The length of a link's token: enough that guessing one is hopeless.
pub const LINK_TOKEN_CHARS: usize = 32;

/// What a code lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    PasswordReset,
    PasswordlessLogin,
    PasswordlessSignup,
    EmailVerification,
}

impl CodePurpose {
    pub const ALL: [CodePurpose; 4] = [
        CodePurpose::PasswordReset,
        CodePurpose::PasswordlessLogin,
        CodePurpose::PasswordlessSignup,
        CodePurpose::EmailVerification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::PasswordReset => "password_reset",
            CodePurpose::PasswordlessLogin => "passwordless_login",
            CodePurpose::PasswordlessSignup => "passwordless_signup",
            CodePurpose::EmailVerification => "email_verification",
        }
    }

    pub fn parse(raw: &str) -> Option<CodePurpose> {
        CodePurpose::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// How long a code is good for, in seconds: an hour to reset a password, ten minutes to
    /// log in, a day to click a verification link.
    pub fn lifetime_secs(self) -> i64 {
        match self {
            CodePurpose::PasswordReset => 60 * 60,
            CodePurpose::PasswordlessLogin | CodePurpose::PasswordlessSignup => 10 * 60,
            CodePurpose::EmailVerification => 24 * 60 * 60,
        }
    }

    /// The email that carries it.
    pub fn email_kind(self) -> EmailKind {
        match self {
            CodePurpose::PasswordReset => EmailKind::PasswordReset,
            CodePurpose::PasswordlessLogin => EmailKind::PasswordlessLogin,
            CodePurpose::PasswordlessSignup => EmailKind::PasswordlessSignup,
            CodePurpose::EmailVerification => EmailKind::EmailVerification,
        }
    }

    /// Whether the member reads it as a link rather than typing it.
    pub fn is_link(self) -> bool {
        self == CodePurpose::EmailVerification
    }

    /// A new code for this purpose, from the thread's CSPRNG: six digits to type, or a
    /// token to put in a link.
    pub fn new_code(self) -> String {
        use rand::Rng;
        if self.is_link() {
            crate::ids::random_suffix(LINK_TOKEN_CHARS)
        } else {
            let n: u32 = rand::thread_rng().gen_range(0..1_000_000);
            format!("{n:0width$}", width = CODE_DIGITS)
        }
    }
}

/// A code as a member typed it: spaces and dashes that a mail client or a person adds are
/// not part of it.
pub fn normalize(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// Whether a typed code could be one of ours at all (an obviously malformed one is refused
/// without a look at the database, and counts as a wrong try all the same).
pub fn plausible(purpose: CodePurpose, code: &str) -> bool {
    if purpose.is_link() {
        code.len() == LINK_TOKEN_CHARS && code.bytes().all(|b| b.is_ascii_alphanumeric())
    } else {
        code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_codes_are_six_digits_and_links_are_long() {
        for _ in 0..200 {
            let code = CodePurpose::PasswordReset.new_code();
            assert!(plausible(CodePurpose::PasswordReset, &code), "{code}");
            let token = CodePurpose::EmailVerification.new_code();
            assert!(plausible(CodePurpose::EmailVerification, &token), "{token}");
        }
        assert!(!plausible(CodePurpose::PasswordlessLogin, "12345"));
        assert!(!plausible(CodePurpose::PasswordlessLogin, "12345a"));
        assert!(!plausible(CodePurpose::PasswordlessLogin, "1234567"));
    }

    #[test]
    fn a_code_typed_with_spaces_is_the_code() {
        assert_eq!(normalize(" 123 456\n"), "123456");
        assert_eq!(normalize("123-456"), "123456");
    }

    #[test]
    fn purposes_round_trip_and_have_their_lifetimes() {
        for p in CodePurpose::ALL {
            assert_eq!(CodePurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(CodePurpose::PasswordReset.lifetime_secs(), 3_600);
        assert_eq!(CodePurpose::PasswordlessLogin.lifetime_secs(), 600);
    }
}
