//! The parsers accept every instance the schemas allow: instances generated from each committed
//! schema (optional fields present or absent, any value of each type and format, an unknown
//! field beside them) parse as the event they claim to be. A consumer parses through the same
//! `Envelope::from_detail` with its event set, so a schema promising more than the Rust types
//! accept, or a parser refusing what the schema allows, fails here.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use shared::events::{
    Accepts, Envelope, LowStockV1, OrderCancelledV1, OrderDeliveredV1, OrderPlacedV2, OrderShippedV1, PaymentRefundedV1,
};

fn instance(schema: &Value) -> BoxedStrategy<Value> {
    if let Some(value) = schema.get("const") {
        return Just(value.clone()).boxed();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return proptest::sample::select(values.clone()).boxed();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let required: Vec<&str> =
                schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let fields: Vec<BoxedStrategy<(String, Option<Value>)>> = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, field)| {
                    let name = name.clone();
                    if required.contains(&name.as_str()) {
                        instance(field).prop_map(move |v| (name.clone(), Some(v))).boxed()
                    } else {
                        proptest::option::of(instance(field)).prop_map(move |v| (name.clone(), v)).boxed()
                    }
                })
                .collect();
            (fields, proptest::option::of("[a-z]{1,8}"))
                .prop_map(|(fields, extra)| {
                    let mut object: Map<String, Value> =
                        fields.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
                    if let Some(extra) = extra {
                        object.entry(format!("x{extra}")).or_insert(json!("a field added later"));
                    }
                    Value::Object(object)
                })
                .boxed()
        }
        Some("array") => proptest::collection::vec(instance(&schema["items"]), 0..4).prop_map(Value::from).boxed(),
        Some("integer") => match schema["format"].as_str() {
            Some("uint32") => any::<u32>().prop_map(Value::from).boxed(),
            _ => any::<i64>().prop_map(Value::from).boxed(),
        },
        Some("string") => match (schema["pattern"].as_str(), schema["format"].as_str()) {
            (Some(pattern), _) => proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$'))
                .expect("a pattern proptest can generate from")
                .prop_map(Value::from)
                .boxed(),
            (None, Some("date-time")) => (0i64..4_102_444_800_000)
                .prop_map(|ms| Value::from(Utc.timestamp_millis_opt(ms).unwrap().to_rfc3339()))
                .boxed(),
            _ => "\\PC{0,16}".prop_map(Value::from).boxed(),
        },
        other => panic!("no generator for type {other:?} in {schema}"),
    }
}

fn parses<D: Accepts>(detail: &Value) -> Result<(), String> {
    Envelope::<D>::from_detail(detail).map(|_| ()).map_err(|e| e.to_string())
}

/// The parser consumers read each event type and version with, by its schema's file name: v1
/// of `order.placed` through v2's reader, which upcasts it.
fn parser(file: &str) -> fn(&Value) -> Result<(), String> {
    match file {
        "order.placed.v1.json" | "order.placed.v2.json" => parses::<OrderPlacedV2>,
        "order.cancelled.v1.json" => parses::<OrderCancelledV1>,
        "payment.refunded.v1.json" => parses::<PaymentRefundedV1>,
        "order.shipped.v1.json" => parses::<OrderShippedV1>,
        "order.delivered.v1.json" => parses::<OrderDeliveredV1>,
        "inventory.low-stock.v1.json" => parses::<LowStockV1>,
        other => panic!("no parser for {other}: add the event type here"),
    }
}

#[test]
fn every_instance_a_schema_allows_parses_as_its_event() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 128, ..ProptestConfig::default() });
    for contract in contracts::catalogue() {
        let parse = parser(&contract.file_name());
        let schema = contract.schema.clone();
        runner
            .run(&instance(&schema), |detail| {
                prop_assert!(contract.validate(&detail).is_ok(), "a generated instance is valid: {detail}");
                prop_assert_eq!(parse(&detail), Ok(()), "{}", detail);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", contract.file_name()));
    }
}
