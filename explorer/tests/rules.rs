//! Every consumer's EventBridge rules, as the template provisions them in the emulator, route
//! exactly the events the consumer accepts: none it would lose (an accepted event no rule
//! routes) and none it would dead-letter as poison (a routed event it does not accept).
//! Checked for every consumer here, the one crate that knows them all.

use shared::consumer::Consumer;
use shared::events::Accepts;
use shared::testing::rules_match;

fn rules_of(function: &str) -> &'static [serde_json::Value] {
    &testkit::shared().stack.function(function).rules
}

fn check<C: Consumer>(function: &str) -> Option<String> {
    let accepted = <C::Event as Accepts>::ACCEPTED;
    rules_match::<C::Event>(rules_of(function)).err().map(|why| format!("{function} (accepts {accepted:?}): {why}"))
}

type Loyalty = loyalty::Loyalty<loyalty::memory::MemoryLedger>;
type Inventory = inventory::Inventory<inventory::memory::MemoryStock, shared::adapters::memory::MemoryBus>;
type Email = email::Email<
    email::memory::MemoryCustomers,
    email::memory::MemoryMailer,
    shared::adapters::memory_records::MemoryOrderRecords,
>;
type Analytics = analytics::Analytics<analytics::memory::MemoryCounters>;
type Recommendations = recommendations::Recommendations<recommendations::memory::MemoryCoPurchases>;

#[test]
fn every_consumers_rules_route_exactly_the_events_it_accepts() {
    let mismatches: Vec<String> = [
        check::<Loyalty>("LoyaltyFunction"),
        check::<Inventory>("InventoryFunction"),
        check::<Email>("EmailFunction"),
        check::<Analytics>("AnalyticsFunction"),
        check::<Recommendations>("RecommendationsFunction"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
