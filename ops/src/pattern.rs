//! EventBridge event patterns, for the local replay only: moto replays an archive to every
//! rule, whatever the time range and `FilterArns`, so the local replay routes archived events
//! itself and needs to know which rules match (moto has no `TestEventPattern` either).
//!
//! EventBridge's content filtering, the subset a rule of this stack can use: a field's pattern
//! is a list of values (the event's value, or one element of it when it is an array, must equal
//! one of them) or of matchers (`prefix`, `suffix`, `equals-ignore-case`, `anything-but`,
//! `exists`, `numeric`); a nested object matches nested fields; `$or` takes alternatives. Any
//! other operator is refused, never guessed.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event pattern {0}: the local replay does not implement this part of EventBridge's pattern syntax")]
pub struct Unsupported(pub String);

/// Whether `event` matches `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> Result<bool, Unsupported> {
    let fields = pattern.as_object().ok_or_else(|| Unsupported(format!("{pattern} (not an object)")))?;
    for (key, expected) in fields {
        let ok = if key == "$or" {
            let alternatives = expected.as_array().ok_or_else(|| Unsupported(format!("$or {expected}")))?;
            let mut any = false;
            for alternative in alternatives {
                any |= matches(alternative, event)?;
            }
            any
        } else {
            let actual = event.get(key);
            match expected {
                Value::Object(_) => match actual {
                    Some(nested @ Value::Object(_)) => matches(expected, nested)?,
                    _ => false,
                },
                Value::Array(values) => field_matches(values, actual)?,
                other => return Err(Unsupported(format!("{key}: {other} (a field takes a list)"))),
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One field: any of `values` matches the event's value (or any element of it).
fn field_matches(values: &[Value], actual: Option<&Value>) -> Result<bool, Unsupported> {
    for value in values {
        // `exists` speaks about the field itself, not its elements.
        if let Some(exists) = value.get("exists") {
            let exists = exists.as_bool().ok_or_else(|| Unsupported(format!("exists {exists}")))?;
            if exists == actual.is_some() {
                return Ok(true);
            }
            continue;
        }
        let Some(actual) = actual else { continue };
        let candidates: Vec<&Value> = match actual {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for candidate in candidates {
            if one_matches(value, candidate)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn one_matches(matcher: &Value, actual: &Value) -> Result<bool, Unsupported> {
    let Value::Object(operator) = matcher else {
        return Ok(matcher == actual);
    };
    let (name, argument) = match operator.iter().next() {
        Some(pair) if operator.len() == 1 => pair,
        _ => return Err(Unsupported(matcher.to_string())),
    };
    let text = actual.as_str();
    let unsupported = || Unsupported(matcher.to_string());
    Ok(match name.as_str() {
        "prefix" => text.zip(argument.as_str()).is_some_and(|(t, p)| t.starts_with(p)),
        "suffix" => text.zip(argument.as_str()).is_some_and(|(t, s)| t.ends_with(s)),
        "equals-ignore-case" => text.zip(argument.as_str()).is_some_and(|(t, e)| t.eq_ignore_ascii_case(e)),
        "anything-but" => match argument {
            Value::Array(excluded) => !excluded.contains(actual),
            Value::Object(_) => !one_matches(argument, actual)?,
            single => single != actual,
        },
        "numeric" => numeric(argument, actual).ok_or_else(unsupported)?,
        _ => return Err(unsupported()),
    })
}

/// `{"numeric": [">", 0, "<=", 5]}`: every comparison holds.
fn numeric(argument: &Value, actual: &Value) -> Option<bool> {
    let terms = argument.as_array()?;
    let Some(number) = actual.as_f64() else { return Some(false) };
    let mut holds = true;
    for pair in terms.chunks(2) {
        let (operator, bound) = (pair.first()?.as_str()?, pair.get(1)?.as_f64()?);
        holds &= match operator {
            "<" => number < bound,
            "<=" => number <= bound,
            "=" => number == bound,
            ">=" => number >= bound,
            ">" => number > bound,
            _ => return None,
        };
    }
    Some(holds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str) -> Value {
        json!({"source": source, "detail-type": detail_type, "detail": {"total": 4500, "tags": ["a", "b"]}})
    }

    #[test]
    fn a_consumer_rule_matches_exactly_its_source_and_types() {
        let rule = json!({"source": ["shop.checkout"], "detail-type": ["order.placed", "order.cancelled"]});
        assert!(matches(&rule, &event("shop.checkout", "order.placed")).unwrap());
        assert!(!matches(&rule, &event("shop.checkout", "order.shipped")).unwrap());
        assert!(!matches(&rule, &event("shop.fulfilment", "order.placed")).unwrap());
    }

    #[test]
    fn or_takes_any_alternative_and_no_pair_across_them() {
        let rule = json!({"$or": [
            {"source": ["shop.checkout"], "detail-type": ["order.placed"]},
            {"source": ["shop.fulfilment"], "detail-type": ["order.shipped"]},
        ]});
        assert!(matches(&rule, &event("shop.fulfilment", "order.shipped")).unwrap());
        assert!(!matches(&rule, &event("shop.fulfilment", "order.placed")).unwrap());
    }

    #[test]
    fn prefix_nested_fields_arrays_and_numbers() {
        assert!(matches(&json!({"source": [{"prefix": "shop."}]}), &event("shop.inventory", "x")).unwrap());
        assert!(matches(&json!({"detail": {"tags": ["b"]}}), &event("s", "x")).unwrap());
        assert!(
            matches(&json!({"detail": {"total": [{"numeric": [">", 4000, "<=", 4500]}]}}), &event("s", "x")).unwrap()
        );
        assert!(!matches(&json!({"detail": {"total": [{"numeric": [">", 4500]}]}}), &event("s", "x")).unwrap());
        assert!(matches(&json!({"source": [{"anything-but": ["other"]}]}), &event("s", "x")).unwrap());
    }

    #[test]
    fn exists_false_matches_an_absent_field_only() {
        let not_replayed = json!({"replay-name": [{"exists": false}]});
        assert!(matches(&not_replayed, &event("s", "x")).unwrap());
        let mut replayed = event("s", "x");
        replayed["replay-name"] = json!("r1");
        assert!(!matches(&not_replayed, &replayed).unwrap());
        assert!(matches(&json!({"replay-name": [{"exists": true}]}), &replayed).unwrap());
    }

    #[test]
    fn an_operator_it_does_not_know_is_refused_not_guessed() {
        let wildcard = json!({"source": [{"wildcard": "shop.*"}]});
        assert!(matches(&wildcard, &event("shop.checkout", "x")).is_err());
    }
}
