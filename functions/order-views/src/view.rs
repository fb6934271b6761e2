//! The view of one order: the fields the customer's order list shows, and the fold's state the
//! next event is applied to. Both are written together from one `Order`, by [`View::of`] only.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use shared::domain::{Currency, CustomerId, Order, OrderId, OrderStatus};

/// One row of the views table, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    /// The `ByCustomer` sort key, see [`list_key`].
    pub list_key: String,
    pub status: OrderStatus,
    /// Minor units, as everywhere in the shop.
    pub total: i64,
    pub currency: Currency,
    /// Display times are kept to the millisecond, as the item stores them; `state` keeps the
    /// event's own precision.
    pub opened_at: DateTime<Utc>,
    /// When the last applied event happened: the list's "last change".
    pub updated_at: DateTime<Utc>,
    /// The version of the last applied event; the next one must carry `version + 1`.
    pub version: u32,
    /// The fold's state after that event.
    pub state: Order,
}

impl View {
    pub fn of(order: Order) -> View {
        View {
            order_id: order.id,
            customer_id: order.customer_id.clone(),
            list_key: list_key(order.opened_at, order.id),
            status: order.status,
            total: order.total.amount,
            currency: order.total.currency,
            opened_at: order.opened_at.trunc_subsecs(3),
            updated_at: order.updated_at.trunc_subsecs(3),
            version: order.version,
            state: order,
        }
    }

    /// The key a page that ends with this view continues after.
    pub fn page_key(&self) -> PageKey {
        PageKey { customer_id: self.customer_id.clone(), list_key: self.list_key.clone(), order_id: self.order_id }
    }
}

/// `<openedAt, RFC 3339 in UTC to the millisecond>#<orderId>`: such strings sort as their
/// instants (fixed width, `Z`), so querying `ByCustomer` descending lists the newest order
/// first; the order ID makes the key unique when two orders open in the same millisecond.
pub fn list_key(opened_at: DateTime<Utc>, id: OrderId) -> String {
    format!("{}#{id}", timestamp(opened_at))
}

/// How the views table writes a time.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Where a page of one customer's list stopped: the `ByCustomer` index's `LastEvaluatedKey`
/// (the index key and the table key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub customer_id: CustomerId,
    pub list_key: String,
    pub order_id: OrderId,
}

/// Up to `limit` views, newest first, and where the next page starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub views: Vec<View>,
    pub next: Option<PageKey>,
}

impl Page {
    /// A page from the first `limit + 1` views after the start: the extra one only tells that
    /// more follow, so that the last page never points at an empty one.
    pub fn from_overfetch(mut views: Vec<View>, limit: usize) -> Page {
        let more = views.len() > limit;
        views.truncate(limit);
        let next = if more { views.last().map(View::page_key) } else { None };
        Page { views, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{Money, OrderEvent};

    fn opened_at(at: &str) -> Order {
        let event = OrderEvent::Opened {
            customer_id: "c-1".into(),
            lines: vec![],
            total: Money::new(1250, Currency::EUR),
            at: at.parse().unwrap(),
            correlation_id: "corr".into(),
        };
        Order::open(OrderId::new(), &event).unwrap()
    }

    #[test]
    fn list_keys_sort_as_the_instants_they_name() {
        let early = list_key("2026-01-01T09:59:59.999Z".parse().unwrap(), OrderId::new());
        let late = list_key("2026-01-01T10:00:00Z".parse().unwrap(), OrderId::new());
        assert!(early < late, "{early} < {late}");
    }

    #[test]
    fn a_view_shows_its_state_with_times_to_the_millisecond() {
        let order = opened_at("2026-01-01T10:00:00.123456789Z");
        let view = View::of(order.clone());
        assert_eq!(timestamp(view.opened_at), "2026-01-01T10:00:00.123Z");
        assert_eq!(view.list_key, format!("2026-01-01T10:00:00.123Z#{}", order.id));
        assert_eq!((view.total, view.currency, view.version), (1250, Currency::EUR, 1));
        assert_eq!(view.state, order, "the state keeps the event's precision");
    }
}
