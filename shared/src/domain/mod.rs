//! Pure domain: values, the order's event-sourced life cycle, pricing. No I/O here.

pub mod ids;
pub mod money;
pub mod order;
pub mod pricing;

pub use ids::{CustomerId, EventId, OrderId, Sku};
pub use money::{Currency, Money, MoneyError};
pub use order::{
    CancelReason, LineItem, Order, OrderEvent, OrderStatus, Recorded, Refund, SagaStep, Shipment, TransitionError,
};
