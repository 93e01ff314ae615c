use std::fmt;
use std::str::FromStr;

use crate::ids::AppId;

/// Every app has two environments whose data never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Environment {
    Live,
    Sandbox,
}

impl Environment {
    pub const ALL: [Environment; 2] = [Environment::Sandbox, Environment::Live];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Sandbox => "sandbox",
        }
    }

    /// The prefix of the secret keys of this environment.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Environment::Live => "sk_live_",
            Environment::Sandbox => "sk_sb_",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Environment::Live),
            "sandbox" | "sb" => Ok(Environment::Sandbox),
            other => Err(format!(
                "unknown environment {other:?}: expected live or sandbox"
            )),
        }
    }
}

/// The tenant a request acts for: one environment of one app. Every query of tenant data
/// filters on both parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub app_id: AppId,
    pub env: Environment,
}

impl Scope {
    pub fn new(app_id: AppId, env: Environment) -> Self {
        Scope { app_id, env }
    }
}
