//! The committed schemas are the ones the code generates: a change to an event type that is
//! not regenerated (and so not reviewed as a contract change) fails here.

use std::collections::BTreeSet;
use std::fs;

#[test]
fn the_committed_schemas_and_asyncapi_document_are_the_generated_ones() {
    let dir = contracts::schemas_dir();
    let generated = contracts::generated_files();
    let mut stale = Vec::new();
    for (name, content) in &generated {
        match fs::read_to_string(dir.join(name)) {
            Ok(committed) if committed == *content => {}
            Ok(_) => stale.push(format!("schemas/{name} differs from the code and template.yaml")),
            Err(_) => stale.push(format!("schemas/{name} is missing")),
        }
    }
    let expected: BTreeSet<&str> = generated.iter().map(|(n, _)| n.as_str()).collect();
    for entry in fs::read_dir(dir.join("events")).expect("schemas/events/ exists") {
        let name = format!("events/{}", entry.unwrap().file_name().into_string().unwrap());
        if !expected.contains(name.as_str()) {
            stale.push(format!("schemas/{name} is no longer generated"));
        }
    }
    assert!(stale.is_empty(), "{}\nregenerate with: {}", stale.join("\n"), contracts::REGENERATE);
}

#[test]
fn every_event_type_and_version_has_one_schema_whose_type_and_version_are_its_own() {
    let catalogue = contracts::catalogue();
    let keys: BTreeSet<(&str, u32)> = catalogue.iter().map(|c| (c.detail_type, c.version)).collect();
    assert_eq!(keys.len(), catalogue.len(), "one contract per (type, version)");
    for c in &catalogue {
        assert_eq!(c.schema["properties"]["type"]["const"], c.detail_type);
        assert_eq!(c.schema["properties"]["version"]["const"], c.version);
        assert!(jsonschema::draft7::meta::is_valid(&c.schema), "{} is a valid draft-07 schema", c.file_name());
    }
}

#[test]
fn a_detail_of_another_type_or_missing_a_required_field_is_refused() {
    let placed = contracts::contract("shop.checkout", "order.placed", 1).unwrap();
    let mut detail = serde_json::json!({
        "eventId": "01HZX3G8A4C6E8G0J2M4P6R8T0", "type": "order.placed", "version": 1,
        "occurredAt": "2026-01-01T12:00:00.123Z", "correlationId": "c", "orderId": "01HZX3G7Q2V1N8K4T6R9M5B0CD",
        "data": {"customerId": "c", "lines": [{"sku": "MUG", "quantity": 2, "unitPrice": 1250}], "total": 2500, "currency": "EUR"}
    });
    assert_eq!(placed.validate(&detail), Ok(()));
    detail["data"]["currency"] = "XYZ".into();
    assert!(placed.validate(&detail).is_err(), "an unknown currency");
    detail["data"]["currency"] = "EUR".into();
    detail["type"] = "order.cancelled".into();
    assert!(placed.validate(&detail).is_err(), "another type");
    detail["type"] = "order.placed".into();
    detail["data"].as_object_mut().unwrap().remove("total");
    assert!(placed.validate(&detail).is_err(), "no total");
}
