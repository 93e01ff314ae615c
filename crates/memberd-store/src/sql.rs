//! A small builder for SQL with numbered placeholders (`$1`, `$2`, …), which both SQLite and
//! PostgreSQL accept, for the queries whose filters vary.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub(crate) fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    pub(crate) fn text(&mut self, s: impl Into<String>) -> &mut Self {
        self.bind(Arg::Text(s.into()))
    }

    pub(crate) fn int(&mut self, n: i64) -> &mut Self {
        self.bind(Arg::Int(n))
    }

    /// Appends ` IN ($n, …)` over `values`, which must not be empty.
    pub(crate) fn in_list<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.push(" IN (");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(value);
        }
        self.push(")")
    }

    pub(crate) fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        self.bind(s.map_or(Arg::NullText, |s| Arg::Text(s.to_owned())))
    }

    pub(crate) fn opt_int(&mut self, n: Option<i64>) -> &mut Self {
        self.bind(n.map_or(Arg::NullInt, Arg::Int))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn args(&self) -> &[Arg] {
        &self.args
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(n) => q.bind(*n),
                Arg::NullText => q.bind(None::<String>),
                Arg::NullInt => q.bind(None::<i64>),
            };
        }
        q
    }
}
