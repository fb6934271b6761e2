//! Every consumer's EventBridge rules, as the template provisions them in the emulator, route
//! exactly the events the consumer accepts: none it would lose (an accepted event no rule
//! routes) and none it would dead-letter as poison (a routed event it does not accept).
//! Checked for every consumer here, the one crate that knows them all.
//!
//! A rule can also filter on content (loyalty's total above zero), and a new version of an event
//! can move the field it filters on: then the rule drops every event of the new version
//! silently. So an event of every version each consumer reads goes through its rules too.

use serde_json::Value;
use shared::consumer::Consumer;
use shared::events::{Accepts, EventData};
use shared::testing::{as_v1, order_cancelled, order_delivered, order_placed, order_shipped, rules_match};

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

/// `(source, detail-type, version)` and the EventBridge event of a typical event of each type
/// and version a consumer may read.
fn typical_events(customer: &str, unit_price: i64) -> Vec<((&'static str, &'static str, u32), Value)> {
    fn entry<D: EventData>(envelope: &shared::events::Envelope<D>) -> ((&'static str, &'static str, u32), Value) {
        let body = shared::testing::eventbridge_body(envelope);
        ((D::SOURCE, D::TYPE, envelope.version), serde_json::from_str(&body).unwrap())
    }
    let placed = order_placed(customer, &[("MUG", 2, unit_price), ("TEE", 1, unit_price)]);
    vec![
        entry(&placed),
        entry(&as_v1(&placed)),
        entry(&order_cancelled(&placed)),
        entry(&order_shipped(&placed)),
        entry(&order_delivered(&placed)),
    ]
}

/// The typical events `C` reads that none of `function`'s rules lets through.
fn dropped<C: Consumer>(function: &str) -> Vec<String> {
    let reads = |(source, detail_type, version): (&str, &str, u32)| {
        <C::Event as Accepts>::ACCEPTED
            .iter()
            .any(|(s, t, versions)| (*s, *t) == (source, detail_type) && versions.contains(&version))
    };
    let rules = rules_of(function);
    typical_events("cust-ada", 1250)
        .into_iter()
        .filter(|(key, _)| reads(*key))
        .filter(|(_, event)| !rules.iter().any(|rule| ops::pattern::matches(rule, event).unwrap()))
        .map(|((_, detail_type, version), _)| format!("{function} reads {detail_type} v{version}, its rules drop it"))
        .collect()
}

#[test]
fn an_event_of_every_version_each_consumer_reads_passes_its_rules_content_filters() {
    let dropped: Vec<String> = [
        dropped::<Loyalty>("LoyaltyFunction"),
        dropped::<Inventory>("InventoryFunction"),
        dropped::<Email>("EmailFunction"),
        dropped::<Analytics>("AnalyticsFunction"),
        dropped::<Recommendations>("RecommendationsFunction"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(dropped.is_empty(), "{}", dropped.join("\n"));
}

#[test]
fn loyalty_s_rule_keeps_a_free_order_out_in_every_version_it_reads() {
    let rules = rules_of("LoyaltyFunction");
    let free = typical_events("cust-ada", 0);
    let let_through: Vec<String> = free
        .iter()
        .filter(|((_, detail_type, _), _)| ["order.placed", "order.cancelled"].contains(detail_type))
        .filter(|(_, event)| rules.iter().any(|rule| ops::pattern::matches(rule, event).unwrap()))
        .map(|((_, detail_type, version), _)| format!("{detail_type} v{version}"))
        .collect();
    assert!(let_through.is_empty(), "free orders reach loyalty: {let_through:?}");
}
