use memberd_core::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist in this scope. `what` is its kind: "member", "plan", …
    #[error("no such {what}: {id}")]
    NotFound { what: &'static str, id: String },
    /// A unique field already holds this value in this scope (an email, an externalId, …).
    #[error("{field} is already taken")]
    Duplicate { field: &'static str },
    /// The domain refused the change.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the direct SQLite reads (see `reads`).
    #[error("database error: {0}")]
    Sqlite(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Asked of a backend that does not do it.
    #[error("not supported here: {0}")]
    Unsupported(&'static str),
    /// Stored data could not be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}
