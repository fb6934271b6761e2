//! OrderViewsTable and the event store's Scan, in DynamoDB.
//!
//! A view item: `orderId` (S, the key), `customerId` (S) and `listKey` (S), the `ByCustomer`
//! index's keys, `status`, `total` (N, minor units), `currency`, `openedAt`, `updatedAt`
//! (RFC 3339 to the millisecond), `version` (N, the condition of the next write) and `state`
//! (S, the JSON of the folded `Order`).

use crate::ports::{CustomerViews, EventLog, Histories, Saved, Scanned, ViewStore, ViewTable};
use crate::view::{timestamp, Page, PageKey, View};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, PutRequest, SseSpecification, TableStatus, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use shared::adapters::dynamodb::{batch_write, build_error, get_n, get_s, n, s, store_error, Item};
use shared::config::{Env, MissingEnv};
use shared::domain::{CustomerId, Order, OrderId};
use shared::ports::StoreError;
use shared::retry::Backoff;

pub const BY_CUSTOMER: &str = "ByCustomer";

/// One views table: the live one (projector, API) or a fresh one (rebuild).
#[derive(Clone)]
pub struct DynamoViews {
    pub client: Client,
    pub table: String,
}

impl DynamoViews {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoViews { client, table: table.into() }
    }

    /// ORDER_VIEWS_TABLE.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        Ok(DynamoViews::new(shared::config::dynamodb(aws), env.get("ORDER_VIEWS_TABLE")?))
    }
}

pub fn item_of(view: &View) -> Result<Item, StoreError> {
    let state = serde_json::to_string(&view.state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Item::from([
        ("orderId".to_owned(), s(view.order_id.to_string())),
        ("customerId".to_owned(), s(view.customer_id.as_str())),
        ("listKey".to_owned(), s(&view.list_key)),
        ("status".to_owned(), s(view.status.as_str())),
        ("total".to_owned(), n(view.total)),
        ("currency".to_owned(), s(view.currency.code())),
        ("openedAt".to_owned(), s(timestamp(view.opened_at))),
        ("updatedAt".to_owned(), s(timestamp(view.updated_at))),
        ("version".to_owned(), n(view.version)),
        ("state".to_owned(), s(state)),
    ]))
}

/// Every attribute as stored, not derived from `state`: a comparison sees a tampered field.
pub fn view_of(item: &Item) -> Result<View, StoreError> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("view {what}: {e}"));
    let time = |name: &str| -> Result<DateTime<Utc>, StoreError> {
        let raw = get_s(item, name)?;
        DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|e| corrupt(name, &e))
    };
    let state: Order = serde_json::from_str(get_s(item, "state")?).map_err(|e| corrupt("state", &e))?;
    Ok(View {
        order_id: get_s(item, "orderId")?.parse::<OrderId>().map_err(|e| corrupt("orderId", &e))?,
        customer_id: CustomerId(get_s(item, "customerId")?.to_owned()),
        list_key: get_s(item, "listKey")?.to_owned(),
        status: serde_json::from_value(serde_json::Value::String(get_s(item, "status")?.to_owned()))
            .map_err(|e| corrupt("status", &e))?,
        total: get_n(item, "total")?,
        currency: get_s(item, "currency")?.parse().map_err(|e| corrupt("currency", &e))?,
        opened_at: time("openedAt")?,
        updated_at: time("updatedAt")?,
        version: get_n(item, "version")?,
        state,
    })
}

fn page_key_item(key: &PageKey) -> Item {
    Item::from([
        ("customerId".to_owned(), s(key.customer_id.as_str())),
        ("listKey".to_owned(), s(&key.list_key)),
        ("orderId".to_owned(), s(key.order_id.to_string())),
    ])
}

#[async_trait]
impl ViewStore for DynamoViews {
    async fn get(&self, id: OrderId) -> Result<Option<View>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(view_of).transpose()
    }

    async fn put_if(&self, view: &View, previous: u32) -> Result<Saved, StoreError> {
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item_of(view)?));
        let put = if previous == 0 {
            put.condition_expression("attribute_not_exists(orderId)")
        } else {
            put.condition_expression("version = :previous").expression_attribute_values(":previous", n(previous))
        };
        match put.send().await {
            Ok(_) => Ok(Saved::Written),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(Saved::Moved)
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

#[async_trait]
impl CustomerViews for DynamoViews {
    async fn page(&self, customer: &CustomerId, limit: usize, after: Option<&PageKey>) -> Result<Page, StoreError> {
        // One more than asked, to know whether another page follows (see Page::from_overfetch).
        // A Query also stops at 1 MB, so keep going until enough or the end.
        let want = limit + 1;
        let mut views = Vec::with_capacity(want);
        let mut start = after.map(page_key_item);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CUSTOMER)
                .key_condition_expression("customerId = :customer")
                .expression_attribute_values(":customer", s(customer.as_str()))
                .scan_index_forward(false)
                .limit(i32::try_from(want - views.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                views.push(view_of(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() && views.len() < want => start = Some(key.clone()),
                _ => return Ok(Page::from_overfetch(views, limit)),
            }
        }
    }
}

/// `BatchWriteItem` takes at most 25 requests per call.
const MAX_BATCH_WRITES: usize = 25;

#[async_trait]
impl ViewTable for DynamoViews {
    async fn scan(&self) -> Result<Scanned, StoreError> {
        let mut found = Scanned::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let id = item.get("orderId").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                found.insert(id, view_of(item));
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }

    async fn put_all(&self, views: &[View]) -> Result<(), StoreError> {
        for chunk in views.chunks(MAX_BATCH_WRITES) {
            let mut requests = Vec::with_capacity(chunk.len());
            for view in chunk {
                let put = PutRequest::builder().set_item(Some(item_of(view)?)).build().map_err(build_error)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            batch_write(&self.client, &self.table, requests, Backoff::BACKGROUND).await?;
        }
        Ok(())
    }
}

/// The event store (OrdersTable), read whole for the rebuild.
pub struct DynamoEventLog {
    pub client: Client,
    pub orders_table: String,
}

#[async_trait]
impl EventLog for DynamoEventLog {
    async fn histories(&self) -> Result<Histories, StoreError> {
        let mut histories = Histories::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.orders_table)
                .consistent_read(true)
                // Events only: version 0 is the open-order marker.
                .filter_expression("version > :marker")
                .expression_attribute_values(":marker", n(0))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                add(&mut histories, item)?;
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        // A Scan's order within an order's items is not promised: sort by version.
        for history in histories.values_mut().flat_map(|h| h.as_mut().ok()) {
            history.sort_by_key(|r| r.version);
        }
        Ok(histories)
    }
}

/// Adds one event item to its order's history; an unreadable event spoils only its order. An
/// item whose order ID cannot be read belongs to no order: the whole scan fails, loudly.
fn add(histories: &mut Histories, item: &Item) -> Result<(), StoreError> {
    let order_id: OrderId =
        get_s(item, "orderId")?.parse().map_err(|e| StoreError::Corrupt(format!("an event item's orderId: {e}")))?;
    let entry = histories.entry(order_id).or_insert_with(|| Ok(Vec::new()));
    match (crate::record::event_of(item), entry) {
        (Ok((_, recorded)), Ok(history)) => history.push(recorded),
        (Err(e), entry) => *entry = Err(e),
        (Ok(_), Err(_)) => {}
    }
    Ok(())
}

/// Creates `fresh` with `live`'s key schema, attribute definitions and global secondary
/// indexes (on demand, encrypted as `live` is), unless it exists; waits until it is active.
/// Answers whether it created the table.
pub async fn create_like(client: &Client, live: &str, fresh: &str) -> Result<bool, StoreError> {
    match client.describe_table().table_name(fresh).send().await {
        Ok(_) => return Ok(false),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(store_error(e)),
    }
    let described = client.describe_table().table_name(live).send().await.map_err(store_error)?;
    let table = described.table().ok_or_else(|| StoreError::Corrupt(format!("{live} has no description")))?;
    let mut indexes = Vec::new();
    for index in table.global_secondary_indexes() {
        let built = GlobalSecondaryIndex::builder()
            .set_index_name(index.index_name().map(str::to_owned))
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()
            .map_err(build_error)?;
        indexes.push(built);
    }
    let encrypted = table.sse_description().is_some();
    client
        .create_table()
        .table_name(fresh)
        .set_attribute_definitions(Some(table.attribute_definitions().to_vec()))
        .set_key_schema(Some(table.key_schema().to_vec()))
        .set_global_secondary_indexes(Some(indexes).filter(|i| !i.is_empty()))
        .billing_mode(BillingMode::PayPerRequest)
        .set_sse_specification(encrypted.then(|| SseSpecification::builder().enabled(true).build()))
        .send()
        .await
        .map_err(store_error)?;
    wait_until_active(client, fresh).await?;
    Ok(true)
}

async fn wait_until_active(client: &Client, table: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let out = client.describe_table().table_name(table).send().await.map_err(store_error)?;
        let status = out.table().and_then(|t| t.table_status());
        let indexes_active = out.table().is_none_or(|t| {
            t.global_secondary_indexes()
                .iter()
                .all(|i| i.index_status() == Some(&aws_sdk_dynamodb::types::IndexStatus::Active))
        });
        if status == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!("table {table} did not become active within a minute")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{Currency, Money, OrderEvent};

    fn view() -> View {
        let event = OrderEvent::Opened {
            customer_id: "c-1".into(),
            lines: vec![],
            total: Money::new(4200, Currency::GBP),
            at: "2026-03-04T05:06:07.123456Z".parse().unwrap(),
            correlation_id: "corr".into(),
        };
        View::of(Order::open(OrderId::new(), &event).unwrap())
    }

    #[test]
    fn a_view_round_trips_through_its_item() {
        let view = view();
        assert_eq!(view_of(&item_of(&view).unwrap()), Ok(view));
    }

    #[test]
    fn a_tampered_display_field_reads_back_as_stored() {
        let mut item = item_of(&view()).unwrap();
        item.insert("status".into(), s("DELIVERED"));
        let read = view_of(&item).unwrap();
        assert_ne!(read, View::of(read.state.clone()), "the comparison sees the tampered status");
    }

    #[test]
    fn an_item_with_an_unknown_status_or_broken_state_is_corrupt() {
        for (name, value) in [("status", s("LOST")), ("state", s("{")), ("currency", s("XXX")), ("total", s("1"))] {
            let mut item = item_of(&view()).unwrap();
            item.insert(name.into(), value);
            assert!(matches!(view_of(&item), Err(StoreError::Corrupt(_))), "{name}");
        }
    }
}
