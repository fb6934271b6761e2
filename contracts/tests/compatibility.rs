//! Each event version's schema is backward compatible with its last committed form
//! (`git show HEAD:schemas/events/<type>.v<N>.json`): a breaking change must be a new version.
//! A schema not yet committed (a new event or version) has nothing to be compatible with.
//! `CONTRACTS_BASE` names another baseline (CI on a branch: `origin/main`, since there HEAD
//! already holds the change).

use std::fs;
use std::process::Command;

#[test]
fn every_committed_event_version_is_changed_only_compatibly() {
    let dir = contracts::schemas_dir().join("events");
    let root = contracts::schemas_dir().join("..");
    let mut breaking = Vec::new();
    let mut compared = 0;
    let base = std::env::var("CONTRACTS_BASE").unwrap_or_else(|_| "HEAD".to_owned());
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Ok(committed) =
            Command::new("git").args(["show", &format!("{base}:schemas/events/{name}")]).current_dir(&root).output()
        else {
            println!("no git: compatibility not checked");
            return;
        };
        if !committed.status.success() {
            println!("schemas/events/{name}: not committed yet, nothing to compare");
            continue;
        }
        let old: serde_json::Value = serde_json::from_slice(&committed.stdout).unwrap();
        let new: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join(&name)).unwrap()).unwrap();
        compared += 1;
        for change in contracts::compat::breaking_changes(&old, &new) {
            breaking.push(format!("schemas/events/{name}: {change}"));
        }
    }
    println!("{compared} schemas compared with {base}");
    assert!(
        breaking.is_empty(),
        "backward-incompatible changes to published versions (publish a new version instead, \
         e.g. OrderPlacedV2 as order.placed.v2.json beside v1):\n{}",
        breaking.join("\n")
    );
}

#[test]
fn the_generated_schemas_are_compatible_with_themselves_and_a_removed_field_is_caught() {
    for contract in contracts::catalogue() {
        assert_eq!(contracts::compat::breaking_changes(&contract.schema, &contract.schema), Vec::<String>::new());
    }
    let placed = contracts::contract("shop.checkout", "order.placed", 1).unwrap().schema;
    let mut without_currency = placed.clone();
    without_currency["properties"]["data"]["properties"].as_object_mut().unwrap().remove("currency");
    assert_eq!(contracts::compat::breaking_changes(&placed, &without_currency), ["/data/currency: removed"]);
}
