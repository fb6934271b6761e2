//! `orders show` (an order's state and history, folded from the event store by the domain's
//! own `Order::replay`) and `projections rebuild` (the read model re-folded into a fresh
//! table, the library behind `rebuild-order-views`).

use crate::error::{self, Failure};
use crate::report::{progress, Done};
use crate::target::Target;
use shared::adapters::dynamodb::{DynamoShop, ShopTables};
use shared::config::Env;
use shared::domain::{Order, OrderId};
use shared::ports::OrderStore;

/// `orders show <id>`: the order as `GET /orders/{id}` shows it and its events as
/// `GET /orders/{id}/events` does, read from the orders table directly (no API, no token).
pub async fn show(target: &Target, id: &str) -> Result<Done, Failure> {
    let order_id: OrderId = id.trim().parse().map_err(|_| {
        Failure::refused(format!(
            "{id:?} is not an order ID: order IDs are ULIDs, 26 characters like 01J9Z3K4QH5X6Y7Z8A9BCDEFGH"
        ))
    })?;
    let tables = ShopTables {
        products: target.output("ProductsTableName")?.to_owned(),
        orders: target.output("OrdersTableName")?.to_owned(),
        outbox: target.output("OutboxTableName")?.to_owned(),
    };
    let orders_table = tables.orders.clone();
    let shop = DynamoShop::new(shared::config::dynamodb(&target.aws), tables);
    let history = shop.history(order_id).await.map_err(|e| {
        Failure::failed(format!("reading the history of order {order_id} from {orders_table} failed: {e}"))
    })?;
    if history.is_empty() {
        return Err(Failure::failed(format!(
            "no order {order_id} in {} (table {orders_table}): check the ID and the target (--stack / --local)",
            target.describe()
        )));
    }
    let order = Order::replay(order_id, history.iter().map(|r| &r.event))
        .map_err(|e| {
            Failure::failed(format!(
                "the {} event(s) of order {order_id} cannot be folded ({e}): the event store holds an illegal history; \
                 see them with `aws dynamodb query` on {orders_table}",
                history.len()
            ))
        })?
        .ok_or_else(|| Failure::failed(format!("no order {order_id}")))?;
    let events = checkout::view::history_view(order_id, &history)["events"].clone();
    let json = serde_json::json!({
        "target": target.json(),
        "order": checkout::view::order_view(&order),
        "events": events,
    });
    Ok(Done::new(json, text(&order, &history)))
}

fn text(order: &Order, history: &[shared::domain::Recorded]) -> String {
    let mut text = format!(
        "order {} {} (version {}), customer {}\n  total {} {} (minor units), opened {}, updated {}\n",
        order.id,
        order.status.as_str(),
        order.version,
        order.customer_id,
        order.total.amount,
        order.total.currency.code(),
        order.opened_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        order.updated_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    for line in &order.lines {
        text += &format!("  {} x {} at {}\n", line.quantity, line.sku, line.unit_price.amount);
    }
    if let Some(shipment) = &order.shipment {
        text += &format!("  shipped with {} ({})\n", shipment.carrier, shipment.tracking_id);
    }
    if let Some(reason) = &order.cancel_reason {
        text += &format!("  cancelled: {}\n", serde_json::to_string(reason).unwrap_or_default());
    }
    if let Some(refund) = &order.refund {
        text += &format!("  refunded {} ({})\n", refund.amount.amount, refund.refund_id);
    }
    text += "history:\n";
    for recorded in history {
        text += &format!(
            "  v{:<3} {}  {:<16} correlation {}\n",
            recorded.version,
            recorded.event.at().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            recorded.event.name(),
            if recorded.correlation_id.is_empty() { "-" } else { &recorded.correlation_id }
        );
    }
    text.trim_end().to_owned()
}

/// `projections rebuild`: every order of the event store folded into `into` (created like the
/// live views table if it does not exist; by default a new table named after the live one and
/// the time), compared with the live views. With `check`, differences exit 1.
pub async fn rebuild(target: &Target, into: Option<&str>, check: bool) -> Result<Done, Failure> {
    let live = target.output("OrderViewsTableName")?.to_owned();
    let orders = target.output("OrdersTableName")?.to_owned();
    let into = into.map(str::to_owned).unwrap_or_else(|| default_into(&live, chrono::Utc::now()));
    let env = Env([("ORDERS_TABLE".to_owned(), orders.clone()), ("ORDER_VIEWS_TABLE".to_owned(), live.clone())].into());
    progress(format!(
        "folding every order of {orders} into {into} (created like {live} if new), then comparing with {live}..."
    ));
    let report = order_views::rebuild::run(&env, &target.aws, &into).await.map_err(|e| match e {
        order_views::rebuild::RebuildError::IntoLive(table) => Failure::refused(format!(
            "refusing to rebuild into the live views table {table}: name a fresh table with --into (or leave it out)"
        )),
        other => Failure::failed(format!("rebuilding the read model failed: {other}")),
    })?;
    let matches = report.matches();
    let mut text = format!(
        "{} order(s) in the event store, {} view(s) written into {into}; {} identical to the live views in {live}",
        report.orders, report.written, report.identical
    );
    for (what, ids) in [
        ("differ from the rebuilt view", &report.differing),
        ("missing from the live views", &report.missing_from_live),
        ("in the live views but not in the event store", &report.extra_in_live),
        ("with a history that cannot be folded (see the log)", &report.unfoldable),
    ] {
        if !ids.is_empty() {
            text += &format!("\n{} order(s) {what}: {}", ids.len(), ids.join(", "));
        }
    }
    text += &if matches {
        "\nThe live read model matches the event store.".to_owned()
    } else {
        "\nThe live views differ (on a busy system, events still in the stream show as differences: compare again \
         before concluding the projector is wrong)."
            .to_owned()
    };
    let json =
        serde_json::json!({"target": target.json(), "into": into, "live": live, "matches": matches, "report": report});
    Ok(Done::new(json, text).with_exit(if check && !matches { error::EXIT_FAILED } else { 0 }))
}

/// `<live>-rebuild-<UTC time>`: a fresh table each time, within DynamoDB's 255 characters.
fn default_into(live: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let suffix = format!("-rebuild-{}", now.format("%Y%m%dT%H%M%SZ"));
    let keep = 255 - suffix.len();
    format!("{}{suffix}", &live[..live.len().min(keep)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rebuild_table_is_named_after_the_live_one_and_the_time() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(default_into("shop-OrderViewsTable-X", now), "shop-OrderViewsTable-X-rebuild-20260304T050607Z");
        assert_eq!(default_into(&"t".repeat(300), now).len(), 255);
    }
}
