//! Identifiers carry their type as a prefix (`mem_…`, `pln_…`), so that one can never be
//! passed where another is expected, on the wire or in the code.

use std::fmt;

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 24;

/// `len` random characters of `ALPHABET`: the random part of every id, and a token where one
/// is needed that is no id (an Idempotency-Key's claim).
pub fn random_suffix(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = concat!($prefix, "_");

            /// A new random identifier.
            pub fn generate() -> Self {
                $name(format!("{}{}", Self::PREFIX, random_suffix(RANDOM_LEN)))
            }

            /// Accepts `prefix_` followed by 1 to 64 ASCII letters, digits or `_`.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix(Self::PREFIX)?;
                let ok = !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                ok.then(|| $name(s.to_owned()))
            }

            /// Wraps a value read back from the store, which only ever holds parsed ids.
            pub fn from_trusted(s: String) -> Self {
                $name(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not an id of the form {}…",
                        Self::PREFIX
                    ))
                })
            }
        }
    };
}

typed_id!(/// An app: one tenant.
    AppId, "app");
typed_id!(/// A secret API key (the id, never the secret).
    KeyId, "key");
typed_id!(/// A member of an app.
    MemberId, "mem");
typed_id!(/// A plan.
    PlanId, "pln");
typed_id!(/// A price of a plan.
    PriceId, "prc");
typed_id!(/// A plan connection: a member's hold on a plan.
    ConnectionId, "con");
typed_id!(/// An event in the event log.
    EventId, "evt");
typed_id!(/// A webhook endpoint.
    EndpointId, "ep");
typed_id!(/// One event's delivery to one endpoint, with its retries.
    DeliveryId, "dlv");
typed_id!(/// One attempt at a delivery.
    AttemptId, "att");
typed_id!(/// A charge, successful or not.
    PaymentId, "pay");
typed_id!(/// A member's payment method (a card, of which only brand, last four and expiry are kept).
    PaymentMethodId, "pm");
typed_id!(/// A sandbox test clock, whose members live at its frozen time.
    TestClockId, "clock");
typed_id!(/// A member's session: one login, until logout, revoke or expiry.
    SessionId, "ses");
typed_id!(/// An email memberd sends (or keeps, with no SMTP server), from its outbox.
    EmailId, "eml");
typed_id!(/// A person who signs in to the dashboard.
    OperatorId, "opr");
typed_id!(/// One entry of the dashboard's audit log.
    AuditId, "aud");

/// Writes `n` in base 36, `width` digits wide (its low digits if it is longer).
fn base36(mut n: u64, width: usize, out: &mut String) {
    let mut digits = vec![b'0'; width];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    out.extend(digits.into_iter().map(char::from));
}

impl MemberId {
    /// The `seq`-th id of a bulk load started at `start_micros`: the same form as a generated
    /// id, but ids of one load, and of later loads, sort in the order they were made (10
    /// characters of time, 6 of sequence, 8 random). A million random ids would scatter their
    /// inserts over the whole index, each commit rewriting pages all over it; these append.
    pub fn ordered(start_micros: i64, seq: u64) -> MemberId {
        let mut s = String::with_capacity(Self::PREFIX.len() + RANDOM_LEN);
        s.push_str(Self::PREFIX);
        base36(u64::try_from(start_micros).unwrap_or(0), 10, &mut s);
        base36(seq, 6, &mut s);
        s.push_str(&random_suffix(RANDOM_LEN - 16));
        MemberId(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_keep_their_prefix() {
        let id = MemberId::generate();
        assert!(id.as_str().starts_with("mem_"));
        assert_eq!(MemberId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(PlanId::parse(id.as_str()), None);
    }

    #[test]
    fn ordered_ids_parse_and_sort_in_the_order_they_were_made() {
        let start = 1_790_000_000_000_000;
        let ids: Vec<MemberId> = (0..1_000).map(|i| MemberId::ordered(start, i)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(MemberId::ordered(start, 999) < MemberId::ordered(start + 1, 0));
        for id in &ids {
            assert_eq!(id.as_str().len(), MemberId::generate().as_str().len());
            assert_eq!(MemberId::parse(id.as_str()).as_ref(), Some(id));
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "mem_",
            "mem",
            "mem_a b",
            "mem_é",
            "pln_abc",
            &format!("mem_{}", "a".repeat(65)),
        ] {
            assert_eq!(MemberId::parse(bad), None, "{bad:?}");
        }
    }
}
