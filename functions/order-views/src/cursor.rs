//! The list's `cursor`: where the previous page stopped (the index's `LastEvaluatedKey`), as
//! base64url of a small JSON object. Opaque to clients, not secret: it holds nothing the
//! client could not see in the page it came with.
//!
//! A cursor is untrusted input. It is read strictly (size, encoding, exact fields, an order ID,
//! a list key naming that order) and must belong to the list being read: the query's key
//! condition is always the customer of the path, and a start key of another partition would
//! be refused by DynamoDB (a 500) if it were ever sent, so a cursor for another customer is a
//! 400 here. What a client can still do by hand-crafting a well-formed cursor for its own list
//! is start that list anywhere, which it can do by paging anyway.

use crate::view::PageKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use shared::domain::{CustomerId, OrderId};

/// Far above any real cursor (about 200 characters): a longer one is refused before decoding.
pub const MAX_CURSOR_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one this API issued")]
    Malformed,
    #[error("the cursor belongs to another list")]
    Foreign,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "c")]
    customer_id: String,
    #[serde(rename = "k")]
    list_key: String,
    #[serde(rename = "o")]
    order_id: String,
}

pub fn encode(key: &PageKey) -> String {
    let wire = Wire {
        customer_id: key.customer_id.0.clone(),
        list_key: key.list_key.clone(),
        order_id: key.order_id.to_string(),
    };
    // Serializing three strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The page key in `cursor`, if it is well formed and continues `customer`'s list.
pub fn decode(cursor: &str, customer: &CustomerId) -> Result<PageKey, CursorError> {
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Malformed)?;
    // An object with exactly our fields (serde would also take the fields as an array).
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if !value.is_object() {
        return Err(CursorError::Malformed);
    }
    let wire: Wire = serde_json::from_value(value).map_err(|_| CursorError::Malformed)?;
    let order_id: OrderId = wire.order_id.parse().map_err(|_| CursorError::Malformed)?;
    if !names_order(&wire.list_key, order_id) {
        return Err(CursorError::Malformed);
    }
    if wire.customer_id != customer.0 {
        return Err(CursorError::Foreign);
    }
    Ok(PageKey { customer_id: customer.clone(), list_key: wire.list_key, order_id })
}

/// Whether `list_key` is `<RFC 3339 time>#<order_id>`, as `view::list_key` writes it.
fn names_order(list_key: &str, order_id: OrderId) -> bool {
    let Some((at, id)) = list_key.split_once('#') else { return false };
    id == order_id.to_string() && chrono::DateTime::parse_from_rfc3339(at).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::list_key;

    fn key(customer: &str) -> PageKey {
        let order_id = OrderId::new();
        PageKey {
            customer_id: customer.into(),
            list_key: list_key("2026-01-01T10:00:00Z".parse().unwrap(), order_id),
            order_id,
        }
    }

    fn wire(value: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_customer() {
        let key = key("c-1");
        assert_eq!(decode(&encode(&key), &"c-1".into()), Ok(key));
    }

    #[test]
    fn another_customers_cursor_is_foreign() {
        assert_eq!(decode(&encode(&key("c-2")), &"c-1".into()), Err(CursorError::Foreign));
    }

    #[test]
    fn a_tampered_cursor_is_malformed() {
        let good = key("c-1");
        let id = good.order_id.to_string();
        let cursors = [
            String::new(),
            "!!!not base64!!!".to_owned(),
            URL_SAFE_NO_PAD.encode("not json"),
            wire(serde_json::json!({"c": "c-1", "k": good.list_key, "o": "not-a-ulid"})),
            wire(serde_json::json!({"c": "c-1", "k": format!("yesterday#{id}"), "o": id})),
            wire(serde_json::json!({"c": "c-1", "k": format!("2026-01-01T10:00:00Z#{}", OrderId::new()), "o": id})),
            wire(serde_json::json!({"c": "c-1", "k": good.list_key, "o": id, "extra": 1})),
            wire(serde_json::json!({"c": "c-1", "k": good.list_key})),
            wire(serde_json::json!(["c-1", good.list_key, id])),
            "A".repeat(MAX_CURSOR_LEN + 1),
        ];
        for cursor in cursors {
            assert_eq!(decode(&cursor, &"c-1".into()), Err(CursorError::Malformed), "{cursor}");
        }
    }
}
