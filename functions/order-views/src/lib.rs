//! The CQRS read side of orders: one view per order, listed per customer newest first.
//!
//! - [`projector`] (binary `order-projector`, on the orders table's stream) folds each order
//!   event into its order's view. It applies an event only as the next version of the view
//!   (a conditional write on the stored version), skips old and duplicate ones, and fills a gap
//!   by reading the order's history from the event store, so any arrival order converges.
//! - [`api`] (binary `order-views-api`) answers `GET /customers/{customerId}/orders` from the
//!   views table's `ByCustomer` index alone: it never reads the event store.
//! - [`rebuild`] (binary `rebuild-order-views`) re-folds the whole event store into a fresh
//!   table and reports how the live views differ from it.
//!
//! The fold is `shared::domain::Order` (`Order::open` / `Order::apply`), the single definition
//! of an order's state: a view stores that state (JSON) beside the fields the list shows, and
//! nothing here decides which event may follow which.

pub mod api;
pub mod cursor;
pub mod dynamo;
pub mod memory;
pub mod ports;
pub mod projector;
pub mod rebuild;
pub mod record;
pub mod view;

pub use view::{Page, PageKey, View};
