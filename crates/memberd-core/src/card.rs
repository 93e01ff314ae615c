//! Payment cards as a client gives them. Only what is safe to keep leaves this module: the
//! brand, the last four digits and the expiry. The full number never reaches the store.

use crate::{DomainError, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Unknown,
}

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Unknown => "unknown",
        }
    }

    fn of(digits: &str) -> Brand {
        let prefix = |n: usize| {
            digits
                .get(..n)
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(0)
        };
        if digits.starts_with('4') {
            Brand::Visa
        } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
            Brand::Mastercard
        } else if prefix(2) == 34 || prefix(2) == 37 {
            Brand::Amex
        } else if digits.starts_with("6011") || digits.starts_with("65") {
            Brand::Discover
        } else {
            Brand::Unknown
        }
    }
}

/// A card number that passed its checks, held only long enough to hand to a gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber(…{})", self.last4())
    }
}

impl CardNumber {
    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

/// A card, checked, with what may be kept of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub number: CardNumber,
    pub brand: Brand,
    pub exp_month: u32,
    pub exp_year: i32,
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 {
                    dd - 9
                } else {
                    dd
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Card {
    /// Checks a card as a client sent it: spaces and dashes in the number are allowed; the
    /// year may have two or four digits; a card that has expired by `now` is refused.
    pub fn parse(
        number: &str,
        exp_month: u32,
        exp_year: u32,
        cvc: &str,
        now: Timestamp,
    ) -> Result<Card, DomainError> {
        let digits: String = number.chars().filter(|c| *c != ' ' && *c != '-').collect();
        if !(12..=19).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !luhn(&digits)
        {
            return Err(DomainError::invalid(
                "card.number",
                "invalid_card_number",
                "card.number is not a valid card number",
            ));
        }
        if !(1..=12).contains(&exp_month) {
            return Err(DomainError::invalid(
                "card.expMonth",
                "invalid_expiry",
                "card.expMonth must be 1 to 12",
            ));
        }
        let exp_year = if exp_year < 100 {
            2000 + exp_year as i32
        } else {
            exp_year as i32
        };
        let today = now.to_date();
        let (year, month) = (
            today[..4].parse::<i32>().unwrap_or(0),
            today[5..7].parse::<u32>().unwrap_or(0),
        );
        if exp_year > 9999 || (exp_year, exp_month) < (year, month) {
            return Err(DomainError::invalid(
                "card.expYear",
                "card_expired",
                "the card has expired",
            ));
        }
        let brand = Brand::of(&digits);
        let cvc_len = if brand == Brand::Amex { 4..=4 } else { 3..=4 };
        if !cvc_len.contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid(
                "card.cvc",
                "invalid_cvc",
                "card.cvc must be the 3 or 4 digits on the card",
            ));
        }
        Ok(Card {
            number: CardNumber(digits),
            brand,
            exp_month,
            exp_year,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-23").unwrap()
    }

    #[test]
    fn cards_are_checked_and_keep_only_what_is_safe() {
        let card = Card::parse("4242 4242 4242 4242", 12, 34, "123", now()).unwrap();
        assert_eq!(
            (card.brand, card.number.last4(), card.exp_year),
            (Brand::Visa, "4242", 2034)
        );
        assert_eq!(
            format!("{:?}", card.number),
            "CardNumber(…4242)",
            "Debug never shows the number"
        );
        assert_eq!(
            Card::parse("5555555555554444", 1, 2030, "123", now())
                .unwrap()
                .brand,
            Brand::Mastercard
        );
        assert_eq!(
            Card::parse("378282246310005", 1, 2030, "1234", now())
                .unwrap()
                .brand,
            Brand::Amex
        );
        let field = |r: Result<Card, DomainError>| match r {
            Err(DomainError::Invalid { field, .. }) => field.into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(Card::parse("4242424242424241", 1, 2030, "123", now())),
            "card.number"
        );
        assert_eq!(
            field(Card::parse("4242", 1, 2030, "123", now())),
            "card.number"
        );
        assert_eq!(
            field(Card::parse("4242424242424242", 13, 2030, "123", now())),
            "card.expMonth"
        );
        assert_eq!(
            field(Card::parse("4242424242424242", 10, 2026, "123", now())),
            "card.expYear"
        );
        assert!(
            Card::parse("4242424242424242", 11, 2026, "123", now()).is_ok(),
            "valid through its month"
        );
        assert_eq!(
            field(Card::parse("4242424242424242", 1, 2030, "12a", now())),
            "card.cvc"
        );
    }
}
