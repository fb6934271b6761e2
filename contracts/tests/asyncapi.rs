//! The AsyncAPI document agrees with the wiring: every event a rule routes is in the catalogue,
//! every consumer's subscriptions are those of its rule, and every reference resolves.

use contracts::asyncapi::{document, template_rules};
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
fn each_consumer_receives_what_its_rule_routes_and_every_event_is_sent_by_its_source() {
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
    let sends = operations.values().filter(|op| op["action"] == "send").count();
    assert_eq!(sends, contracts::catalogue().len(), "one send per event type");
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
