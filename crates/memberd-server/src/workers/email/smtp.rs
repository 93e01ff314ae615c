//! Where emails go: an SMTP URL, parsed once at start, that never prints its password.
//!
//! `smtp://host[:port]` (plain, port 25), `smtp://user:pass@host:587?tls=starttls` (STARTTLS
//! required; `tls=opportunistic` uses it when offered), `smtps://user:pass@host[:465]` (TLS
//! from the first byte).

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Opportunistic,
    StartTls,
    Implicit,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    user: Option<String>,
    password: Option<String>,
}

impl SmtpUrl {
    pub fn parse(raw: &str) -> Result<SmtpUrl, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(format!(
                    "the scheme must be smtp:// or smtps://, not {other}://"
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut tls = if implicit {
            SmtpTls::Implicit
        } else {
            SmtpTls::None
        };
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "starttls" | "required") if !implicit => tls = SmtpTls::StartTls,
                ("tls", "opportunistic") if !implicit => tls = SmtpTls::Opportunistic,
                ("tls", "none" | "off") if !implicit => tls = SmtpTls::None,
                ("tls", other) => {
                    return Err(format!(
                        "tls={other} is not one of starttls, opportunistic or none (smtps:// is TLS already)"
                    ))
                }
                (other, _) => return Err(format!("unknown parameter {other:?} (only tls=)")),
            }
        }
        let port = url.port().unwrap_or(if implicit { 465 } else { 25 });
        let decode = |s: &str| {
            percent_decode(s)
                .ok_or_else(|| "the user or password is not valid percent-encoding".to_owned())
        };
        let user = (!url.username().is_empty())
            .then(|| decode(url.username()))
            .transpose()?;
        let password = url.password().map(decode).transpose()?;
        if password.is_some() && user.is_none() {
            return Err("a password needs a user".into());
        }
        Ok(SmtpUrl {
            host,
            port,
            tls,
            user,
            password,
        })
    }

    /// The transport that sends through this server.
    pub fn transport(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let params = || TlsParameters::new(self.host.clone());
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Implicit => Tls::Wrapper(params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(user) = &self.user {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                self.password.clone().unwrap_or_default(),
            ));
        }
        Ok(builder.build())
    }
}

/// Decodes `%XX` escapes; `None` for a broken one or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL as it may be printed: the password is never shown.
impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == SmtpTls::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}:…@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match self.tls {
            SmtpTls::StartTls => write!(f, "?tls=starttls"),
            SmtpTls::Opportunistic => write!(f, "?tls=opportunistic"),
            SmtpTls::None | SmtpTls::Implicit => Ok(()),
        }
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_the_readme_gives_parse() {
        let plain = SmtpUrl::parse("smtp://mail.example.com").unwrap();
        assert_eq!((plain.port, plain.tls), (25, SmtpTls::None));
        let submission =
            SmtpUrl::parse("smtp://ann:p%40ss@mail.example.com:587?tls=starttls").unwrap();
        assert_eq!((submission.port, submission.tls), (587, SmtpTls::StartTls));
        assert_eq!(submission.password.as_deref(), Some("p@ss"));
        let implicit = SmtpUrl::parse("smtps://ann:secret@mail.example.com").unwrap();
        assert_eq!((implicit.port, implicit.tls), (465, SmtpTls::Implicit));
    }

    #[test]
    fn the_password_is_never_shown() {
        let url = SmtpUrl::parse("smtp://ann:hunter2@mail.example.com:587?tls=starttls").unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("smtp://ann:…@mail.example.com:587?tls=starttls"),
            "{shown}"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (raw, says) in [
            ("http://mail.example.com", "scheme"),
            ("smtp://mail.example.com?tls=maybe", "tls=maybe"),
            ("smtps://mail.example.com?tls=starttls", "tls=starttls"),
            ("smtp://mail.example.com?pool=4", "pool"),
            ("mail.example.com:25", "scheme"),
        ] {
            let err = SmtpUrl::parse(raw).unwrap_err();
            assert!(err.contains(says), "{raw}: {err}");
        }
    }
}
