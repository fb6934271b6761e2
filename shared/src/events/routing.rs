//! Which events an EventBridge rule routes, read from its pattern: one reading, shared by the
//! test that compares every consumer's rule with the events it accepts and by the AsyncAPI
//! document that says which consumer receives what.

use std::collections::BTreeSet;

/// The (source, detail-type) pairs an EventBridge pattern routes: the product of its `source`
/// and `detail-type` lists, for each alternative of a top-level `$or` (merged with the keys
/// beside it).
pub fn routed_pairs(pattern: &serde_json::Value) -> Result<BTreeSet<(String, String)>, String> {
    let strings = |pattern: &serde_json::Value, field: &str| -> Result<Vec<String>, String> {
        let values = pattern[field].as_array().ok_or_else(|| format!("a pattern without a {field} list: {pattern}"))?;
        values
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("a {field} that is not a plain string: {v}")))
            .collect()
    };
    let alternatives: Vec<serde_json::Value> = match pattern.get("$or").and_then(|v| v.as_array()) {
        None => vec![pattern.clone()],
        Some(alternatives) => alternatives
            .iter()
            .map(|alternative| {
                let mut merged = pattern.clone();
                if let (Some(merged), Some(fields)) = (merged.as_object_mut(), alternative.as_object()) {
                    merged.remove("$or");
                    merged.extend(fields.clone());
                }
                merged
            })
            .collect(),
    };
    let mut pairs = BTreeSet::new();
    for alternative in &alternatives {
        for source in strings(alternative, "source")? {
            for detail_type in strings(alternative, "detail-type")? {
                pairs.insert((source.clone(), detail_type));
            }
        }
    }
    Ok(pairs)
}
