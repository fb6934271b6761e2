//! The warehouse's commands, `POST /orders/{id}/shipments` and `POST /orders/{id}/delivery`,
//! served by their own Lambda (binary `fulfilment`) so that staff routes can sit behind a
//! staff scope and the function holds only what they need: the order store, the outbox, the
//! bus and the idempotency keys. No payments, no catalogue.

use crate::commands::{self, Command};
use crate::journal::Journal;
use crate::reply::{invalid, not_json, order_not_found, too_large, Reply};
use crate::{request, shipment};
use chrono::Utc;
use shared::adapters::dynamodb::{DynamoIdempotency, DynamoOutbox, DynamoShop};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::auth::Access;
use shared::config::{self, Env, MissingEnv};
use shared::domain::OrderId;
use shared::events::{published, OrderDeliveredV1, OrderShippedV1, Published};
use shared::ports::{EventPublisher, IdempotencyStore, OrderStore, Outbox};
use std::sync::Arc;

pub struct Fulfilment {
    pub orders: Arc<dyn OrderStore>,
    pub outbox: Arc<dyn Outbox>,
    pub publisher: Arc<dyn EventPublisher>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Who the callers are: only staff reach these commands.
    pub access: Access,
}

impl Fulfilment {
    /// What `FulfilmentFunction` puts on the bus (checked by tests/contracts.rs).
    pub const PUBLISHES: &[Published] = &[published::<OrderShippedV1>(), published::<OrderDeliveredV1>()];

    /// Wired to AWS from its environment (ORDERS_TABLE, OUTBOX_TABLE, IDEMPOTENCY_TABLE,
    /// EVENT_BUS_NAME, and PRODUCTS_TABLE by name only: the shop's tables travel together,
    /// but no fulfilment command touches stock).
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Fulfilment, MissingEnv> {
        let dynamodb = config::dynamodb(aws);
        let tables = config::shop_tables(env)?;
        Ok(Fulfilment {
            orders: Arc::new(DynamoShop::new(dynamodb.clone(), tables.clone())),
            outbox: Arc::new(DynamoOutbox::new(dynamodb.clone(), tables.outbox)),
            publisher: Arc::new(EventBridgePublisher::new(config::eventbridge(aws), env.get("EVENT_BUS_NAME")?)),
            idempotency: Arc::new(DynamoIdempotency::new(dynamodb, env.get("IDEMPOTENCY_TABLE")?)),
            access: Access::from_env(env),
        })
    }

    fn journal<'a>(&'a self, correlation_id: &'a str) -> Journal<'a> {
        Journal {
            orders: self.orders.as_ref(),
            outbox: self.outbox.as_ref(),
            publisher: self.publisher.as_ref(),
            correlation_id,
        }
    }

    /// Records the order's shipment (`Shipped`, `order.shipped`).
    pub async fn ship(&self, req: Command<'_>) -> Reply {
        let Ok(order_id) = req.order_id.parse::<OrderId>() else { return order_not_found(req.order_id) };
        if req.body.len() > shipment::MAX_BODY_BYTES {
            return too_large(shipment::MAX_BODY_BYTES);
        }
        if !request::is_json(req.content_type) {
            return not_json("shipment");
        }
        let shipment = match shipment::parse(req.body) {
            Ok(shipment) => shipment,
            Err(errors) => return invalid(errors),
        };
        let journal = self.journal(req.correlation_id);
        let command = commands::execute(&journal, order_id, |order| commands::ship(order, &shipment, Utc::now()));
        let route = "fulfilment:POST /orders/{id}/shipments";
        let canonical = shipment::canonical(&shipment);
        commands::run(self.idempotency.as_ref(), route, &req, order_id, canonical.as_bytes(), command).await
    }

    /// Records the order's delivery (`Delivered`, `order.delivered`). Takes no body.
    pub async fn deliver(&self, req: Command<'_>) -> Reply {
        let Ok(order_id) = req.order_id.parse::<OrderId>() else { return order_not_found(req.order_id) };
        let journal = self.journal(req.correlation_id);
        let command = commands::execute(&journal, order_id, |order| commands::deliver(order, Utc::now()));
        let route = "fulfilment:POST /orders/{id}/delivery";
        commands::run(self.idempotency.as_ref(), route, &req, order_id, b"", command).await
    }
}
