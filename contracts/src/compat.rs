//! Backward compatibility of one event version's schema with its last committed form.
//!
//! A version, once published, is read by consumers built against it and lies in the archive
//! for replays, so its schema may only change in ways both still accept: a new optional field,
//! a description. A removed or retyped field, a new required field or a changed set of allowed
//! values is a new version (`<Type>V2`, a new `<type>.v2.json` beside the old one).

use serde_json::Value;

/// The backward-incompatible differences from `old` to `new`, each described with its path
/// (empty when `new` accepts and promises what `old` did).
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut changes = Vec::new();
    compare("", old, new, &mut changes);
    changes
}

fn compare(path: &str, old: &Value, new: &Value, changes: &mut Vec<String>) {
    let at = if path.is_empty() { "/" } else { path };
    for key in ["type", "format", "const", "enum", "pattern"] {
        if old.get(key) != new.get(key) {
            let (was, is) = (old.get(key).unwrap_or(&Value::Null), new.get(key).unwrap_or(&Value::Null));
            changes.push(format!("{at}: {key} changed from {was} to {is}"));
        }
    }
    let properties = |schema: &Value| schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let required = |schema: &Value| -> Vec<String> {
        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    };
    let (old_properties, new_properties) = (properties(old), properties(new));
    for (name, old_field) in &old_properties {
        let field = format!("{path}/{name}");
        match new_properties.get(name) {
            None => changes.push(format!("{field}: removed")),
            Some(new_field) => compare(&field, old_field, new_field, changes),
        }
    }
    let old_required = required(old);
    for name in required(new).iter().filter(|n| !old_required.contains(n)) {
        changes.push(format!("{path}/{name}: newly required"));
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(&format!("{path}/[]"), old_items, new_items, changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn placed() -> Value {
        json!({
            "type": "object",
            "properties": {
                "version": {"const": 1},
                "data": {
                    "type": "object",
                    "properties": {
                        "total": {"type": "integer", "format": "int64"},
                        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}
                    },
                    "required": ["total", "lines"]
                }
            },
            "required": ["version", "data"]
        })
    }

    #[test]
    fn a_new_optional_field_or_description_is_compatible() {
        let mut new = placed();
        new["properties"]["data"]["properties"]["note"] = json!({"type": "string"});
        new["properties"]["data"]["description"] = json!("more words");
        assert_eq!(breaking_changes(&placed(), &new), Vec::<String>::new());
    }

    #[test]
    fn a_removed_field_is_breaking() {
        let mut new = placed();
        new["properties"]["data"]["properties"].as_object_mut().unwrap().remove("total");
        assert_eq!(breaking_changes(&placed(), &new), ["/data/total: removed"]);
    }

    #[test]
    fn a_retyped_field_is_breaking_also_inside_an_array() {
        let mut new = placed();
        new["properties"]["data"]["properties"]["total"]["type"] = json!("string");
        new["properties"]["data"]["properties"]["lines"]["items"]["properties"]["sku"]["type"] = json!("integer");
        let changes = breaking_changes(&placed(), &new);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(
            changes[0].starts_with("/data/lines/[]/sku: type changed") || changes[1].starts_with("/data/lines/[]/sku")
        );
    }

    #[test]
    fn a_new_required_field_is_breaking() {
        let mut new = placed();
        new["properties"]["data"]["properties"]["note"] = json!({"type": "string"});
        new["properties"]["data"]["required"] = json!(["total", "lines", "note"]);
        assert_eq!(breaking_changes(&placed(), &new), ["/data/note: newly required"]);
    }

    #[test]
    fn another_version_constant_is_breaking() {
        let mut new = placed();
        new["properties"]["version"] = json!({"const": 2});
        assert_eq!(breaking_changes(&placed(), &new).len(), 1);
    }
}
