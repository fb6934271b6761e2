//! Every sample in `events/` that carries one of our events (an EventBridge event in an SQS
//! body, or an EventBridge event itself) validates against its contract: the samples the
//! functions are invoked with locally are events the code could have published.

use serde_json::Value;
use std::fs;
use std::path::PathBuf;

/// The sample of a poisoned queue: besides a valid event it holds an event nobody publishes
/// and a body that is not JSON, which the contracts must refuse as the consumer does.
const POISON: &str = "consumer-poison.json";

/// The EventBridge events of ours in a sample, as (record, event).
fn bus_events(sample: &Value) -> Vec<(usize, Result<Value, String>)> {
    let ours = |event: &Value| event["source"].as_str().is_some_and(|s| s.starts_with("shop."));
    if ours(sample) {
        return vec![(0, Ok(sample.clone()))];
    }
    let records = sample["Records"].as_array().cloned().unwrap_or_default();
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| r["eventSource"] == "aws:sqs")
        .filter_map(|(i, r)| match serde_json::from_str::<Value>(r["body"].as_str().unwrap_or_default()) {
            Ok(event) if ours(&event) => Some((i, Ok(event))),
            Ok(_) => None,
            Err(e) => Some((i, Err(format!("not JSON: {e}")))),
        })
        .collect()
}

fn check(event: &Result<Value, String>) -> Result<(), String> {
    let event = event.as_ref().map_err(Clone::clone)?;
    let source = event["source"].as_str().unwrap_or_default();
    let detail_type = event["detail-type"].as_str().unwrap_or_default();
    contracts::validate_event(source, detail_type, &event["detail"])
}

#[test]
fn every_sample_event_of_ours_validates_against_its_schema() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name == POISON || path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let sample: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for (record, event) in bus_events(&sample) {
            checked += 1;
            if let Err(e) = check(&event) {
                failures.push(format!("events/{name} record {record}: {e}"));
            }
        }
    }
    println!("{checked} sample events validated");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 9, "only {checked} sample events found: are the samples still SQS batches?");
}

#[test]
fn the_poison_sample_holds_a_valid_event_and_two_the_contracts_refuse() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(POISON);
    let sample: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let verdicts: Vec<bool> = bus_events(&sample).iter().map(|(_, e)| check(e).is_ok()).collect();
    assert_eq!(verdicts, [true, false, false]);
}
