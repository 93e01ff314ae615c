//! `memberd operators …`: who may sign in to the dashboard.

use anyhow::{bail, Context};
use memberd_core::operator::{AppAccess, Operator};
use memberd_core::Email;
use memberd_server::ops;
use memberd_store::{Store, StoreError};

use crate::cli::{OperatorsCommand, PublicUrlArgs};
use crate::commands::{parse_app_id, parse_public_url};

const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

fn public_url(raw: Option<&str>) -> anyhow::Result<String> {
    raw.map_or(Ok(DEFAULT_PUBLIC_URL.to_owned()), |raw| {
        parse_public_url(raw).context("public_url")
    })
}

async fn find(store: &Store, email: &str) -> anyhow::Result<Operator> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    store.get_operator_by_email(&email).await?.with_context(|| {
        format!("no operator has the address {email}; see `memberd operators list`")
    })
}

pub async fn run(store: &Store, command: OperatorsCommand) -> anyhow::Result<()> {
    match command {
        OperatorsCommand::Create {
            email,
            role,
            apps,
            public: PublicUrlArgs { public_url: url },
        } => {
            let url = public_url(url.as_deref())?;
            let access = if apps.is_empty() {
                AppAccess::All
            } else {
                let mut ids = Vec::new();
                for raw in &apps {
                    let id = parse_app_id(raw)?;
                    if store.get_app(&id).await?.is_none() {
                        bail!("--app: no such app: {id}; see `memberd apps list`");
                    }
                    ids.push(id);
                }
                AppAccess::Only(ids)
            };
            let operator = Operator::create(&email, role.into(), access, ops::now())
                .map_err(|e| anyhow::anyhow!("--{e}"))?;
            let link = match ops::create_operator(store, &operator).await {
                Err(StoreError::Duplicate { .. }) => {
                    bail!("--email: {} is already an operator; `memberd operators link --email {}` gives them a new link", operator.email, operator.email)
                }
                other => other?,
            };
            println!(
                "Created the {} {} ({}).",
                operator.role, operator.email, operator.id
            );
            println!("They set their password here (the link works once, for 24 hours):");
            println!("  {url}{link}");
        }
        OperatorsCommand::Link {
            email,
            public: PublicUrlArgs { public_url: url },
        } => {
            let url = public_url(url.as_deref())?;
            let operator = find(store, &email).await?;
            let link = ops::new_operator_link(store, &operator.id).await?;
            println!(
                "{} sets a new password here (the link works once, for 24 hours):",
                operator.email
            );
            println!("  {url}{link}");
        }
        OperatorsCommand::List => {
            let operators = store.list_operators().await?;
            if operators.is_empty() {
                println!(
                    "No operators yet. `memberd serve` prints a link that makes the first owner."
                );
            }
            for op in operators {
                let apps = match &op.apps {
                    AppAccess::All => "every app".to_owned(),
                    AppAccess::Only(ids) => ids
                        .iter()
                        .map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                let state = if op.password_hash.is_some() {
                    ""
                } else {
                    "  (has not set a password yet)"
                };
                println!(
                    "{}  {:<6}  {}  {apps}{state}",
                    op.id,
                    op.role.as_str(),
                    op.email
                );
            }
        }
        OperatorsCommand::Delete { email } => {
            let operator = find(store, &email).await?;
            store.delete_operator(&operator.id).await?;
            println!(
                "Removed {} ({}); their sign-ins have ended.",
                operator.email, operator.id
            );
        }
    }
    Ok(())
}
