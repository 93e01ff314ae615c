use std::borrow::Cow;

/// Why the domain refused a change. Adapters map these onto their own wire formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input is malformed or breaks a limit; `field` names it on the wire (`metaData.plan`).
    #[error("{field}: {message}")]
    Invalid {
        field: Cow<'static, str>,
        code: &'static str,
        message: String,
    },
    /// The input is well formed but the current state does not allow the change
    /// (resuming what is not paused, connecting an archived plan, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
}

impl DomainError {
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        DomainError::Invalid {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid { code, .. } | DomainError::Conflict { code, .. } => code,
        }
    }
}
