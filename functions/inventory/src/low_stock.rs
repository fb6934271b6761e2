//! The low-stock rule and the identity of its events (pure).

use crate::Level;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use shared::domain::{EventId, Sku};
use shared::events::{Envelope, EventData, LowStockV1};
use std::collections::HashMap;
use ulid::Ulid;

/// A `low-stock` event for every SKU of the order whose available stock is below its
/// threshold; `order` is the event that placed it.
pub fn warnings<D>(order: &Envelope<D>, skus: &[Sku], levels: &HashMap<Sku, Level>) -> Vec<Envelope<LowStockV1>> {
    skus.iter()
        .filter_map(|sku| {
            let level = levels.get(sku)?;
            let threshold = level.threshold.filter(|t| level.available < *t)?;
            let data = LowStockV1 { sku: sku.clone(), available: level.available, threshold };
            Some(Envelope {
                event_id: derived_id(order.event_id, order.occurred_at, sku),
                event_type: LowStockV1::TYPE.to_owned(),
                version: LowStockV1::VERSION,
                // The order's time, not the publishing attempt's: a retry rebuilds the same event.
                occurred_at: order.occurred_at,
                correlation_id: order.correlation_id.clone(),
                order_id: order.order_id,
                order_version: order.order_version,
                data,
            })
        })
        .collect()
}

/// The same (source event, SKU) always yields the same id, so a republished warning is a
/// duplicate its consumers drop. A ULID keeps ids sortable by time like every other event id:
/// the source event's timestamp, and 80 bits of SHA-256("<eventId>:<sku>") as its randomness.
pub fn derived_id(source: EventId, at: DateTime<Utc>, sku: &Sku) -> EventId {
    let digest = Sha256::digest(format!("{source}:{sku}").as_bytes());
    let mut bits = [0u8; 16];
    bits.copy_from_slice(&digest[..16]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    EventId(Ulid::from_parts(millis, u128::from_be_bytes(bits)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::order_placed;

    fn levels(entries: &[(&str, i64, Option<i64>)]) -> HashMap<Sku, Level> {
        entries
            .iter()
            .map(|(sku, available, threshold)| ((*sku).into(), Level { available: *available, threshold: *threshold }))
            .collect()
    }

    #[test]
    fn the_same_event_and_sku_always_derive_the_same_id() {
        let order = order_placed("ada", &[("MUG", 1, 1250)]);
        let sku = Sku::from("MUG");
        assert_eq!(
            derived_id(order.event_id, order.occurred_at, &sku),
            derived_id(order.event_id, order.occurred_at, &sku)
        );
    }

    #[test]
    fn ids_differ_per_sku_and_per_source_event() {
        let (a, b) = (order_placed("ada", &[]), order_placed("ada", &[]));
        let mug = derived_id(a.event_id, a.occurred_at, &"MUG".into());
        assert_ne!(mug, derived_id(a.event_id, a.occurred_at, &"TEE".into()));
        assert_ne!(mug, derived_id(b.event_id, a.occurred_at, &"MUG".into()));
    }

    #[test]
    fn a_derived_id_sorts_by_the_source_events_time() {
        let order = order_placed("ada", &[]);
        let id = derived_id(order.event_id, order.occurred_at, &"MUG".into());
        assert_eq!(id.0.timestamp_ms() as i64, order.occurred_at.timestamp_millis());
    }

    #[test]
    fn only_skus_below_their_threshold_are_reported() {
        let order = order_placed("ada", &[("CAP", 1, 1800), ("MUG", 1, 1250), ("TEE", 1, 2000), ("NEW", 1, 100)]);
        let skus: Vec<Sku> = order.data.lines.iter().map(|l| l.sku.clone()).collect();
        let found = levels(&[("CAP", 2, Some(3)), ("MUG", 10, Some(10)), ("TEE", 0, None)]);
        let warned: Vec<LowStockV1> = warnings(&order, &skus, &found).into_iter().map(|e| e.data).collect();
        assert_eq!(warned, vec![LowStockV1 { sku: "CAP".into(), available: 2, threshold: 3 }]);
    }

    #[test]
    fn a_warning_carries_the_orders_ids_and_time() {
        let order = order_placed("ada", &[("CAP", 1, 1800)]);
        let warning = warnings(&order, &["CAP".into()], &levels(&[("CAP", 0, Some(3))])).remove(0);
        assert_eq!(
            (warning.order_id, &warning.correlation_id, warning.occurred_at),
            (order.order_id, &order.correlation_id, order.occurred_at)
        );
        assert_eq!((warning.event_type.as_str(), warning.version), ("inventory.low-stock", 1));
    }
}
