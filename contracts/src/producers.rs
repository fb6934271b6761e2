//! Who sends each event: every function with `events:PutEvents` in template.yaml, and what it
//! publishes. The publishing functions declare that beside their code (`PUBLISHES`), and their
//! own tests check the declaration against what they publish; the outbox relay re-sends
//! whatever the others wrote to the outbox, in the version it was written in (so after a
//! version is superseded, the relay still sends the old one for a while).
//!
//! `tests/asyncapi.rs` checks this list against the template's `events:PutEvents` grants, so a
//! new publishing function cannot be left out of the document.

use crate::Contract;
use shared::events::Published;

/// The outbox relay's logical ID in template.yaml.
pub const RELAY: &str = "OutboxRelayFunction";

/// A function that publishes, by its logical ID in template.yaml, and what it publishes.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub function: &'static str,
    pub publishes: &'static [Published],
    /// Whether it writes each event to the outbox in the same transaction as the change it
    /// announces, so that the relay sends it if the function could not.
    pub via_outbox: bool,
}

/// The functions that publish events of their own making.
pub fn producers() -> [Producer; 4] {
    [
        Producer { function: "CheckoutFunction", publishes: checkout::Checkout::PUBLISHES, via_outbox: true },
        Producer { function: "FulfilmentFunction", publishes: checkout::Fulfilment::PUBLISHES, via_outbox: true },
        Producer { function: "SweeperFunction", publishes: sweeper::Sweeper::PUBLISHES, via_outbox: true },
        // Published before the stock change commits, retried with it: no outbox needed.
        Producer { function: "InventoryFunction", publishes: inventory::PUBLISHES, via_outbox: false },
    ]
}

/// Whether `producer` publishes `contract`'s type and version.
pub fn publishes(producer: &Producer, contract: &Contract) -> bool {
    producer.publishes.contains(&(contract.source, contract.detail_type, contract.version))
}

/// Whether the relay may send `contract`: any version, current or earlier, of a type that a
/// function writing to the outbox publishes.
pub fn relayed(contract: &Contract) -> bool {
    producers().iter().filter(|p| p.via_outbox).any(|p| {
        p.publishes.iter().any(|&(source, detail_type, version)| {
            (source, detail_type) == (contract.source, contract.detail_type) && contract.version <= version
        })
    })
}
