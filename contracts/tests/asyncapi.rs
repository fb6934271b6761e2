//! The AsyncAPI document agrees with the wiring: every event a rule routes is in the catalogue,
//! every consumer's subscriptions are those of its rule, and every reference resolves.

use contracts::asyncapi::{document, template_publishers, template_rules};
use contracts::producers::{producers, RELAY};
use serde_json::Value;
use shared::events::routed_pairs;
use std::collections::BTreeSet;

fn refs<'a>(node: &'a Value, found: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                found.push(r);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_event_a_rule_routes_has_a_contract() {
    let published: BTreeSet<(String, String)> =
        contracts::catalogue().iter().map(|c| (c.source.to_owned(), c.detail_type.to_owned())).collect();
    let rules = template_rules();
    assert!(rules.len() >= 5, "the consumers' rules: {rules:?}");
    for rule in &rules {
        let routed = routed_pairs(&rule.pattern).unwrap_or_else(|e| panic!("{}: {e}", rule.name));
        assert!(!routed.is_empty(), "{} routes no (source, detail-type)", rule.name);
        let unknown: Vec<_> = routed.difference(&published).collect();
        assert!(unknown.is_empty(), "{} routes events with no contract: {unknown:?}", rule.name);
        assert!(!rule.functions.is_empty(), "{} feeds no function", rule.name);
    }
}

#[test]
fn each_consumer_receives_what_its_rule_routes() {
    let doc = document(&template_rules());
    let operations = doc["operations"].as_object().unwrap();
    let receive = |rule: &str| -> BTreeSet<&str> {
        operations
            .values()
            .filter(|op| op["action"] == "receive" && op["x-eventbridge-rule"]["name"] == rule)
            .map(|op| op["channel"]["$ref"].as_str().unwrap().trim_start_matches("#/channels/"))
            .collect()
    };
    assert_eq!(receive("EmailRule"), BTreeSet::from(["order.placed", "order.cancelled", "order.shipped"]));
    assert_eq!(receive("AnalyticsRule"), BTreeSet::from(["order.placed"]));
}

/// The messages each function sends on a channel, as `<type>.v<N>` keys.
fn sent<'a>(doc: &'a Value, function: &str, detail_type: &str) -> Vec<&'a str> {
    doc["operations"][format!("{function}.send.{detail_type}")]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["$ref"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect()
}

#[test]
fn each_event_is_sent_by_the_functions_that_publish_it_and_a_superseded_version_only_by_the_relay() {
    let doc = document(&template_rules());
    assert_eq!(sent(&doc, "CheckoutFunction", "order.placed"), ["order.placed.v2"]);
    assert_eq!(sent(&doc, "SweeperFunction", "order.placed"), ["order.placed.v2"]);
    assert_eq!(sent(&doc, RELAY, "order.placed"), ["order.placed.v1", "order.placed.v2"]);
    assert_eq!(sent(&doc, "FulfilmentFunction", "order.shipped"), ["order.shipped.v1"]);
    assert_eq!(sent(&doc, "InventoryFunction", "inventory.low-stock"), ["inventory.low-stock.v1"]);
    assert!(sent(&doc, RELAY, "inventory.low-stock").is_empty(), "inventory publishes without an outbox");
    assert!(sent(&doc, "CheckoutFunction", "order.shipped").is_empty(), "staff ship, through FulfilmentFunction");
    let v1 = &doc["components"]["messages"]["order.placed.v1"]["description"];
    assert!(v1.as_str().unwrap().starts_with("Superseded by v2"), "{v1}");
}

#[test]
fn every_event_of_the_catalogue_has_a_sender() {
    let doc = document(&template_rules());
    for contract in contracts::catalogue() {
        let key = format!("{}.v{}", contract.detail_type, contract.version);
        let senders: Vec<&String> = doc["operations"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, op)| op["action"] == "send")
            .filter(|(_, op)| {
                op["messages"].as_array().unwrap().iter().any(|m| m["$ref"].as_str().unwrap().ends_with(&key))
            })
            .map(|(name, _)| name)
            .collect();
        assert!(!senders.is_empty(), "nobody sends {key}");
    }
}

/// A function granted `events:PutEvents` is a producer the document names, and a producer the
/// document names may put events: a new publishing function cannot be left out.
#[test]
fn the_producers_are_exactly_the_functions_the_template_lets_publish() {
    let named: BTreeSet<String> = producers().iter().map(|p| p.function.to_owned()).chain([RELAY.to_owned()]).collect();
    let granted: BTreeSet<String> = template_publishers().into_iter().collect();
    assert_eq!(named, granted);
}

#[test]
fn every_reference_in_the_document_resolves() {
    let doc = document(&template_rules());
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in found {
        match r.strip_prefix('#') {
            Some(pointer) => {
                let pointer = pointer.replace("~1", "/");
                assert!(doc.pointer(&pointer).is_some(), "{r} does not resolve");
            }
            None => assert!(contracts::schemas_dir().join(r).is_file(), "{r} is not a committed schema"),
        }
    }
    assert_eq!(doc["asyncapi"], "3.0.0");
}
