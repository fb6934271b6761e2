//! The event catalogue: the envelope every event we publish carries, one type per event, and
//! the EventBridge `source` / `detail-type` each is published under. Serde only, no I/O.
//!
//! An event is small: IDs and the facts its consumers need, not whole objects. Amounts are
//! integer minor units of `currency`. A breaking change to a payload is a new `version`,
//! published beside the old one until every consumer has moved.

mod accepts;
mod lifecycle;
mod low_stock;
mod order_placed;
mod routing;

pub use accepts::Accepts;
pub use lifecycle::{OrderCancelledV1, OrderDeliveredV1, OrderShippedV1, PaymentRefundedV1};
pub use low_stock::LowStockV1;
pub use order_placed::{OrderPlacedLine, OrderPlacedV1, SkuTotal};
pub use routing::routed_pairs;
#[doc(hidden)]
pub use serde_json as __serde_json;

use crate::domain::{EventId, OrderId};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// `source` of events the checkout publishes.
pub const SOURCE_CHECKOUT: &str = "shop.checkout";
/// `source` of events the warehouse's commands publish (shipped, delivered).
pub const SOURCE_FULFILMENT: &str = "shop.fulfilment";
/// `source` of events the inventory concern publishes.
pub const SOURCE_INVENTORY: &str = "shop.inventory";

/// A payload in the catalogue: its name (the EventBridge `detail-type`), version and source.
pub trait EventData: Serialize + DeserializeOwned {
    const TYPE: &'static str;
    const VERSION: u32;
    const SOURCE: &'static str;
}

/// The `detail` of every event we put on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Envelope<D> {
    /// Ours, stable across EventBridge retries and archive replays: consumers dedupe on it.
    pub event_id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    /// Carried from the HTTP request that caused this, through every event and log line.
    pub correlation_id: String,
    pub order_id: OrderId,
    /// The version of the order event this announces, so that a consumer receiving an order's
    /// events out of order can put them back in order (0 in events about no single version).
    #[serde(default)]
    pub order_version: u32,
    pub data: D,
}

impl<D: EventData> Envelope<D> {
    pub fn new(
        order_id: OrderId,
        order_version: u32,
        correlation_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        data: D,
    ) -> Self {
        Envelope {
            event_id: EventId::new(),
            event_type: D::TYPE.to_owned(),
            version: D::VERSION,
            occurred_at,
            correlation_id: correlation_id.into(),
            order_id,
            order_version,
            data,
        }
    }

    /// The bus-ready form, as stored in the outbox and handed to the publisher.
    pub fn to_outbound(&self) -> Outbound {
        Outbound {
            event_id: self.event_id,
            source: D::SOURCE.to_owned(),
            detail_type: D::TYPE.to_owned(),
            detail: serde_json::to_string(self).expect("catalogue types always serialise"),
        }
    }
}

impl<D: Accepts> Envelope<D> {
    /// Parses an EventBridge `detail`, refusing any type and version `D` does not accept.
    pub fn from_detail(detail: &serde_json::Value) -> Result<Self, EventError> {
        let malformed = |e: serde_json::Error| EventError::Malformed(e.to_string());
        let raw = Envelope::<serde_json::Value>::deserialize(detail).map_err(malformed)?;
        let Some(data) = D::accept(&raw.event_type, raw.version, raw.data) else {
            return Err(EventError::Unknown { event_type: raw.event_type, version: raw.version });
        };
        Ok(Envelope {
            event_id: raw.event_id,
            event_type: raw.event_type,
            version: raw.version,
            occurred_at: raw.occurred_at,
            correlation_id: raw.correlation_id,
            order_id: raw.order_id,
            order_version: raw.order_version,
            data: data.map_err(malformed)?,
        })
    }
}

/// An event ready for `PutEvents`: where it goes and its serialised `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbound {
    pub event_id: EventId,
    pub source: String,
    pub detail_type: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not an event we know: type {event_type:?} version {version}")]
    Unknown { event_type: String, version: u32 },
    #[error("malformed event: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};

    fn placed() -> Envelope<OrderPlacedV1> {
        let data = OrderPlacedV1 {
            customer_id: "c-1".into(),
            lines: vec![OrderPlacedLine { sku: "MUG".into(), quantity: 2, unit_price: 1250 }],
            total: 2500,
            currency: Currency::EUR,
        };
        Envelope::new(OrderId::new(), 2, "corr-1", Utc::now(), data)
    }

    #[test]
    fn the_envelope_carries_our_ids_type_version_and_time() {
        let json: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        for field in ["eventId", "type", "version", "occurredAt", "correlationId", "orderId", "orderVersion", "data"] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["type"], "order.placed");
        assert_eq!(json["version"], 1);
    }

    #[test]
    fn outbound_names_source_and_detail_type_from_the_catalogue() {
        let out = placed().to_outbound();
        assert_eq!((out.source.as_str(), out.detail_type.as_str()), ("shop.checkout", "order.placed"));
    }

    #[test]
    fn a_detail_round_trips_to_the_same_envelope() {
        let event = placed();
        let detail: serde_json::Value = serde_json::from_str(&event.to_outbound().detail).unwrap();
        assert_eq!(Envelope::<OrderPlacedV1>::from_detail(&detail), Ok(event));
    }

    #[test]
    fn another_version_is_refused_as_unknown() {
        let mut detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        detail["version"] = 2.into();
        assert_eq!(
            Envelope::<OrderPlacedV1>::from_detail(&detail),
            Err(EventError::Unknown { event_type: "order.placed".into(), version: 2 })
        );
    }

    #[test]
    fn a_detail_without_an_order_version_reads_as_version_zero() {
        let mut detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        detail.as_object_mut().unwrap().remove("orderVersion");
        assert_eq!(Envelope::<OrderPlacedV1>::from_detail(&detail).unwrap().order_version, 0);
    }

    crate::event_set! {
        /// A consumer's set of events, as the consumer harness parses them.
        enum Lifecycle {
            Placed(OrderPlacedV1),
            Cancelled(OrderCancelledV1),
        }
    }

    #[test]
    fn a_set_accepts_each_of_its_events_and_names_them_for_the_rules() {
        let detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        assert!(matches!(Envelope::<Lifecycle>::from_detail(&detail).unwrap().data, Lifecycle::Placed(_)));
        let types: Vec<&str> = Lifecycle::ACCEPTED.iter().map(|(_, t, _)| *t).collect();
        assert_eq!(types, ["order.placed", "order.cancelled"]);
    }

    #[test]
    fn a_set_refuses_an_event_outside_it_as_unknown() {
        let data = OrderShippedV1 { customer_id: "c".into(), carrier: "UPS".into(), tracking_id: "1Z".into() };
        let shipped = Envelope::new(OrderId::new(), 3, "corr", Utc::now(), data).to_outbound();
        let detail: serde_json::Value = serde_json::from_str(&shipped.detail).unwrap();
        assert!(matches!(Envelope::<Lifecycle>::from_detail(&detail), Err(EventError::Unknown { .. })));
    }

    #[test]
    fn a_detail_without_a_type_is_malformed() {
        let detail = serde_json::json!({"version": 1});
        assert!(matches!(Envelope::<OrderPlacedV1>::from_detail(&detail), Err(EventError::Malformed(_))));
    }

    #[test]
    fn the_total_is_in_minor_units_of_the_currency() {
        let total = placed().data.total_money();
        assert_eq!(total, Money::new(2500, Currency::EUR));
    }
}
