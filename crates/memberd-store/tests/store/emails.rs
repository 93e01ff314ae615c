//! The email outbox and one-time codes as only the store sees them: senders racing for the
//! same emails each get their own, a lease that ran out is taken over (and the late sender's
//! outcome refused), and a code is kept only as a hash and used once.

use std::collections::HashSet;

use memberd_core::codes::CodePurpose;
use memberd_core::sending::EmailState;
use memberd_core::{Email, Timestamp};
use memberd_store::{EmailOutcome, PageRequest, Store};

use crate::common::{new_member, scope, t};

fn plus_secs(at: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_micros(at.as_micros() + secs * 1_000_000)
}

pub(crate) async fn senders_never_hold_one_email_at_once(store: &Store) {
    let scope = scope(store).await;
    let now = t("2026-04-01T00:00:00Z");
    for i in 0..40 {
        let to = Email::parse(&format!("m{i}@example.com")).unwrap();
        store
            .issue_code(&scope, CodePurpose::PasswordReset, &to, None, None, now)
            .await
            .unwrap();
    }
    let lease = plus_secs(now, 60);
    // Four senders claim at once, in batches of 7, until nothing is left.
    let mut claims = Vec::new();
    for owner in ["a", "b", "c", "d"] {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let due = store.claim_emails(now, lease, owner, 7).await.unwrap();
                if due.is_empty() {
                    return mine;
                }
                mine.extend(due.into_iter().map(|d| d.record.id.to_string()));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for claim in claims {
        for id in claim.await.unwrap() {
            total += 1;
            assert!(seen.insert(id.clone()), "{id} was handed to two senders");
        }
    }
    assert_eq!((total, seen.len()), (40, 40));

    // A lease that ran out is taken over; the first holder can no longer record an outcome.
    let later = plus_secs(now, 61);
    let first = store
        .claim_emails(later, plus_secs(later, 60), "e", 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let id = first[0].record.id.clone();
    let late = EmailOutcome::Sent;
    let taken = store
        .claim_emails(plus_secs(later, 61), plus_secs(later, 120), "f", 100)
        .await
        .unwrap();
    assert!(taken.iter().any(|d| d.record.id == id));
    assert!(!store.record_email(&id, "e", &late, later).await.unwrap());
    assert!(store.record_email(&id, "f", &late, later).await.unwrap());
    let page = PageRequest {
        after: None,
        limit: 100,
        order: memberd_store::Order::Desc,
    };
    let emails = store.list_emails(&scope, None, page).await.unwrap();
    let sent: Vec<_> = emails
        .items
        .iter()
        .filter(|e| e.state == EmailState::Sent)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].attempts, 1);
}

pub(crate) async fn codes_are_kept_as_hashes_and_used_once(store: &Store) {
    let scope = scope(store).await;
    let now = t("2026-04-02T00:00:00Z");
    let (member, event) = new_member("coded@example.com", None);
    store.insert_member(&scope, &member, &event).await.unwrap();
    store
        .issue_code(
            &scope,
            CodePurpose::PasswordReset,
            &member.email,
            Some(&member),
            None,
            now,
        )
        .await
        .unwrap();
    let page = PageRequest {
        after: None,
        limit: 10,
        order: memberd_store::Order::Desc,
    };
    let email = store
        .list_emails(&scope, Some(&member.email), page)
        .await
        .unwrap()
        .items
        .remove(0);
    let code: String = email
        .text
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .expect("a code in the email")
        .to_owned();
    let hash = "$argon2id$new".to_owned();
    let reset = store
        .reset_password_with_code(&scope, &code, hash.clone(), plus_secs(now, 10))
        .await
        .unwrap()
        .expect("the code resets the password");
    assert_eq!(reset.member.password_hash.as_deref(), Some(hash.as_str()));
    assert!(store
        .reset_password_with_code(&scope, &code, hash, plus_secs(now, 20))
        .await
        .unwrap()
        .is_none());
}
