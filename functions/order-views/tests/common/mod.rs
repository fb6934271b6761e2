//! Fixtures shared by the specifications: legal order histories, the event store holding them,
//! and the stream records Lambda would deliver for them.
#![allow(dead_code)]

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use chrono::{DateTime, Duration, Utc};
use order_views::record::{event_item, insert_record};
use shared::adapters::memory::MemoryShop;
use shared::domain::{CancelReason, Currency, Money, OrderEvent, OrderId, Recorded, Refund, Shipment};
use shared::ports::{OrderChange, OrderStore, StockEffect};

/// The legal lives of an order, each as far as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Opened, paid, shipped, delivered.
    Delivered,
    /// Opened, paid, cancelled by the customer, refunded.
    Refunded,
    /// Opened, the card declined.
    Declined,
    /// Opened, never finished, expired by the sweeper.
    Expired,
}

impl Life {
    pub const ALL: [Life; 4] = [Life::Delivered, Life::Refunded, Life::Declined, Life::Expired];

    /// How many events the whole life has.
    pub fn len(self) -> usize {
        match self {
            Life::Delivered | Life::Refunded => 4,
            Life::Declined | Life::Expired => 2,
        }
    }
}

pub fn opened(customer: &str, total: i64, at: DateTime<Utc>) -> OrderEvent {
    OrderEvent::Opened {
        customer_id: customer.into(),
        lines: vec![shared::domain::LineItem {
            sku: "MUG".into(),
            quantity: 1,
            unit_price: Money::new(total, Currency::EUR),
        }],
        total: Money::new(total, Currency::EUR),
        at,
        correlation_id: "corr-test".into(),
    }
}

/// The events of `life` for an order of `customer`, starting at `start`, one minute apart.
pub fn events(life: Life, customer: &str, total: i64, start: DateTime<Utc>) -> Vec<OrderEvent> {
    let at = |i: i64| start + Duration::minutes(i);
    let paid = OrderEvent::PaymentCaptured { charge_id: "ch_1".into(), at: at(1) };
    match life {
        Life::Delivered => vec![
            opened(customer, total, at(0)),
            paid,
            OrderEvent::Shipped { shipment: Shipment { carrier: "DHL".into(), tracking_id: "T-1".into() }, at: at(2) },
            OrderEvent::Delivered { at: at(3) },
        ],
        Life::Refunded => vec![
            opened(customer, total, at(0)),
            paid,
            OrderEvent::Cancelled { reason: CancelReason::CustomerRequested, at: at(2) },
            OrderEvent::Refunded {
                refund: Refund { refund_id: "re_1".into(), amount: Money::new(total, Currency::EUR) },
                at: at(3),
            },
        ],
        Life::Declined => vec![
            opened(customer, total, at(0)),
            OrderEvent::Cancelled { reason: CancelReason::PaymentDeclined { code: "card_declined".into() }, at: at(1) },
        ],
        Life::Expired => {
            vec![opened(customer, total, at(0)), OrderEvent::Cancelled { reason: CancelReason::Expired, at: at(1) }]
        }
    }
}

/// `events` as stored: versions from 1.
pub fn recorded(events: Vec<OrderEvent>) -> Vec<Recorded> {
    events
        .into_iter()
        .zip(1..)
        .map(|(event, version)| Recorded { version, event, correlation_id: "corr-test".into() })
        .collect()
}

/// The view in-order delivery gives: the fold of the whole history.
pub fn fold(id: OrderId, history: &[Recorded]) -> order_views::View {
    order_views::View::of(shared::domain::Order::replay(id, history.iter().map(|r| &r.event)).unwrap().unwrap())
}

/// Appends one event to the store (in memory or DynamoDB), as a command would.
pub async fn commit(store: &dyn OrderStore, id: OrderId, r: &Recorded) {
    let change = OrderChange {
        order_id: id,
        version: r.version,
        event: &r.event,
        stock: StockEffect::None,
        outbox: None,
        correlation_id: &r.correlation_id,
    };
    store.commit(change).await.expect("a legal history commits");
}

/// An order with `history` committed to `shop`.
pub async fn given_order(shop: &MemoryShop, history: &[Recorded]) -> OrderId {
    let id = OrderId::new();
    for r in history {
        commit(shop, id, r).await;
    }
    id
}

/// The stream record of one event.
pub fn record(id: OrderId, r: &Recorded, sequence_number: &str) -> EventRecord {
    insert_record(&event_item(id, r), sequence_number)
}

/// A batch of records, in order.
pub fn batch(records: Vec<EventRecord>) -> Event {
    let mut event = Event::default();
    event.records = records;
    event
}

/// The sequence numbers a response reports as failed.
pub fn failed(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
}

pub fn start() -> DateTime<Utc> {
    "2026-01-01T10:00:00Z".parse().expect("a time")
}
