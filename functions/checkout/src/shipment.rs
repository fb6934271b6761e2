//! The `POST /orders/{id}/shipments` contract: `{"carrier": "...", "trackingId": "..."}`, both
//! required, non-empty, at most [`MAX_FIELD_CHARS`] characters, no control or bidirectional
//! formatting characters (the values are shown to staff and customers, and a hidden
//! right-to-left override could make one tracking ID look like another). Every field error is
//! reported at once; unknown fields are ignored.

use crate::problem::FieldError;
use serde_json::Value;
use shared::domain::Shipment;

/// A shipment request is two short strings.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
pub const MAX_FIELD_CHARS: usize = 64;

/// Characters that change how the text around them is displayed without being visible.
fn is_hidden_formatting(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn text(body: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let pointer = format!("/{field}");
    let mut fail = |detail: String| errors.push(FieldError::new(pointer.clone(), detail));
    match body.get(field) {
        None | Some(Value::Null) => fail("is required".into()),
        Some(Value::String(s)) if s.trim().is_empty() => fail("must not be empty".into()),
        Some(Value::String(s)) if s.trim().chars().count() > MAX_FIELD_CHARS => {
            fail(format!("must be at most {MAX_FIELD_CHARS} characters"))
        }
        Some(Value::String(s)) if s.chars().any(|c| c.is_control() || is_hidden_formatting(c)) => {
            fail("must not contain control or formatting characters".into())
        }
        Some(Value::String(s)) => return Some(s.trim().to_owned()),
        Some(_) => fail("must be a string".into()),
    }
    None
}

/// Parses and validates a shipment body; the shipment it names.
pub fn parse(body: &[u8]) -> Result<Shipment, Vec<FieldError>> {
    let value = crate::request::json_object(body)?;
    let mut errors = Vec::new();
    let carrier = text(&value, "carrier", &mut errors);
    let tracking_id = text(&value, "trackingId", &mut errors);
    match (carrier, tracking_id) {
        (Some(carrier), Some(tracking_id)) => Ok(Shipment { carrier, tracking_id }),
        _ => Err(errors),
    }
}

/// What "the same shipment request" means for its Idempotency-Key: the shipment it names,
/// whatever the whitespace, key order or ignored fields of the body.
pub fn canonical(shipment: &Shipment) -> String {
    serde_json::to_string(shipment).expect("a shipment serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(body: Value) -> Vec<String> {
        parse(body.to_string().as_bytes())
            .unwrap_err()
            .into_iter()
            .map(|e| format!("{} {}", e.pointer, e.detail))
            .collect()
    }

    #[test]
    fn a_valid_body_names_the_shipment_trimmed() {
        let shipment = parse(br#"{"carrier":" DHL ","trackingId":"JD014600006281","note":"ignored"}"#).unwrap();
        assert_eq!(shipment, Shipment { carrier: "DHL".into(), tracking_id: "JD014600006281".into() });
    }

    #[test]
    fn both_fields_are_required_and_reported_at_once() {
        assert_eq!(errors_of(json!({})), ["/carrier is required", "/trackingId is required"]);
    }

    #[test]
    fn empty_or_blank_fields_are_refused() {
        assert_eq!(errors_of(json!({"carrier": "", "trackingId": "  "})).len(), 2);
    }

    #[test]
    fn fields_must_be_strings() {
        assert_eq!(errors_of(json!({"carrier": 7, "trackingId": ["x"]})).len(), 2);
    }

    #[test]
    fn a_field_longer_than_the_bound_is_refused() {
        let long = "x".repeat(MAX_FIELD_CHARS + 1);
        assert_eq!(
            errors_of(json!({"carrier": "UPS", "trackingId": long})),
            ["/trackingId must be at most 64 characters"]
        );
        let just = "é".repeat(MAX_FIELD_CHARS);
        assert!(
            parse(json!({"carrier": "UPS", "trackingId": just}).to_string().as_bytes()).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn control_characters_and_hidden_formatting_are_refused() {
        for sneaky in ["1Z\n999", "1Z\u{0000}9", "1Z\u{202E}999", "1Z\u{200B}9", "\u{7F}"] {
            let errors = errors_of(json!({"carrier": "UPS", "trackingId": sneaky}));
            assert_eq!(errors, ["/trackingId must not contain control or formatting characters"], "{sneaky:?}");
        }
    }

    #[test]
    fn malformed_json_or_a_non_object_is_one_error_at_the_root() {
        for body in [&b"{\"carrier\":"[..], b"[1,2]", b"\"UPS\""] {
            let errors = parse(body).unwrap_err();
            assert_eq!((errors.len(), errors[0].pointer.as_str()), (1, ""));
        }
    }

    #[test]
    fn the_canonical_form_ignores_whitespace_key_order_and_extra_fields() {
        let a = parse(br#"{"trackingId":"1Z","carrier":"UPS"}"#).unwrap();
        let b = parse(br#"{ "carrier" : "UPS ", "trackingId": "1Z", "x": 1 }"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
    }
}
