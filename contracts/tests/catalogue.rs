//! The catalogue is complete: every event type and version a function publishes (its
//! `PUBLISHES`, which its own tests check against what it publishes) and every version a
//! consumer reads (its event set's `ACCEPTED`, upcasts included) has a contract. The list in
//! `contracts::catalogue()` names Rust types, which nothing can enumerate; this is what keeps
//! it from missing one.

use contracts::producers::producers;
use shared::consumer::Consumer;
use shared::events::Accepts;
use std::collections::BTreeSet;

type Key = (String, String, u32);

fn read_by<C: Consumer>() -> Vec<Key> {
    <C::Event as Accepts>::ACCEPTED
        .iter()
        .flat_map(|(source, detail_type, versions)| {
            versions.iter().map(move |v| ((*source).to_owned(), (*detail_type).to_owned(), *v))
        })
        .collect()
}

#[test]
fn every_event_published_or_read_has_a_contract() {
    let catalogued: BTreeSet<Key> =
        contracts::catalogue().iter().map(|c| (c.source.to_owned(), c.detail_type.to_owned(), c.version)).collect();
    let published = producers()
        .iter()
        .flat_map(|p| p.publishes.iter().map(|(s, t, v)| ((*s).to_owned(), (*t).to_owned(), *v)))
        .collect::<Vec<Key>>();
    let read = [
        read_by::<loyalty::Loyalty<loyalty::memory::MemoryLedger>>(),
        read_by::<inventory::Inventory<inventory::memory::MemoryStock, shared::adapters::memory::MemoryBus>>(),
        read_by::<
            email::Email<
                email::memory::MemoryCustomers,
                email::memory::MemoryMailer,
                shared::adapters::memory_records::MemoryOrderRecords,
            >,
        >(),
        read_by::<analytics::Analytics<analytics::memory::MemoryCounters>>(),
        read_by::<recommendations::Recommendations<recommendations::memory::MemoryCoPurchases>>(),
    ]
    .concat();
    let missing: BTreeSet<&Key> = published.iter().chain(&read).filter(|k| !catalogued.contains(*k)).collect();
    assert!(missing.is_empty(), "no contract for {missing:?}: add the type to contracts::catalogue()");
    assert!(read.iter().any(|(_, t, v)| t == "order.placed" && *v == 1), "v1 is still read, upcast");
}

#[test]
fn every_contract_is_published_or_read_by_someone() {
    let published: BTreeSet<(&str, &str)> =
        producers().iter().flat_map(|p| p.publishes.iter().map(|(s, t, _)| (*s, *t))).collect();
    for contract in contracts::catalogue() {
        assert!(
            published.contains(&(contract.source, contract.detail_type)),
            "{} v{}: no function publishes this type",
            contract.detail_type,
            contract.version
        );
    }
}

#[test]
fn a_published_event_passes_only_against_a_list_that_declares_it() {
    let placed = shared::testing::order_placed("cust-ada", &[("MUG", 1, 1250)]).to_outbound();
    assert_eq!(contracts::check_published(checkout::Checkout::PUBLISHES, &placed), Ok(()));
    let refused = contracts::check_published(inventory::PUBLISHES, &placed).unwrap_err();
    assert!(refused.contains("not among the events the function declares"), "{refused}");
    let v1 = shared::testing::as_v1(&shared::testing::order_placed("cust-ada", &[("MUG", 1, 1250)]));
    assert!(contracts::check_published(checkout::Checkout::PUBLISHES, &v1.to_outbound()).is_err(), "v1 is superseded");
}
