//! The event store's items as the read side meets them: in a stream record's new image (the
//! projector) and in a Scan (the rebuild). One parser for both.
//!
//! An event item: `orderId` (S), `version` (N, > 0), `type` (S), `event` (S, the JSON of an
//! `OrderEvent`), `at` (S), `correlationId` (S). Version 0 is an open-order marker, not an event.

use aws_lambda_events::event::dynamodb::{EventRecord, StreamViewType};
use shared::adapters::dynamodb::{get_n, get_s, n, s, Item};
use shared::domain::{OrderId, Recorded};
use shared::ports::StoreError;

/// What one stream record is to the projector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Not a new order event (a MODIFY or REMOVE, an open-order marker); says which.
    Ignored(&'static str),
    Event {
        order_id: OrderId,
        recorded: Recorded,
    },
}

/// Event items are immutable and appended by `PutItem`/`TransactWriteItems`, so a new event is
/// exactly an INSERT of an item whose version is above 0.
pub fn change(record: &EventRecord) -> Result<Change, StoreError> {
    if record.event_name != "INSERT" {
        return Ok(Change::Ignored("not an insert"));
    }
    let image: Item = record.change.new_image.clone().into();
    if image.is_empty() {
        return Err(StoreError::Corrupt("an INSERT record without its new image (is the stream NEW_IMAGE?)".into()));
    }
    if get_n::<i64>(&image, "version")? == 0 {
        return Ok(Change::Ignored("open-order marker"));
    }
    let (order_id, recorded) = event_of(&image)?;
    Ok(Change::Event { order_id, recorded })
}

/// An event item's order and event (the store's own parser reads the event).
pub fn event_of(item: &Item) -> Result<(OrderId, Recorded), StoreError> {
    let order_id: OrderId =
        get_s(item, "orderId")?.parse().map_err(|e| StoreError::Corrupt(format!("orderId: {e}")))?;
    Ok((order_id, shared::adapters::dynamodb::recorded(item)?))
}

/// The record Lambda delivers for an INSERT of `item` into the orders table (NEW_IMAGE), as
/// `aws_lambda_events`' own type: for tests, and for anything that replays the event store
/// into the projector.
pub fn insert_record(item: &Item, sequence_number: &str) -> EventRecord {
    let mut record = EventRecord::default();
    record.aws_region = "us-east-1".into();
    record.event_id = format!("insert-{sequence_number}");
    record.event_name = "INSERT".into();
    record.event_source = Some("aws:dynamodb".into());
    record.event_version = Some("1.1".into());
    let keys: Item =
        ["orderId", "version"].into_iter().filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone()))).collect();
    record.change.keys = keys.into();
    record.change.new_image = item.clone().into();
    record.change.sequence_number = Some(sequence_number.to_owned());
    record.change.stream_view_type = Some(StreamViewType::NewImage);
    record
}

/// The event item the order store writes for `recorded` (the attributes the read side reads).
pub fn event_item(order_id: OrderId, recorded: &Recorded) -> Item {
    let event = serde_json::to_string(&recorded.event).unwrap_or_default();
    Item::from([
        ("orderId".to_owned(), s(order_id.to_string())),
        ("version".to_owned(), n(recorded.version)),
        ("type".to_owned(), s(recorded.event.name())),
        ("event".to_owned(), s(event)),
        ("at".to_owned(), s(crate::view::timestamp(recorded.event.at()))),
        ("correlationId".to_owned(), s(&recorded.correlation_id)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use shared::domain::{Currency, Money, OrderEvent};

    fn recorded(version: u32) -> Recorded {
        let event = OrderEvent::Opened {
            customer_id: "c-1".into(),
            lines: vec![],
            total: Money::new(100, Currency::EUR),
            at: Utc::now(),
            correlation_id: "corr".into(),
        };
        Recorded { version, event, correlation_id: "corr".into() }
    }

    #[test]
    fn an_inserted_event_item_is_an_event_of_its_order() {
        let id = OrderId::new();
        let record = insert_record(&event_item(id, &recorded(1)), "1");
        assert_eq!(change(&record), Ok(Change::Event { order_id: id, recorded: recorded_like(&record) }));
    }

    fn recorded_like(record: &EventRecord) -> Recorded {
        event_of(&record.change.new_image.clone().into()).unwrap().1
    }

    #[test]
    fn the_record_survives_lambdas_json_round_trip() {
        let record = insert_record(&event_item(OrderId::new(), &recorded(3)), "42");
        let json = serde_json::to_string(&record).unwrap();
        let back: EventRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(change(&back), change(&record));
    }

    #[test]
    fn a_marker_a_modify_and_a_remove_are_ignored() {
        let mut marker = event_item(OrderId::new(), &recorded(1));
        marker.insert("version".into(), n(0));
        assert_eq!(change(&insert_record(&marker, "1")), Ok(Change::Ignored("open-order marker")));
        for name in ["MODIFY", "REMOVE"] {
            let mut record = insert_record(&event_item(OrderId::new(), &recorded(1)), "2");
            record.event_name = name.into();
            assert_eq!(change(&record), Ok(Change::Ignored("not an insert")));
        }
    }

    #[test]
    fn an_item_with_a_broken_event_a_negative_version_or_no_image_is_corrupt() {
        let good = event_item(OrderId::new(), &recorded(1));
        let mut broken = good.clone();
        broken.insert("event".into(), s("{not json"));
        let mut negative = good.clone();
        negative.insert("version".into(), n(-1));
        let mut bad_id = good.clone();
        bad_id.insert("orderId".into(), s("not-a-ulid"));
        for item in [broken, negative, bad_id, Item::new()] {
            let result = change(&insert_record(&item, "1"));
            assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
        }
    }
}
