use serde::Serialize;

use crate::fields::check_text;
use crate::{DomainError, PlanId, PriceId, Timestamp};

/// Generates `as_str` / `parse` for a fieldless enum with the given wire names, and (with the
/// `openapi` feature) its schema: a string enum of exactly those names.
///
/// The schema is written out rather than derived: utoipa's derive does not see a
/// `#[serde(rename = $wire)]` that a macro wrote, and documented the Rust names (`Active`)
/// instead of the wire names (`ACTIVE`) that serde sends and accepts.
macro_rules! wire_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: &[&str] = &[$($doc),*];
                let doc = doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join("\n");
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description((!doc.is_empty()).then_some(doc))
                    .enum_values(Some([$($wire),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Case-insensitive, so that `active` and `ACTIVE` both work in query strings.
            pub fn parse(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($wire) { return Some($name::$variant); })+
                None
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// Whether a plan costs money.
    PlanType { Free => "FREE", Paid => "PAID" });
wire_enum!(
    /// Archived plans keep their members but take no new ones.
    PlanStatus { Active => "ACTIVE", Archived => "ARCHIVED" });
wire_enum!(
    /// How often a price is charged; ONETIME is charged once.
    Interval { Day => "DAY", Week => "WEEK", Month => "MONTH", Year => "YEAR", Onetime => "ONETIME" });

pub const PLAN_NAME_MAX: usize = 200;
pub const PLAN_DESCRIPTION_MAX: usize = 2_000;
pub const MAX_PERMISSIONS: usize = 100;
pub const PERMISSION_MAX_LEN: usize = 100;
pub const MAX_PRICES: usize = 20;
pub const MAX_TRIAL_DAYS: u32 = 730;
/// The longest term a ONETIME price may grant (ten years).
pub const MAX_TERM_DAYS: u32 = 3_653;
pub const MAX_INTERVAL_COUNT: u32 = 365;
/// 1,000,000.00 in a two-decimal currency: large enough for any membership, small enough that
/// no sum of them overflows.
pub const MAX_AMOUNT: i64 = 100_000_000;

/// A price of a paid plan. Amounts are in the currency's minor unit (cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub id: PriceId,
    pub amount: i64,
    pub currency: String,
    pub interval: Interval,
    pub interval_count: u32,
    pub trial_days: u32,
    /// How many days a ONETIME price grants the plan for; `None` grants it for good.
    pub term_days: Option<u32>,
    /// A retired price takes no new members; those who hold it keep it, renewals included.
    pub active: bool,
}

/// A price as a client asks for it, before validation.
#[derive(Debug, Clone)]
pub struct PriceDraft {
    pub amount: i64,
    pub currency: String,
    pub interval: Interval,
    pub interval_count: Option<u32>,
    pub trial_days: Option<u32>,
    pub term_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    pub description: Option<String>,
    pub plan_type: PlanType,
    pub status: PlanStatus,
    pub permissions: Vec<String>,
    pub prices: Vec<Price>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A plan as a client asks for it, before validation.
#[derive(Debug, Clone)]
pub struct PlanDraft {
    pub name: String,
    pub description: Option<String>,
    pub plan_type: PlanType,
    pub permissions: Vec<String>,
    pub prices: Vec<PriceDraft>,
}

/// A change to a plan. A price never changes once created, because members hold it: as
/// with Stripe's prices, a new amount is a new price, and the old one is retired so that it
/// takes no new members while those who hold it keep it.
#[derive(Debug, Clone, Default)]
pub struct PlanPatch {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
    pub add_prices: Vec<PriceDraft>,
    /// Retiring a retired price is harmless.
    pub retire_prices: Vec<PriceId>,
}

fn parse_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid(
            "name",
            "required",
            "name must not be empty",
        ));
    }
    check_text("name", name, PLAN_NAME_MAX)?;
    Ok(name.to_owned())
}

fn parse_description(description: Option<String>) -> Result<Option<String>, DomainError> {
    match description {
        Some(d) if !d.trim().is_empty() => {
            if d.chars().count() > PLAN_DESCRIPTION_MAX {
                return Err(DomainError::invalid(
                    "description",
                    "too_long",
                    format!("description must be at most {PLAN_DESCRIPTION_MAX} characters"),
                ));
            }
            // Line breaks are welcome in a description; NUL is not, as in every text.
            crate::fields::check_no_nul("description", &d)?;
            Ok(Some(d))
        }
        _ => Ok(None),
    }
}

/// Permissions are short names such as `view:premium`; duplicates are dropped, order kept.
pub fn parse_permissions(permissions: Vec<String>) -> Result<Vec<String>, DomainError> {
    if permissions.len() > MAX_PERMISSIONS {
        return Err(DomainError::invalid(
            "permissions",
            "too_many",
            format!("at most {MAX_PERMISSIONS} permissions"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(permissions.len());
    for (i, p) in permissions.into_iter().enumerate() {
        let valid = !p.is_empty()
            && p.len() <= PERMISSION_MAX_LEN
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-:./*".contains(&b));
        if !valid {
            return Err(DomainError::invalid(
                format!("permissions[{i}]"),
                "invalid_permission",
                format!("a permission is 1 to {PERMISSION_MAX_LEN} characters of letters, digits and _-:./*"),
            ));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// `list` names the request field the drafts came in (`prices`, `addPrices`), so that an
/// error points at the one at fault.
fn parse_price(list: &str, i: usize, draft: PriceDraft) -> Result<Price, DomainError> {
    let field = |name: &str| format!("{list}[{i}].{name}");
    if draft.amount <= 0 || draft.amount > MAX_AMOUNT {
        return Err(DomainError::invalid(
            field("amount"),
            "invalid_amount",
            format!("amount is in minor units (cents) and must be between 1 and {MAX_AMOUNT}"),
        ));
    }
    let currency = draft.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(DomainError::invalid(
            field("currency"),
            "invalid_currency",
            "currency must be a three-letter ISO 4217 code such as USD",
        ));
    }
    let interval_count = draft.interval_count.unwrap_or(1);
    if interval_count == 0 || interval_count > MAX_INTERVAL_COUNT {
        return Err(DomainError::invalid(
            field("intervalCount"),
            "invalid_interval_count",
            format!("intervalCount must be between 1 and {MAX_INTERVAL_COUNT}"),
        ));
    }
    if draft.interval == Interval::Onetime && interval_count != 1 {
        return Err(DomainError::invalid(
            field("intervalCount"),
            "invalid_interval_count",
            "a ONETIME price has an intervalCount of 1",
        ));
    }
    let trial_days = draft.trial_days.unwrap_or(0);
    if trial_days > MAX_TRIAL_DAYS {
        return Err(DomainError::invalid(
            field("trialDays"),
            "invalid_trial_days",
            format!("trialDays must be at most {MAX_TRIAL_DAYS}"),
        ));
    }
    if draft.interval == Interval::Onetime && trial_days > 0 {
        return Err(DomainError::invalid(
            field("trialDays"),
            "invalid_trial_days",
            "a ONETIME price has no trial",
        ));
    }
    if let Some(term) = draft.term_days {
        if draft.interval != Interval::Onetime {
            return Err(DomainError::invalid(
                field("termDays"),
                "invalid_term_days",
                "only a ONETIME price has a term: a recurring one runs until it is canceled",
            ));
        }
        if term == 0 || term > MAX_TERM_DAYS {
            return Err(DomainError::invalid(
                field("termDays"),
                "invalid_term_days",
                format!("termDays must be between 1 and {MAX_TERM_DAYS}"),
            ));
        }
    }
    Ok(Price {
        id: PriceId::generate(),
        amount: draft.amount,
        currency,
        interval: draft.interval,
        interval_count,
        trial_days,
        term_days: draft.term_days,
        active: true,
    })
}

impl Plan {
    pub fn create(draft: PlanDraft, now: Timestamp) -> Result<Plan, DomainError> {
        let name = parse_name(&draft.name)?;
        let description = parse_description(draft.description)?;
        let permissions = parse_permissions(draft.permissions)?;
        match draft.plan_type {
            PlanType::Free if !draft.prices.is_empty() => {
                return Err(DomainError::invalid(
                    "prices",
                    "free_plan_prices",
                    "a FREE plan has no prices",
                ))
            }
            PlanType::Paid if draft.prices.is_empty() => {
                return Err(DomainError::invalid(
                    "prices",
                    "paid_plan_needs_price",
                    "a PAID plan needs at least one price",
                ))
            }
            _ => {}
        }
        if draft.prices.len() > MAX_PRICES {
            return Err(DomainError::invalid(
                "prices",
                "too_many",
                format!("a plan has at most {MAX_PRICES} prices"),
            ));
        }
        let prices = draft
            .prices
            .into_iter()
            .enumerate()
            .map(|(i, p)| parse_price("prices", i, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            id: PlanId::generate(),
            name,
            description,
            plan_type: draft.plan_type,
            status: PlanStatus::Active,
            permissions,
            prices,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies a patch; `None` when nothing changed.
    pub fn patch(&self, patch: PlanPatch, now: Timestamp) -> Result<Option<Plan>, DomainError> {
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = parse_name(&name)?;
        }
        if let Some(description) = patch.description {
            next.description = parse_description(description)?;
        }
        if let Some(permissions) = patch.permissions {
            next.permissions = parse_permissions(permissions)?;
        }
        next.change_prices(patch.add_prices, &patch.retire_prices)?;
        if next == *self {
            return Ok(None);
        }
        next.updated_at = now;
        Ok(Some(next))
    }

    /// Archiving twice is harmless: `None` when the plan already was archived.
    pub fn archive(&self, now: Timestamp) -> Option<Plan> {
        (self.status != PlanStatus::Archived).then(|| Plan {
            status: PlanStatus::Archived,
            updated_at: now,
            ..self.clone()
        })
    }

    pub fn price(&self, id: &PriceId) -> Option<&Price> {
        self.prices.iter().find(|p| &p.id == id)
    }

    /// The prices a new member may choose.
    pub fn active_prices(&self) -> impl Iterator<Item = &Price> {
        self.prices.iter().filter(|p| p.active)
    }

    fn change_prices(
        &mut self,
        add: Vec<PriceDraft>,
        retire: &[PriceId],
    ) -> Result<(), DomainError> {
        if self.plan_type == PlanType::Free && !add.is_empty() {
            return Err(DomainError::invalid(
                "addPrices",
                "free_plan_prices",
                "a FREE plan has no prices",
            ));
        }
        // Retired prices count: members still hold them, so they stay on the plan.
        if self.prices.len() + add.len() > MAX_PRICES {
            return Err(DomainError::invalid(
                "addPrices",
                "too_many",
                format!("a plan has at most {MAX_PRICES} prices, retired ones included"),
            ));
        }
        for (i, id) in retire.iter().enumerate() {
            let price = self
                .prices
                .iter_mut()
                .find(|p| &p.id == id)
                .ok_or_else(|| {
                    DomainError::invalid(
                        format!("retirePrices[{i}]"),
                        "unknown_price",
                        format!("plan {} has no price {id}", self.id),
                    )
                })?;
            price.active = false;
        }
        for (i, draft) in add.into_iter().enumerate() {
            self.prices.push(parse_price("addPrices", i, draft)?);
        }
        if self.plan_type == PlanType::Paid && self.active_prices().next().is_none() {
            return Err(DomainError::invalid(
                "retirePrices",
                "paid_plan_needs_price",
                "a PAID plan keeps at least one active price: add one, or archive the plan",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
    }

    fn paid(prices: Vec<PriceDraft>) -> PlanDraft {
        PlanDraft {
            name: "Gold".into(),
            description: None,
            plan_type: PlanType::Paid,
            permissions: vec!["view:gold".into(), "view:gold".into()],
            prices,
        }
    }

    fn monthly(amount: i64) -> PriceDraft {
        PriceDraft {
            amount,
            currency: "usd".into(),
            interval: Interval::Month,
            interval_count: None,
            trial_days: None,
            term_days: None,
        }
    }

    #[test]
    fn creates_a_paid_plan_with_normalised_fields() {
        let plan = Plan::create(paid(vec![monthly(999)]), now()).unwrap();
        assert_eq!(plan.permissions, vec!["view:gold"]);
        assert_eq!(plan.prices[0].currency, "USD");
        assert_eq!(plan.prices[0].interval_count, 1);
        assert_eq!(plan.status, PlanStatus::Active);
    }

    #[test]
    fn names_the_bad_field() {
        let err = Plan::create(paid(vec![monthly(999), monthly(0)]), now()).unwrap_err();
        assert!(
            matches!(err, DomainError::Invalid { ref field, .. } if field == "prices[1].amount")
        );
        assert!(Plan::create(paid(vec![]), now()).is_err());
        let mut free = paid(vec![monthly(1)]);
        free.plan_type = PlanType::Free;
        assert!(Plan::create(free, now()).is_err());
    }

    #[test]
    fn patch_reports_no_change() {
        let plan = Plan::create(paid(vec![monthly(999)]), now()).unwrap();
        assert_eq!(
            plan.patch(
                PlanPatch {
                    name: Some(" Gold ".into()),
                    ..Default::default()
                },
                now()
            )
            .unwrap(),
            None
        );
        assert!(plan.archive(now()).unwrap().archive(now()).is_none());
    }

    fn field_of(err: DomainError) -> String {
        match err {
            DomainError::Invalid { field, .. } => field.into_owned(),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn a_new_price_is_added_and_the_old_one_retired() {
        let plan = Plan::create(paid(vec![monthly(999)]), now()).unwrap();
        let old = plan.prices[0].id.clone();
        let later = Timestamp::parse("2026-02-01T00:00:00Z").unwrap();
        let next = plan
            .patch(
                PlanPatch {
                    add_prices: vec![monthly(1299)],
                    retire_prices: vec![old.clone()],
                    ..Default::default()
                },
                later,
            )
            .unwrap()
            .unwrap();
        assert_eq!(next.prices.len(), 2);
        assert!(!next.price(&old).unwrap().active);
        assert_eq!(
            next.prices[0].amount, 999,
            "a retired price keeps its terms"
        );
        let added: Vec<_> = next.active_prices().collect();
        assert_eq!(added.len(), 1);
        assert_eq!((added[0].amount, added[0].currency.as_str()), (1299, "USD"));
        assert_eq!(next.updated_at, later);

        let again = PlanPatch {
            retire_prices: vec![old],
            ..Default::default()
        };
        assert_eq!(next.patch(again, later).unwrap(), None);
    }

    #[test]
    fn price_changes_that_would_break_the_plan_are_refused() {
        let plan = Plan::create(paid(vec![monthly(999)]), now()).unwrap();
        let only = plan.prices[0].id.clone();
        let retire_only = PlanPatch {
            retire_prices: vec![only.clone()],
            ..Default::default()
        };
        assert_eq!(
            field_of(plan.patch(retire_only, now()).unwrap_err()),
            "retirePrices"
        );

        let bad_new = PlanPatch {
            add_prices: vec![monthly(500), monthly(-1)],
            ..Default::default()
        };
        assert_eq!(
            field_of(plan.patch(bad_new, now()).unwrap_err()),
            "addPrices[1].amount"
        );

        let unknown = PlanPatch {
            retire_prices: vec![only, PriceId::generate()],
            ..Default::default()
        };
        assert_eq!(
            field_of(plan.patch(unknown, now()).unwrap_err()),
            "retirePrices[1]"
        );

        let too_many = PlanPatch {
            add_prices: (0..MAX_PRICES).map(|i| monthly(100 + i as i64)).collect(),
            ..Default::default()
        };
        assert_eq!(
            field_of(plan.patch(too_many, now()).unwrap_err()),
            "addPrices"
        );

        let mut free = paid(vec![]);
        free.plan_type = PlanType::Free;
        let free = Plan::create(free, now()).unwrap();
        let priced = PlanPatch {
            add_prices: vec![monthly(100)],
            ..Default::default()
        };
        assert_eq!(
            field_of(free.patch(priced, now()).unwrap_err()),
            "addPrices"
        );
    }
}
