//! Rebuild: the views re-folded from the whole event store into a fresh table, and how the
//! live views differ from them. The fresh table proves the fold; the report tells whether the
//! live projection (maintained event by event) drifted.
//!
//! A live view behind the event store by events still in the stream shows as differing: on a
//! busy system, compare again (or when quiet) before concluding that the projector is wrong.

use crate::dynamo::{create_like, DynamoEventLog, DynamoViews};
use crate::ports::{EventLog, ViewTable};
use crate::view::View;
use serde::Serialize;
use shared::config::{Env, MissingEnv};
use shared::domain::Order;
use shared::ports::StoreError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildReport {
    /// Orders in the event store.
    pub orders: usize,
    /// Views written into the fresh table.
    pub written: usize,
    /// Live views equal to their rebuilt view.
    pub identical: usize,
    /// Orders whose live view differs from the rebuilt one (or cannot be read).
    pub differing: Vec<String>,
    /// Orders with a rebuilt view and no live one.
    pub missing_from_live: Vec<String>,
    /// Live views of orders the event store does not have.
    pub extra_in_live: Vec<String>,
    /// Orders whose history cannot be folded (an unreadable item, an illegal transition):
    /// no view was written for them; the log says why.
    pub unfoldable: Vec<String>,
}

impl RebuildReport {
    /// Whether the live views are exactly the rebuilt ones.
    pub fn matches(&self) -> bool {
        self.differing.is_empty()
            && self.missing_from_live.is_empty()
            && self.extra_in_live.is_empty()
            && self.unfoldable.is_empty()
    }
}

/// Folds every order of `events` into `fresh`, then compares `live` with the result.
pub async fn rebuild<L: EventLog + ?Sized, F: ViewTable + ?Sized, V: ViewTable + ?Sized>(
    events: &L,
    fresh: &F,
    live: &V,
) -> Result<RebuildReport, StoreError> {
    let histories = events.histories().await?;
    let mut report = RebuildReport { orders: histories.len(), ..RebuildReport::default() };
    let mut rebuilt = BTreeMap::new();
    for (id, history) in histories {
        let folded = history
            .map_err(|e| e.to_string())
            .and_then(|h| Order::replay(id, h.iter().map(|r| &r.event)).map_err(|e| e.to_string()));
        match folded {
            Ok(Some(order)) => {
                rebuilt.insert(id.to_string(), View::of(order));
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(order_id = %id, %error, "order history cannot be folded");
                report.unfoldable.push(id.to_string());
            }
        }
    }
    let views: Vec<View> = rebuilt.values().cloned().collect();
    fresh.put_all(&views).await?;
    report.written = views.len();

    let mut live = live.scan().await?;
    for (id, view) in &rebuilt {
        match live.remove(id) {
            None => report.missing_from_live.push(id.clone()),
            Some(Ok(stored)) if &stored == view => report.identical += 1,
            Some(_) => report.differing.push(id.clone()),
        }
    }
    // What is left in live has no rebuilt view; an unfoldable order is reported as such already.
    report.extra_in_live = live.into_keys().filter(|id| !report.unfoldable.contains(id)).collect();
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Env(#[from] MissingEnv),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("refusing to rebuild into the live views table {0}: name a fresh one")]
    IntoLive(String),
}

/// The rebuild on AWS: from ORDERS_TABLE into `into` (created like ORDER_VIEWS_TABLE if it does
/// not exist), compared with ORDER_VIEWS_TABLE.
pub async fn run(env: &Env, aws: &aws_config::SdkConfig, into: &str) -> Result<RebuildReport, RebuildError> {
    let client = shared::config::dynamodb(aws);
    let live = env.get("ORDER_VIEWS_TABLE")?;
    if into == live {
        return Err(RebuildError::IntoLive(live));
    }
    let events = DynamoEventLog { client: client.clone(), orders_table: env.get("ORDERS_TABLE")? };
    if create_like(&client, &live, into).await? {
        tracing::info!(table = into, like = %live, "created the fresh views table");
    }
    let report = rebuild(&events, &DynamoViews::new(client.clone(), into), &DynamoViews::new(client, live)).await?;
    Ok(report)
}
