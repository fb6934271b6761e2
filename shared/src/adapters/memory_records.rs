//! Order records of the out-of-order rule in memory, with the DynamoDB adapter's semantics: a
//! write succeeds only over the revision it was derived from, else `Conflict`.
//!
//! A consumer's in-memory store embeds a [`RecordTable`] in the state it guards with one lock,
//! checks the record with its other conditions, then applies everything: one transaction, as
//! in DynamoDB. [`MemoryOrderRecords`] is the table on its own, for an effect outside DynamoDB.

use crate::domain::OrderId;
use crate::out_of_order::{record_key, OrderRecord, OrderRecords};
use crate::ports::StoreError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default, Clone)]
pub struct RecordTable {
    records: HashMap<String, OrderRecord>,
}

impl RecordTable {
    pub fn get(&self, consumer: &'static str, order_id: OrderId) -> OrderRecord {
        let stored = self.records.get(&record_key(consumer, order_id)).cloned();
        stored.unwrap_or_else(|| OrderRecord::empty(consumer, order_id))
    }

    /// The condition of the write: `next` follows the stored revision (or nothing is stored
    /// and `next` is the first).
    pub fn check(&self, next: &OrderRecord) -> Result<(), StoreError> {
        let stored = self.records.get(&next.key()).map_or(0, |r| r.revision);
        if stored == next.previous_revision() {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!("record {} is at revision {stored}", next.key())))
        }
    }

    /// Writes `next` unconditionally: call [`RecordTable::check`] first.
    pub fn put(&mut self, next: OrderRecord) {
        self.records.insert(next.key(), next);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Each call yields once, as a network round trip would, so that concurrent deliveries
/// really interleave.
#[derive(Default)]
pub struct MemoryOrderRecords {
    table: Mutex<RecordTable>,
}

impl MemoryOrderRecords {
    pub fn get(&self, consumer: &'static str, order_id: OrderId) -> OrderRecord {
        self.table.lock().unwrap().get(consumer, order_id)
    }
}

#[async_trait]
impl OrderRecords for MemoryOrderRecords {
    async fn load(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.get(consumer, order_id))
    }

    async fn save(&self, record: &OrderRecord) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let mut table = self.table.lock().unwrap();
        table.check(record)?;
        table.put(record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::{ConsumerError, Delivery, Outcome};
    use crate::out_of_order::{once_in_order, Stage, Stages};
    use crate::ports::{ErrorKind, Kind};
    use std::sync::atomic::{AtomicU32, Ordering};

    const NOW: i64 = 1_800_000_000_000;

    fn at(now_ms: i64) -> Delivery {
        Delivery { message_id: "m".into(), receive_count: 1, now_ms, deadline_ms: now_ms + 10_000 }
    }

    #[tokio::test]
    async fn a_write_over_a_stale_revision_is_a_conflict_and_changes_nothing() {
        let records = MemoryOrderRecords::default();
        let read = records.load("t", OrderId::new()).await.unwrap();
        records.save(&read.applying(Stage::Placed, &at(NOW))).await.unwrap();
        let stale = read.applying(Stage::Cancelled, &at(NOW));
        assert_eq!(records.save(&stale).await.map_err(|e| e.kind()), Err(ErrorKind::Conflict));
        assert_eq!(records.get("t", read.order_id).applied, [Stage::Placed].into_iter().collect::<Stages>());
    }

    /// Counts effects and remembers what each was told had been applied before.
    #[derive(Default)]
    struct Effects {
        runs: AtomicU32,
        before: Mutex<Vec<Stages>>,
    }

    impl Effects {
        async fn run(&self, before: Stages, fail: bool) -> Result<(), ConsumerError> {
            tokio::task::yield_now().await;
            if fail {
                return Err(ConsumerError::Effect("injected".into()));
            }
            self.runs.fetch_add(1, Ordering::SeqCst);
            self.before.lock().unwrap().push(before);
            Ok(())
        }
    }

    async fn deliver(
        records: &MemoryOrderRecords,
        effects: &Effects,
        order: OrderId,
        stage: Stage,
        now: i64,
        fail: bool,
    ) -> Result<Outcome, ConsumerError> {
        once_in_order(records, "t", order, stage, &at(now), |before| effects.run(before, fail)).await
    }

    #[tokio::test]
    async fn an_effect_runs_once_per_stage_and_records_it() {
        let (records, effects, order) = (MemoryOrderRecords::default(), Effects::default(), OrderId::new());
        assert_eq!(deliver(&records, &effects, order, Stage::Placed, NOW, false).await, Ok(Outcome::Processed));
        assert_eq!(deliver(&records, &effects, order, Stage::Placed, NOW, false).await, Ok(Outcome::DuplicateSkipped));
        assert_eq!(effects.runs.load(Ordering::SeqCst), 1);
        let record = records.get("t", order);
        assert_eq!((record.applied, record.lease_until_ms), ([Stage::Placed].into_iter().collect(), None));
    }

    #[tokio::test]
    async fn placed_after_the_cancellation_runs_no_effect() {
        let (records, effects, order) = (MemoryOrderRecords::default(), Effects::default(), OrderId::new());
        deliver(&records, &effects, order, Stage::Cancelled, NOW, false).await.unwrap();
        assert_eq!(deliver(&records, &effects, order, Stage::Placed, NOW, false).await, Ok(Outcome::Superseded));
        assert_eq!(*effects.before.lock().unwrap(), vec![Stages::NONE]);
    }

    #[tokio::test]
    async fn the_effect_is_told_what_was_applied_before_it() {
        let (records, effects, order) = (MemoryOrderRecords::default(), Effects::default(), OrderId::new());
        deliver(&records, &effects, order, Stage::Placed, NOW, false).await.unwrap();
        deliver(&records, &effects, order, Stage::Cancelled, NOW, false).await.unwrap();
        assert_eq!(*effects.before.lock().unwrap(), vec![Stages::NONE, [Stage::Placed].into_iter().collect()]);
    }

    #[tokio::test]
    async fn a_failed_effect_releases_the_order_so_the_retry_runs_it() {
        let (records, effects, order) = (MemoryOrderRecords::default(), Effects::default(), OrderId::new());
        let failed = deliver(&records, &effects, order, Stage::Placed, NOW, true).await;
        assert_eq!(failed.map_err(|e| e.kind()), Err(ErrorKind::Transient));
        assert!(!records.get("t", order).is_leased(NOW));
        assert_eq!(deliver(&records, &effects, order, Stage::Placed, NOW, false).await, Ok(Outcome::Processed));
    }

    #[tokio::test]
    async fn while_one_event_of_an_order_is_applied_another_is_told_to_come_back() {
        let (records, effects, order) = (MemoryOrderRecords::default(), Effects::default(), OrderId::new());
        let read = records.load("t", order).await.unwrap();
        records.save(&read.leased(&at(NOW))).await.unwrap();
        let held = deliver(&records, &effects, order, Stage::Cancelled, NOW + 1, false).await;
        assert_eq!(held, Err(ConsumerError::HeldElsewhere));
        // Once the lease lapses (the holder died), the order is free again.
        let after = deliver(&records, &effects, order, Stage::Cancelled, NOW + 10_001, false).await;
        assert_eq!(after, Ok(Outcome::Processed));
    }

    #[tokio::test]
    async fn an_effect_whose_order_was_taken_over_before_it_was_recorded_says_come_back_later() {
        let (records, order, delivery) = (MemoryOrderRecords::default(), OrderId::new(), at(NOW));
        let slow = once_in_order(&records, "t", order, Stage::Placed, &delivery, |_| async {
            // The lease lapses while the effect runs; another delivery takes the order.
            let read = records.load("t", order).await?;
            records.save(&read.leased(&at(NOW + 10_001))).await?;
            Ok(())
        });
        // Not a conflict (retried at once, it would run the effect again right away).
        assert_eq!(slow.await, Err(ConsumerError::HeldElsewhere));
    }

    #[tokio::test]
    async fn two_concurrent_events_of_one_order_run_one_at_a_time() {
        let (records, effects, order) = (MemoryOrderRecords::default(), Effects::default(), OrderId::new());
        let (a, b) = futures::join!(
            deliver(&records, &effects, order, Stage::Placed, NOW, false),
            deliver(&records, &effects, order, Stage::Cancelled, NOW, false)
        );
        let held = [&a, &b]
            .iter()
            .filter(|r| {
                matches!(r, Err(ConsumerError::HeldElsewhere) | Err(ConsumerError::Store(StoreError::Conflict(_))))
            })
            .count();
        assert_eq!((effects.runs.load(Ordering::SeqCst), held), (1, 1), "{a:?} {b:?}");
    }
}
