//! The `POST /orders` contract: what a valid request is, and every way it can be invalid.
//! All field errors are collected, so a client learns everything wrong at once.

use crate::problem::FieldError;
use serde_json::Value;
use shared::domain::{Currency, CustomerId, Sku};
use std::collections::HashSet;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_LINES: usize = 50;
pub const QUANTITY_RANGE: std::ops::RangeInclusive<u64> = 1..=100;
const MAX_ID_LEN: usize = 64;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A request that passed validation: the checkout's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub customer_id: CustomerId,
    pub items: Vec<(Sku, u32)>,
    pub payment_token: String,
    pub currency: Currency,
    /// The body re-serialised with sorted keys: the same order hashes the same whatever the
    /// whitespace or key order, for the idempotency payload check.
    pub canonical: String,
}

fn identifier(body: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let pointer = format!("/{field}");
    match body.get(field) {
        None | Some(Value::Null) => errors.push(FieldError::new(pointer, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => errors.push(FieldError::new(pointer, "must not be empty")),
        Some(Value::String(s)) if s.len() > MAX_ID_LEN => {
            errors.push(FieldError::new(pointer, format!("must be at most {MAX_ID_LEN} characters")))
        }
        Some(Value::String(s)) => return Some(s.clone()),
        Some(_) => errors.push(FieldError::new(pointer, "must be a string")),
    }
    None
}

fn items(body: &Value, errors: &mut Vec<FieldError>) -> Vec<(Sku, u32)> {
    let list = match body.get("items") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("/items", "is required"));
            return Vec::new();
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            errors.push(FieldError::new("/items", "must be an array"));
            return Vec::new();
        }
    };
    if list.is_empty() {
        errors.push(FieldError::new("/items", "must contain at least one line"));
    }
    if list.len() > MAX_LINES {
        errors.push(FieldError::new("/items", format!("must contain at most {MAX_LINES} lines")));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    for (i, line) in list.iter().enumerate() {
        if !line.is_object() {
            errors.push(FieldError::new(format!("/items/{i}"), "must be an object"));
            continue;
        }
        let mut line_errors = Vec::new();
        let sku = identifier(line, "sku", &mut line_errors);
        let quantity = match line.get("quantity") {
            None | Some(Value::Null) => {
                line_errors.push(FieldError::new("/quantity", "is required"));
                None
            }
            Some(Value::Number(n)) => match n.as_u64().filter(|q| QUANTITY_RANGE.contains(q)) {
                Some(q) => Some(q as u32),
                None => {
                    let (lo, hi) = (QUANTITY_RANGE.start(), QUANTITY_RANGE.end());
                    line_errors.push(FieldError::new("/quantity", format!("must be a whole number from {lo} to {hi}")));
                    None
                }
            },
            Some(_) => {
                line_errors.push(FieldError::new("/quantity", "must be a number"));
                None
            }
        };
        errors.extend(line_errors.into_iter().map(|e| FieldError::new(format!("/items/{i}{}", e.pointer), e.detail)));
        if let Some(sku) = &sku {
            if !seen.insert(sku.clone()) {
                errors
                    .push(FieldError::new(format!("/items/{i}/sku"), "duplicates an earlier line; combine quantities"));
                continue;
            }
        }
        if let (Some(sku), Some(quantity)) = (sku, quantity) {
            valid.push((Sku(sku), quantity));
        }
    }
    valid
}

fn currency(body: &Value, errors: &mut Vec<FieldError>) -> Option<Currency> {
    match body.get("currency") {
        None | Some(Value::Null) => errors.push(FieldError::new("/currency", "is required")),
        Some(Value::String(code)) => match code.parse() {
            Ok(c) => return Some(c),
            Err(_) => {
                let supported: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
                errors.push(FieldError::new("/currency", format!("must be one of {}", supported.join(", "))))
            }
        },
        Some(_) => errors.push(FieldError::new("/currency", "must be a string")),
    }
    None
}

/// A command's body: a JSON object, or the field error that says why not.
pub fn json_object(body: &[u8]) -> Result<Value, Vec<FieldError>> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| vec![FieldError::new("", format!("body is not valid JSON: {e}"))])?;
    if !value.is_object() {
        return Err(vec![FieldError::new("", "body must be a JSON object")]);
    }
    Ok(value)
}

/// Parses and validates a `POST /orders` body placed by `customer`, the signed-in caller.
///
/// A body that names a customer is refused rather than ignored: a client that sends one
/// believes it chooses the customer, and silently ordering for someone else than it meant
/// is worse than telling it once.
pub fn parse(body: &[u8], customer: &CustomerId) -> Result<PlaceOrder, Vec<FieldError>> {
    let value = json_object(body)?;
    let mut errors = Vec::new();
    if value.get("customerId").is_some() {
        errors.push(FieldError::new("/customerId", "must not be sent: the customer is the signed-in caller"));
    }
    let items = items(&value, &mut errors);
    let payment_token = identifier(&value, "paymentToken", &mut errors);
    let currency = currency(&value, &mut errors);
    match (payment_token, currency) {
        (Some(payment_token), Some(currency)) if errors.is_empty() => Ok(PlaceOrder {
            customer_id: customer.clone(),
            items,
            payment_token,
            currency,
            canonical: value.to_string(),
        }),
        _ => Err(errors),
    }
}

/// `Idempotency-Key`: required, printable ASCII, at most 255 characters.
pub fn idempotency_key(header: Option<&str>) -> Result<String, FieldError> {
    let pointer = "header:Idempotency-Key";
    match header.map(str::trim) {
        None | Some("") => Err(FieldError::new(pointer, "is required: a unique key per order attempt, e.g. a UUID")),
        Some(k) if k.len() > MAX_IDEMPOTENCY_KEY_LEN || !k.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(FieldError::new(pointer, format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters")))
        }
        Some(k) => Ok(k.to_owned()),
    }
}

/// Whether a `Content-Type` header names JSON (`application/json`, any parameters).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"items": [{"sku": "MUG", "quantity": 2}], "paymentToken": "tok_visa", "currency": "EUR"})
    }

    fn ada() -> CustomerId {
        CustomerId("cust-ada".into())
    }

    fn parse(body: &[u8]) -> Result<PlaceOrder, Vec<FieldError>> {
        super::parse(body, &ada())
    }

    fn errors_of(body: Value) -> Vec<String> {
        parse(body.to_string().as_bytes())
            .unwrap_err()
            .into_iter()
            .map(|e| format!("{} {}", e.pointer, e.detail))
            .collect()
    }

    #[test]
    fn a_valid_body_becomes_a_command() {
        let cmd = parse(valid().to_string().as_bytes()).unwrap();
        assert_eq!(cmd.items, vec![(Sku::from("MUG"), 2)]);
        assert_eq!(cmd.currency, Currency::EUR);
        assert_eq!(cmd.customer_id, ada(), "the customer is the caller");
    }

    #[test]
    fn given_a_body_that_names_a_customer_then_it_is_refused_whoever_it_names() {
        for named in [json!("cust-grace"), json!("cust-ada"), json!("c\u{0}\u{202e}"), json!(null)] {
            let mut body = valid();
            body["customerId"] = named.clone();
            assert_eq!(
                errors_of(body),
                vec!["/customerId must not be sent: the customer is the signed-in caller"],
                "{named}"
            );
        }
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_canonical_form() {
        let a = parse(br#"{"currency":"EUR","paymentToken":"tok_visa","items":[{"quantity":2,"sku":"MUG"}]}"#);
        let b = parse(valid().to_string().as_bytes());
        assert_eq!(a.unwrap().canonical, b.unwrap().canonical);
    }

    #[test]
    fn malformed_json_is_one_error_at_the_root() {
        let errors = parse(b"{not json").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "");
    }

    #[test]
    fn every_missing_field_is_reported_at_once() {
        let errors = errors_of(json!({}));
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn wrong_types_are_reported_with_their_pointer() {
        let errors = errors_of(json!({"items": "x", "paymentToken": [], "currency": 1}));
        assert!(errors.contains(&"/paymentToken must be a string".to_owned()));
        assert!(errors.contains(&"/items must be an array".to_owned()));
    }

    #[test]
    fn quantities_outside_one_to_a_hundred_are_refused() {
        for q in [json!(0), json!(101), json!(-1), json!(1.5)] {
            let mut body = valid();
            body["items"][0]["quantity"] = q.clone();
            assert_eq!(errors_of(body), vec!["/items/0/quantity must be a whole number from 1 to 100"], "{q}");
        }
    }

    #[test]
    fn more_than_fifty_lines_are_refused() {
        let mut body = valid();
        body["items"] = (0..51).map(|i| json!({"sku": format!("S{i}"), "quantity": 1})).collect();
        assert_eq!(errors_of(body), vec!["/items must contain at most 50 lines"]);
    }

    #[test]
    fn a_duplicate_sku_is_refused_on_the_later_line() {
        let mut body = valid();
        body["items"] = json!([{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]);
        assert_eq!(errors_of(body), vec!["/items/1/sku duplicates an earlier line; combine quantities"]);
    }

    #[test]
    fn an_unsupported_currency_is_refused() {
        let mut body = valid();
        body["currency"] = json!("JPY");
        assert_eq!(errors_of(body), vec!["/currency must be one of EUR, USD, GBP"]);
    }

    #[test]
    fn an_empty_order_is_refused() {
        let mut body = valid();
        body["items"] = json!([]);
        assert_eq!(errors_of(body), vec!["/items must contain at least one line"]);
    }

    #[test]
    fn the_idempotency_key_is_required_and_printable() {
        assert!(idempotency_key(None).is_err());
        assert!(idempotency_key(Some("  ")).is_err());
        assert!(idempotency_key(Some("a b")).is_err());
        assert_eq!(idempotency_key(Some("k-1")), Ok("k-1".to_owned()));
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters() {
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
