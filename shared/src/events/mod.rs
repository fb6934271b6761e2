//! The event catalogue: the envelope every event we publish carries, one type per event, and
//! the EventBridge `source` / `detail-type` each is published under. Serde only, no I/O.
//!
//! An event is small: IDs and the facts its consumers need, not whole objects. Amounts are
//! integer minor units with their currency. A breaking change to a payload is a new `version`
//! (checked by the contracts' compatibility test): consumers move first, reading the new
//! version and the old one upcast ([`EventData::read`]); then the producer publishes the new
//! one. Consumers keep reading the old version for as long as an outbox, a DLQ or the archive
//! can deliver it.

mod accepts;
mod lifecycle;
mod low_stock;
mod order_placed;
mod routing;

pub use accepts::Accepts;
pub use lifecycle::{OrderCancelledV1, OrderDeliveredV1, OrderShippedV1, PaymentRefundedV1};
pub use low_stock::LowStockV1;
pub use order_placed::{per_sku, OrderPlacedLine, OrderPlacedV1, OrderPlacedV2, PricedLine, SkuTotal};
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
    /// The versions of [`Self::TYPE`] a reader of this one accepts: its own, and any earlier
    /// one that [`EventData::read`] upcasts.
    const READS: &'static [u32] = &[Self::VERSION];

    /// Reads `data` published as `version` of this type: its own version as is, an earlier
    /// one upcast to this (the one place where old versions become new ones, so that every
    /// consumer reads them alike); `None` for a version it does not read.
    fn read(version: u32, data: serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
        (version == Self::VERSION).then(|| serde_json::from_value(data))
    }
}

/// `(source, detail-type, version)`: an event as a function publishes it. Each publishing
/// function declares its list beside its code (`checkout::Checkout::PUBLISHES`, ...), its
/// contract test checks that list against what it publishes, and the AsyncAPI document names
/// the function as the producer from it.
pub type Published = (&'static str, &'static str, u32);

/// [`Published`] of `D`.
pub const fn published<D: EventData>() -> Published {
    (D::SOURCE, D::TYPE, D::VERSION)
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
    /// The version published. A reader of a later version sees the earlier version's data
    /// upcast ([`EventData::read`]) and this still saying what was on the bus.
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
            let reads = D::ACCEPTED.iter().filter(|(_, t, _)| *t == raw.event_type).flat_map(|(_, _, v)| v.iter());
            return Err(match reads.max() {
                Some(&newest) if raw.version > newest => {
                    EventError::Newer { event_type: raw.event_type, version: raw.version, newest }
                }
                _ => EventError::Unknown { event_type: raw.event_type, version: raw.version },
            });
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
    /// A type the reader knows, in a version later than any it reads: its producer was
    /// deployed first, and the reader's new version may be on its way (one stack's update
    /// does not order its functions). Worth retrying, unlike an event the reader never reads.
    #[error("type {event_type:?} version {version} is newer than this reader's v{newest}")]
    Newer { event_type: String, version: u32, newest: u32 },
    #[error("malformed event: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};

    fn placed() -> Envelope<OrderPlacedV2> {
        let lines =
            [crate::domain::LineItem { sku: "MUG".into(), quantity: 2, unit_price: Money::new(1250, Currency::EUR) }];
        let data = OrderPlacedV2::new("c-1".into(), &lines, Money::new(2500, Currency::EUR));
        Envelope::new(OrderId::new(), 2, "corr-1", Utc::now(), data)
    }

    /// What the checkout published before v2: the same order, as `order.placed` v1.
    fn placed_v1(v2: &Envelope<OrderPlacedV2>) -> serde_json::Value {
        let lines = v2.data.lines.iter().map(|l| OrderPlacedLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.amount,
        });
        let data = OrderPlacedV1 {
            customer_id: v2.data.customer_id.clone(),
            lines: lines.collect(),
            total: v2.data.total.amount,
            currency: v2.data.total.currency,
        };
        let v1 = Envelope::new(v2.order_id, v2.order_version, v2.correlation_id.clone(), v2.occurred_at, data);
        serde_json::from_str(&v1.to_outbound().detail).unwrap()
    }

    #[test]
    fn the_envelope_carries_our_ids_type_version_and_time() {
        let json: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        for field in ["eventId", "type", "version", "occurredAt", "correlationId", "orderId", "orderVersion", "data"] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["type"], "order.placed");
        assert_eq!(json["version"], 2);
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
        assert_eq!(Envelope::<OrderPlacedV2>::from_detail(&detail), Ok(event));
    }

    #[test]
    fn a_version_newer_than_the_reader_reads_is_refused_as_newer() {
        let mut detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        detail["version"] = 3.into();
        assert_eq!(
            Envelope::<OrderPlacedV2>::from_detail(&detail),
            Err(EventError::Newer { event_type: "order.placed".into(), version: 3, newest: 2 })
        );
    }

    #[test]
    fn a_version_older_than_any_the_reader_reads_is_unknown() {
        let mut detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        detail["version"] = 0.into();
        assert_eq!(
            Envelope::<OrderPlacedV2>::from_detail(&detail),
            Err(EventError::Unknown { event_type: "order.placed".into(), version: 0 })
        );
    }

    #[test]
    fn given_a_v1_detail_when_a_v2_reader_parses_it_then_it_gets_the_upcast_data_and_the_published_version() {
        let v2 = placed();
        let read = Envelope::<OrderPlacedV2>::from_detail(&placed_v1(&v2)).unwrap();
        assert_eq!(read.data, v2.data);
        assert_eq!((read.order_id, read.order_version, read.correlation_id), (v2.order_id, 2, v2.correlation_id));
        assert_eq!(read.version, 1, "the envelope says what was published");
    }

    #[test]
    fn a_v1_reader_refuses_v2_as_newer() {
        let detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        assert_eq!(
            Envelope::<OrderPlacedV1>::from_detail(&detail),
            Err(EventError::Newer { event_type: "order.placed".into(), version: 2, newest: 1 })
        );
    }

    #[test]
    fn a_detail_without_an_order_version_reads_as_version_zero() {
        let mut detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        detail.as_object_mut().unwrap().remove("orderVersion");
        assert_eq!(Envelope::<OrderPlacedV2>::from_detail(&detail).unwrap().order_version, 0);
    }

    crate::event_set! {
        /// A consumer's set of events, as the consumer harness parses them.
        enum Lifecycle {
            Placed(OrderPlacedV2),
            Cancelled(OrderCancelledV1),
        }
    }

    #[test]
    fn a_set_accepts_each_of_its_events_and_names_them_for_the_rules() {
        let detail: serde_json::Value = serde_json::from_str(&placed().to_outbound().detail).unwrap();
        assert!(matches!(Envelope::<Lifecycle>::from_detail(&detail).unwrap().data, Lifecycle::Placed(_)));
        let accepted: Vec<(&str, &[u32])> = Lifecycle::ACCEPTED.iter().map(|(_, t, v)| (*t, *v)).collect();
        assert_eq!(accepted, [("order.placed", &[2, 1][..]), ("order.cancelled", &[1][..])]);
    }

    #[test]
    fn a_set_reads_an_old_version_through_its_members_upcast() {
        let v2 = placed();
        let read = Envelope::<Lifecycle>::from_detail(&placed_v1(&v2)).unwrap();
        assert_eq!(read.data, Lifecycle::Placed(v2.data));
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
        assert!(matches!(Envelope::<OrderPlacedV2>::from_detail(&detail), Err(EventError::Malformed(_))));
    }
}
