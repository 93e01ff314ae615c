//! The payment provider behind a small interface, and the sandbox gateway that stands in for
//! one: it needs no network, and behaves by the well-known public test card numbers.

use memberd_core::card::Card;
use memberd_core::lifecycle::Charge;
use memberd_core::Environment;

/// Why a gateway would not take a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

pub trait PaymentGateway: Send + Sync {
    /// The name kept with each payment method, to find its gateway again.
    fn name(&self) -> &'static str;
    /// Takes a card and returns the gateway's reference to it.
    fn attach(&self, card: &Card) -> Result<String, Refusal>;
    /// Charges a card the gateway holds.
    fn charge(&self, reference: &str, amount: i64, currency: &str) -> Charge;
    /// Gives back a charge that bought nothing (the connection it paid for could not be made).
    fn refund(&self, reference: &str, amount: i64, currency: &str) -> Result<(), Refusal>;
}

/// The sandbox gateway:
/// - `4000000000000002` is declined when attached;
/// - `4000000000000341` attaches, but every charge fails;
/// - `4000002500003155` attaches, and every charge needs the customer's action;
/// - any other valid number (such as `4242424242424242`) always succeeds.
pub struct SandboxGateway;

const SUCCEEDS: &str = "sandbox_succeeds";
const FAILS: &str = "sandbox_charge_fails";
const REQUIRES_ACTION: &str = "sandbox_requires_action";

impl PaymentGateway for SandboxGateway {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn attach(&self, card: &Card) -> Result<String, Refusal> {
        match card.number.digits() {
            "4000000000000002" => Err(Refusal {
                code: "card_declined",
                message: "the card was declined".into(),
            }),
            "4000000000000341" => Ok(FAILS.into()),
            "4000002500003155" => Ok(REQUIRES_ACTION.into()),
            _ => Ok(SUCCEEDS.into()),
        }
    }

    fn charge(&self, reference: &str, _amount: i64, _currency: &str) -> Charge {
        match reference {
            SUCCEEDS => Charge::Succeeded,
            REQUIRES_ACTION => Charge::Failed {
                reason: "authentication_required".into(),
            },
            _ => Charge::Failed {
                reason: "card_declined".into(),
            },
        }
    }

    fn refund(&self, _reference: &str, _amount: i64, _currency: &str) -> Result<(), Refusal> {
        Ok(())
    }
}

pub mod connect;

/// The gateway of an environment: the sandbox one in sandbox; none in live until a real
/// provider is configured, so live never takes a card it cannot charge.
pub fn gateway_for(env: Environment) -> Option<&'static dyn PaymentGateway> {
    match env {
        Environment::Sandbox => Some(&SandboxGateway),
        Environment::Live => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memberd_core::Timestamp;

    fn card(number: &str) -> Card {
        Card::parse(
            number,
            12,
            2040,
            "123",
            Timestamp::parse("2026-01-01").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_sandbox_follows_the_test_cards() {
        let g = SandboxGateway;
        let ok = g.attach(&card("4242424242424242")).unwrap();
        assert_eq!(g.charge(&ok, 100, "USD"), Charge::Succeeded);
        assert_eq!(
            g.attach(&card("4000000000000002")).unwrap_err().code,
            "card_declined"
        );
        let fails = g.attach(&card("4000000000000341")).unwrap();
        assert!(matches!(
            g.charge(&fails, 100, "USD"),
            Charge::Failed { .. }
        ));
        let action = g.attach(&card("4000002500003155")).unwrap();
        assert_eq!(
            g.charge(&action, 100, "USD"),
            Charge::Failed {
                reason: "authentication_required".into()
            }
        );
        assert!(gateway_for(Environment::Live).is_none());
    }
}
