//! The consumer harness: every consumer is only its business logic; this module turns an SQS
//! batch (each message an EventBridge event) into typed events, runs the consumer on each, and
//! answers with the partial batch response, so only failed messages come back.
//!
//! Outcomes, logged once per record with `eventId`, `orderId`, `correlationId` and the consumer:
//! - `processed`: the effect happened now;
//! - `duplicate-skipped`: the event was processed before (at-least-once delivery, replays);
//! - `superseded-skipped`: the order's cancellation arrived first and voids this event
//!   ([`crate::out_of_order`]);
//! - `dead-lettered`: retrying cannot help: a poison message (not an event this consumer
//!   knows: unparseable, an unknown type, a version older than any it reads) or a failure of
//!   kind `permanent`. It is sent
//!   at once to the consumer's dead-letter queue (its body and message attributes intact, plus
//!   `ErrorKind` and `ErrorReason` attributes) and reported handled, so SQS deletes it from the
//!   source queue instead of spending its receives;
//! - `failed`: a fault retrying may cure; the message returns after the visibility timeout, and
//!   after `maxReceiveCount` receives SQS moves it to the consumer's dead-letter queue; logged
//!   with its `error_kind` (`transient`, `conflict`, `rejected`). An event in a version newer
//!   than the consumer reads is `failed` (`transient`), not poison: its producer was deployed
//!   before the consumer that reads it, which a retry may find in place. A message that should have
//!   been dead-lettered but whose send to the DLQ failed is `failed` too (`error_kind =
//!   "permanent"`): it reaches the DLQ the slow way, never lost.
//!
//! Metrics, one EMF line per batch (service = the consumer's [`Consumer::NAME`]), counted here
//! where each record's fate is decided so that no consumer can forget them ([`BatchMetrics`]):
//! `EventsProcessed` (processed, and superseded: handled, nothing was due), `EventsDuplicate`,
//! `EventsPoison` (whether or not the DLQ took it), `EventsFailed` by `errorKind` (retried ones,
//! and `permanent` ones, dead-lettered) and `EventAgeMilliseconds`, each event's now −
//! `occurredAt`: the end-to-end lag a customer feels.

use crate::events::{Accepts, Envelope};
use crate::ports::{DeadLetters, ErrorKind, Kind, Lease, Marker, ProcessedEvents, StoreError};
use crate::retry::{on_conflict, Backoff};
use crate::telemetry::{Metrics, Unit};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;

/// Markers outlive EventBridge retries (24 h) and archive replays (30-day retention).
pub const MARKER_TTL_SECONDS: i64 = 35 * 24 * 60 * 60;

/// One delivery of one message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: String,
    pub receive_count: u32,
    pub now_ms: i64,
    /// When the invocation must be done: the lease of an external effect ends here.
    pub deadline_ms: i64,
}

impl Delivery {
    pub fn marker(&self, consumer: &'static str, event_id: crate::domain::EventId) -> Marker {
        Marker { consumer, event_id, expires_at: self.now_ms / 1000 + MARKER_TTL_SECONDS }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    DuplicateSkipped,
    /// The order was cancelled before this event arrived: nothing is due ([`crate::out_of_order`]).
    Superseded,
}

impl From<crate::ports::Applied> for Outcome {
    fn from(applied: crate::ports::Applied) -> Self {
        match applied {
            crate::ports::Applied::Done => Outcome::Processed,
            crate::ports::Applied::AlreadyProcessed => Outcome::DuplicateSkipped,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("effect failed: {0}")]
    Effect(String),
    #[error("another delivery of this event is being processed")]
    HeldElsewhere,
    /// Retrying cannot help (a customer record that does not exist, an order that can never
    /// be applied): the message goes to the dead-letter queue at once.
    #[error("{0}")]
    Permanent(String),
}

impl Kind for ConsumerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConsumerError::Store(e) => e.kind(),
            // An effect outside DynamoDB (SES, ...) failed: redelivery may cure it.
            ConsumerError::Effect(_) => ErrorKind::Transient,
            // Another delivery holds the lease: once it completes or lapses, redelivery skips or runs.
            ConsumerError::HeldElsewhere => ErrorKind::Transient,
            ConsumerError::Permanent(_) => ErrorKind::Permanent,
        }
    }
}

/// A concern that reacts to one kind of event, or to a set of them ([`crate::event_set!`]).
#[async_trait::async_trait]
pub trait Consumer: Send + Sync {
    type Event: Accepts + Send + Sync;
    /// Names the consumer in logs and in its processed-event markers.
    const NAME: &'static str;
    async fn handle(&self, event: &Envelope<Self::Event>, delivery: &Delivery) -> Result<Outcome, ConsumerError>;
}

/// Why a message is not an event the consumer can read.
#[derive(Debug, thiserror::Error)]
enum Poison {
    #[error("message has no body")]
    NoBody,
    #[error("body is not an EventBridge event: {0}")]
    NotEventBridge(serde_json::Error),
    #[error(transparent)]
    Event(#[from] crate::events::EventError),
}

impl Kind for Poison {
    fn kind(&self) -> ErrorKind {
        match self {
            Poison::Event(crate::events::EventError::Newer { .. }) => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

fn parse<D: Accepts>(record: &SqsMessage) -> Result<Envelope<D>, Poison> {
    let body = record.body.as_deref().ok_or(Poison::NoBody)?;
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_str(body).map_err(Poison::NotEventBridge)?;
    Ok(Envelope::from_detail(&event.detail)?)
}

/// Runs `consumer` on every record; the response names only the records that failed.
/// Poison and permanently failing records go to `dead_letters` at once and are not named
/// (so SQS deletes them); if that send fails, they are named failed like any other.
pub async fn handle_batch<C: Consumer>(
    consumer: &C,
    dead_letters: &dyn DeadLetters,
    batch: &SqsEvent,
    now_ms: i64,
    deadline_ms: i64,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut counted = BatchMetrics::default();
    for record in &batch.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let event = match parse::<C::Event>(record) {
            Ok(event) => event,
            Err(unreadable) if unreadable.kind() == ErrorKind::Transient => {
                counted.failed(ErrorKind::Transient);
                tracing::warn!(
                    consumer = C::NAME,
                    message_id,
                    receive_count,
                    outcome = "failed",
                    error_kind = "transient",
                    error = %unreadable,
                    "event not readable yet; it will be retried"
                );
                response.add_failure(message_id);
                continue;
            }
            Err(poison) => {
                counted.poison();
                let span = tracing::error_span!("poison", consumer = C::NAME, message_id, receive_count);
                let reason = format!("poison: {poison}");
                let sending = dead_letter(dead_letters, record, ErrorKind::Permanent, &reason);
                if !tracing::Instrument::instrument(sending, span).await {
                    response.add_failure(message_id);
                }
                continue;
            }
        };
        counted.age(now_ms, event.occurred_at);
        let delivery = Delivery { message_id: message_id.clone(), receive_count, now_ms, deadline_ms };
        let span = tracing::info_span!(
            "event",
            consumer = C::NAME,
            event_id = %event.event_id,
            order_id = %event.order_id,
            correlation_id = %event.correlation_id,
            message_id,
        );
        // A transaction conflict means nothing was applied (and every consumer's effect is guarded
        // by its processed-event marker), so it is retried here, now, with jitter: a conflict
        // never costs the message one of its SQS receives.
        let handled = on_conflict(Backoff::CONFLICT, || consumer.handle(&event, &delivery));
        let result = tracing::Instrument::instrument(handled, span.clone()).await;
        match &result {
            Ok(Outcome::Processed | Outcome::Superseded) => counted.processed(),
            Ok(Outcome::DuplicateSkipped) => counted.duplicate(),
            Err(error) => counted.failed(error.kind()),
        }
        match result {
            Ok(Outcome::Processed) => {
                span.in_scope(|| tracing::info!(outcome = "processed", receive_count, "event processed"))
            }
            Ok(Outcome::DuplicateSkipped) => {
                span.in_scope(|| tracing::info!(outcome = "duplicate-skipped", "event already processed"))
            }
            Ok(Outcome::Superseded) => span.in_scope(|| {
                tracing::info!(outcome = "superseded-skipped", "the order was cancelled before this event arrived")
            }),
            Err(error) if error.kind() == ErrorKind::Permanent => {
                let sent = tracing::Instrument::instrument(
                    dead_letter(dead_letters, record, ErrorKind::Permanent, &error.to_string()),
                    span.clone(),
                )
                .await;
                if !sent {
                    response.add_failure(message_id);
                }
            }
            Err(error) => {
                let error_kind = error.kind().name();
                span.in_scope(|| {
                    tracing::warn!(outcome = "failed", error_kind, receive_count, %error, "event failed; it will be retried")
                });
                response.add_failure(message_id);
            }
        }
    }
    counted.metrics(C::NAME).emit();
    response
}

/// What became of a batch's records, for its one EMF line: the consumer harness counts here,
/// and so does every other batch handler (the order projector), so that they all say the same.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchMetrics {
    processed: u32,
    duplicate: u32,
    poison: u32,
    /// Failures per error kind, in `ErrorKind`'s order.
    failed: Vec<(ErrorKind, u32)>,
    ages_ms: Vec<f64>,
}

impl BatchMetrics {
    /// The effect happened now (or was found not due).
    pub fn processed(&mut self) {
        self.processed += 1;
    }

    /// Applied before: skipped.
    pub fn duplicate(&mut self) {
        self.duplicate += 1;
    }

    /// Not an event this handler can read.
    pub fn poison(&mut self) {
        self.poison += 1;
    }

    pub fn failed(&mut self, kind: ErrorKind) {
        match self.failed.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.failed.push((kind, 1)),
        }
        self.failed.sort_by_key(|(k, _)| *k as u8);
    }

    /// An event that occurred at `occurred_at` is handled at `now_ms`. A clock behind the
    /// producer's counts as no lag, never as a negative one.
    pub fn age(&mut self, now_ms: i64, occurred_at: chrono::DateTime<chrono::Utc>) {
        self.ages_ms.push((now_ms - occurred_at.timestamp_millis()).max(0) as f64);
    }

    /// The batch's metrics: every count, zeros included, so that an alarm sees data each batch;
    /// `EventsFailed` under `[service]` and, per kind, under `[service, errorKind]`.
    pub fn metrics(&self, service: &str) -> Metrics {
        let mut metrics = Metrics::new(service);
        metrics
            .count("EventsProcessed", f64::from(self.processed))
            .count("EventsDuplicate", f64::from(self.duplicate))
            .count("EventsPoison", f64::from(self.poison));
        if self.failed.is_empty() {
            metrics.count("EventsFailed", 0.0);
        }
        for (kind, n) in &self.failed {
            metrics.count_by("EventsFailed", "errorKind", kind.name(), f64::from(*n));
        }
        metrics.values("EventAgeMilliseconds", Unit::Milliseconds, self.ages_ms.iter().copied());
        metrics
    }
}

/// Sends `record` to the dead-letter queue and logs the outcome once; `false` when the send
/// failed and the record must be reported failed (it then reaches the DLQ after its receives).
async fn dead_letter(dead_letters: &dyn DeadLetters, record: &SqsMessage, kind: ErrorKind, reason: &str) -> bool {
    let error_kind = kind.name();
    match dead_letters.send(record, kind, reason).await {
        Ok(()) => {
            tracing::error!(
                outcome = "dead-lettered",
                error_kind,
                error = reason,
                "retrying cannot help; sent to the dead-letter queue"
            );
            true
        }
        Err(send) => {
            tracing::error!(
                outcome = "failed",
                error_kind,
                error = reason,
                dead_letter_error = %send,
                "retrying cannot help, but the dead-letter queue refused it; it reaches the DLQ when its receives run out"
            );
            false
        }
    }
}

/// The Lambda entry point of a consumer: SQS batches in, partial batch responses out. Its
/// dead-letter queue is `DEAD_LETTER_QUEUE_URL` (required), reached with the function's own
/// SDK configuration (loaded once per process).
pub async fn serve<C: Consumer>(
    consumer: C,
    env: &crate::config::Env,
    aws: &aws_config::SdkConfig,
) -> Result<(), lambda_runtime::Error> {
    let dead_letters = crate::adapters::sqs::SqsDeadLetters::from_env(env, aws)?;
    let (consumer, dead_letters) = (&consumer, &dead_letters);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
        let now = chrono::Utc::now().timestamp_millis();
        let deadline = event.context.deadline as i64;
        Ok::<_, lambda_runtime::Error>(handle_batch(consumer, dead_letters, &event.payload, now, deadline).await)
    }))
    .await
}

/// For an effect outside DynamoDB: claim the event under a lease, run the effect, mark it
/// complete; release the claim if the effect fails so the retry runs it. (If the process dies
/// between the effect and `complete`, the lease lapses and the effect may run again: external
/// effects are at-least-once unless the provider takes an idempotency key.)
pub async fn once_with_lease<F, Fut>(
    store: &dyn ProcessedEvents,
    marker: &Marker,
    delivery: &Delivery,
    effect: F,
) -> Result<Outcome, ConsumerError>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<(), ConsumerError>> + Send,
{
    match store.claim(marker, delivery.now_ms, delivery.deadline_ms).await? {
        Lease::AlreadyProcessed => return Ok(Outcome::DuplicateSkipped),
        Lease::HeldElsewhere => return Err(ConsumerError::HeldElsewhere),
        Lease::Acquired => {}
    }
    match effect().await {
        Ok(()) => {
            store.complete(marker).await?;
            Ok(Outcome::Processed)
        }
        Err(e) => {
            if let Err(release) = store.release(marker).await {
                tracing::warn!(error = %release, "could not release the claim; it frees when its lease lapses");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryProcessed;
    use crate::adapters::memory_dlq::MemoryDeadLetters;
    use crate::events::OrderPlacedV2;
    use crate::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Counts effects; fails for orders of customer "fail"; guards its effect with a lease.
    #[derive(Default)]
    struct Counting {
        markers: MemoryProcessed,
        dead_letters: MemoryDeadLetters,
        effects: AtomicU32,
        seen: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Consumer for Counting {
        type Event = OrderPlacedV2;
        const NAME: &'static str = "counting";
        async fn handle(&self, event: &Envelope<OrderPlacedV2>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
            let marker = delivery.marker(Self::NAME, event.event_id);
            once_with_lease(&self.markers, &marker, delivery, || async {
                tokio::task::yield_now().await;
                if event.data.customer_id.as_str() == "fail" {
                    return Err(ConsumerError::Effect("injected".into()));
                }
                self.effects.fetch_add(1, Ordering::SeqCst);
                self.seen.lock().unwrap().push(delivery.message_id.clone());
                Ok(())
            })
            .await
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    async fn deliver(consumer: &Counting, bodies: &[String]) -> Vec<String> {
        failed_ids(&handle_batch(consumer, &consumer.dead_letters, &sqs_batch(bodies), NOW, NOW + 10_000).await)
    }

    fn body(customer: &str) -> String {
        eventbridge_body(&order_placed(customer, &[("MUG", 1, 1250)]))
    }

    #[tokio::test]
    async fn every_good_record_is_processed_and_none_reported_failed() {
        let consumer = Counting::default();
        assert!(deliver(&consumer, &[body("a"), body("b"), body("c")]).await.is_empty());
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_same_event_delivered_twice_has_one_effect() {
        let consumer = Counting::default();
        let once = body("a");
        assert!(deliver(&consumer, std::slice::from_ref(&once)).await.is_empty());
        assert!(deliver(&consumer, &[once]).await.is_empty(), "a duplicate is skipped, not failed");
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_replay_with_a_new_envelope_id_is_still_a_duplicate() {
        let consumer = Counting::default();
        let event = order_placed("a", &[("MUG", 1, 1250)]);
        // eventbridge_body gives each delivery a fresh EventBridge `id`, as an archive replay does.
        deliver(&consumer, &[eventbridge_body(&event)]).await;
        deliver(&consumer, &[eventbridge_body(&event)]).await;
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ten_concurrent_deliveries_of_one_event_have_one_effect() {
        let consumer = Counting::default();
        let once = body("a");
        let deliveries = (0..10).map(|_| deliver(&consumer, std::slice::from_ref(&once)));
        let failed: usize = futures::future::join_all(deliveries).await.iter().map(Vec::len).sum();
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
        // The losers were told to retry (their lease was held); on redelivery they skip.
        assert_eq!(failed, 9);
        assert!(deliver(&consumer, &[once]).await.is_empty());
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failing_record_fails_alone() {
        let consumer = Counting::default();
        let failed = deliver(&consumer, &[body("a"), body("fail"), body("c")]).await;
        assert_eq!(failed, vec!["m1"]);
        assert_eq!(*consumer.seen.lock().unwrap(), vec!["m0", "m2"]);
    }

    #[tokio::test]
    async fn a_failed_effect_releases_its_claim_so_the_retry_runs() {
        let consumer = Counting::default();
        let event = order_placed("fail", &[("MUG", 1, 1250)]);
        deliver(&consumer, &[eventbridge_body(&event)]).await;
        let marker = Delivery { message_id: String::new(), receive_count: 1, now_ms: NOW, deadline_ms: NOW }
            .marker("counting", event.event_id);
        assert_eq!(consumer.markers.claim(&marker, NOW, NOW + 1).await, Ok(Lease::Acquired));
    }

    #[tokio::test]
    async fn poison_records_go_to_the_dlq_at_once_and_the_rest_are_processed() {
        let consumer = Counting::default();
        let mut unknown: serde_json::Value = serde_json::from_str(&body("x")).unwrap();
        unknown["detail"]["type"] = "order.exploded".into();
        let mut too_old: serde_json::Value = serde_json::from_str(&body("y")).unwrap();
        too_old["detail"]["version"] = 0.into();
        let bodies = [body("a"), "not json".to_owned(), unknown.to_string(), too_old.to_string(), body("b")];
        assert!(deliver(&consumer, &bodies).await.is_empty(), "poison is dead-lettered, not retried");
        assert_eq!(consumer.dead_letters.message_ids(), vec!["m1", "m2", "m3"]);
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn given_a_version_newer_than_the_consumer_reads_then_it_is_retried_not_dead_lettered() {
        let consumer = Counting::default();
        let mut newer: serde_json::Value = serde_json::from_str(&body("x")).unwrap();
        newer["detail"]["version"] = 3.into();
        let failed = deliver(&consumer, &[body("a"), newer.to_string()]).await;
        assert_eq!(failed, vec!["m1"], "back to the queue: the consumer that reads it may be deploying");
        assert!(consumer.dead_letters.message_ids().is_empty());
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    /// A consumer whose store answers with `script`'s errors, one per call, then succeeds.
    #[derive(Default)]
    struct Scripted {
        script: Mutex<Vec<ConsumerError>>,
        dead_letters: MemoryDeadLetters,
        calls: AtomicU32,
        effects: AtomicU32,
    }

    impl Scripted {
        fn answering(errors: &[StoreError]) -> Scripted {
            Scripted::failing(&errors.iter().cloned().map(ConsumerError::from).collect::<Vec<_>>())
        }

        fn failing(errors: &[ConsumerError]) -> Scripted {
            let mut script = errors.to_vec();
            script.reverse();
            Scripted { script: Mutex::new(script), ..Scripted::default() }
        }
    }

    #[async_trait::async_trait]
    impl Consumer for Scripted {
        type Event = OrderPlacedV2;
        const NAME: &'static str = "scripted";
        async fn handle(&self, _: &Envelope<OrderPlacedV2>, _: &Delivery) -> Result<Outcome, ConsumerError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.script.lock().unwrap().pop();
            match next {
                Some(error) => Err(error),
                None => {
                    self.effects.fetch_add(1, Ordering::SeqCst);
                    Ok(Outcome::Processed)
                }
            }
        }
    }

    async fn deliver_to(consumer: &Scripted, bodies: &[String]) -> Vec<String> {
        failed_ids(&handle_batch(consumer, &consumer.dead_letters, &sqs_batch(bodies), NOW, NOW + 10_000).await)
    }

    #[test]
    fn consumer_errors_say_what_the_caller_should_do() {
        assert_eq!(ConsumerError::Store(StoreError::Conflict("x".into())).kind(), ErrorKind::Conflict);
        assert_eq!(ConsumerError::Store(StoreError::Unavailable("x".into())).kind(), ErrorKind::Transient);
        assert_eq!(ConsumerError::Store(StoreError::Corrupt("x".into())).kind(), ErrorKind::Permanent);
        assert_eq!(ConsumerError::Effect("x".into()).kind(), ErrorKind::Transient);
        assert_eq!(ConsumerError::HeldElsewhere.kind(), ErrorKind::Transient);
        assert_eq!(ConsumerError::Permanent("x".into()).kind(), ErrorKind::Permanent);
    }

    #[tokio::test]
    async fn conflicts_are_retried_in_process_and_never_cost_a_receive() {
        let conflict = StoreError::Conflict("TransactionConflict".into());
        let consumer = Scripted::answering(&[conflict.clone(), conflict]);
        assert!(deliver_to(&consumer, &[body("a")]).await.is_empty(), "no failure is reported");
        assert_eq!(consumer.calls.load(Ordering::SeqCst), 3);
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_transient_failure_is_reported_failed_without_an_in_process_retry() {
        let consumer = Scripted::answering(&[StoreError::Unavailable("throttled".into())]);
        assert_eq!(deliver_to(&consumer, &[body("a"), body("b")]).await, vec!["m0"]);
        assert_eq!(consumer.calls.load(Ordering::SeqCst), 2, "one call per record: redelivery retries it");
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_dead_lettered_at_once_and_not_retried() {
        let consumer = Scripted::failing(&[ConsumerError::Permanent("customer ghost does not exist".into())]);
        let bodies = [body("a"), body("b")];
        assert!(deliver_to(&consumer, &bodies).await.is_empty(), "reported handled: SQS deletes it");
        assert_eq!(consumer.calls.load(Ordering::SeqCst), 2, "one call per record, no retry in process");
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
        let sent = consumer.dead_letters.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].source_message_id, "m0");
        assert_eq!(sent[0].body.as_deref(), Some(bodies[0].as_str()), "the body is kept intact");
        assert_eq!(sent[0].kind, ErrorKind::Permanent);
        assert_eq!(sent[0].reason, "customer ghost does not exist");
    }

    #[tokio::test]
    async fn a_store_error_of_kind_permanent_is_dead_lettered_too() {
        let consumer = Scripted::answering(&[StoreError::Corrupt("bad item".into())]);
        assert!(deliver_to(&consumer, &[body("a")]).await.is_empty());
        assert_eq!(consumer.calls.load(Ordering::SeqCst), 1);
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 0);
        assert_eq!(consumer.dead_letters.message_ids(), vec!["m0"]);
    }

    #[tokio::test]
    async fn a_permanent_failure_the_dlq_refuses_is_reported_failed_and_never_lost() {
        let consumer = Scripted::failing(&[ConsumerError::Permanent("no such customer".into())]);
        consumer.dead_letters.fail_next(1);
        assert_eq!(deliver_to(&consumer, &[body("a")]).await, vec!["m0"], "it reaches the DLQ after its receives");
        assert!(consumer.dead_letters.sent().is_empty());
    }

    #[tokio::test]
    async fn transient_failures_are_never_dead_lettered_by_the_harness() {
        let consumer =
            Scripted::failing(&[ConsumerError::Effect("SES throttled".into()), ConsumerError::HeldElsewhere]);
        assert_eq!(deliver_to(&consumer, &[body("a"), body("b")]).await, vec!["m0", "m1"]);
        assert!(consumer.dead_letters.sent().is_empty());
    }

    #[tokio::test]
    async fn poison_keeps_its_body_and_message_attributes_in_the_dlq() {
        let consumer = Counting::default();
        let mut batch = sqs_batch(&["not json".to_owned()]);
        let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
        attribute.data_type = Some("String".into());
        attribute.string_value = Some("eu".into());
        batch.records[0].message_attributes.insert("Tenant".into(), attribute);
        assert!(failed_ids(&handle_batch(&consumer, &consumer.dead_letters, &batch, NOW, NOW).await).is_empty());
        let sent = consumer.dead_letters.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body.as_deref(), Some("not json"));
        assert_eq!(sent[0].attributes.get("Tenant").map(String::as_str), Some("eu"));
        assert_eq!(sent[0].kind, ErrorKind::Permanent);
        assert!(sent[0].reason.starts_with("poison: "), "{}", sent[0].reason);
    }

    #[tokio::test]
    async fn poison_the_dlq_refuses_is_reported_failed() {
        let consumer = Counting::default();
        consumer.dead_letters.fail_next(1);
        assert_eq!(deliver(&consumer, &["not json".to_owned(), body("a")]).await, vec!["m0"]);
        assert_eq!(consumer.effects.load(Ordering::SeqCst), 1);
    }

    /// The metric lines of one batch delivered to `consumer`, and its failed message ids.
    async fn metered<C: Consumer>(
        consumer: &C,
        dlq: &MemoryDeadLetters,
        bodies: &[String],
    ) -> (Vec<String>, Vec<String>) {
        let (response, lines) =
            crate::telemetry::capture(handle_batch(consumer, dlq, &sqs_batch(bodies), NOW, NOW + 10_000)).await;
        (lines, failed_ids(&response))
    }

    fn total(lines: &[String], service: &str, name: &str) -> f64 {
        crate::telemetry::sum(lines, name, &[("service", service)])
    }

    fn failed_of_kind(lines: &[String], service: &str, kind: &str) -> f64 {
        crate::telemetry::sum(lines, "EventsFailed", &[("service", service), ("errorKind", kind)])
    }

    #[tokio::test]
    async fn given_duplicates_a_poison_message_and_a_transient_failure_then_one_line_counts_each() {
        let consumer = Counting::default();
        let again = body("a");
        let bodies = [again.clone(), body("b"), again, "not json".to_owned(), body("fail"), body("c")];
        let (lines, failed) = metered(&consumer, &consumer.dead_letters, &bodies).await;
        assert_eq!(failed, vec!["m4"]);
        assert_eq!(lines.len(), 1, "one line per batch: {lines:?}");
        let count = |name| total(&lines, "counting", name);
        assert_eq!(
            (count("EventsProcessed"), count("EventsDuplicate"), count("EventsPoison"), count("EventsFailed")),
            (3.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(failed_of_kind(&lines, "counting", "transient"), 1.0);
        let ages = crate::telemetry::datapoints(&lines[0]).into_iter().find(|p| p.name == "EventAgeMilliseconds");
        assert_eq!(ages.map(|p| p.values.len()), Some(5), "one age per event read, the poison has none");
    }

    #[tokio::test]
    async fn the_age_of_each_event_is_now_minus_its_occurred_at() {
        let consumer = Counting::default();
        let at = |ms_ago: i64| {
            let mut event = order_placed("a", &[("MUG", 1, 1250)]);
            event.occurred_at = chrono::DateTime::from_timestamp_millis(NOW - ms_ago).unwrap();
            eventbridge_body(&event)
        };
        let (lines, _) = metered(&consumer, &consumer.dead_letters, &[at(1_500), at(250), at(-40)]).await;
        let ages = crate::telemetry::datapoints(&lines[0]).into_iter().find(|p| p.name == "EventAgeMilliseconds");
        assert_eq!(ages.map(|p| (p.unit, p.values)), Some(("Milliseconds".to_owned(), vec![1_500.0, 250.0, 0.0])));
    }

    #[tokio::test]
    async fn a_clean_batch_still_reports_zero_failures_so_an_alarm_has_data() {
        let consumer = Counting::default();
        let (lines, _) = metered(&consumer, &consumer.dead_letters, &[body("a")]).await;
        assert_eq!(lines.len(), 1);
        let points = crate::telemetry::datapoints(&lines[0]);
        let failed: Vec<_> = points.iter().filter(|p| p.name == "EventsFailed").collect();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].dimensions.len(), failed[0].values.as_slice()), (1, [0.0].as_slice()));
    }

    #[tokio::test]
    async fn a_permanent_failure_counts_as_failed_permanent_and_poison_the_dlq_refused_as_poison() {
        let consumer = Scripted::failing(&[ConsumerError::Permanent("no such customer".into())]);
        consumer.dead_letters.fail_next(1);
        let bodies = ["not json".to_owned(), body("a"), body("b")];
        let (lines, failed) = metered(&consumer, &consumer.dead_letters, &bodies).await;
        assert_eq!(failed, vec!["m0"], "the poison the DLQ refused is retried");
        assert_eq!(total(&lines, "scripted", "EventsPoison"), 1.0);
        assert_eq!(failed_of_kind(&lines, "scripted", "permanent"), 1.0, "dead-lettered, still a failure");
        assert_eq!(total(&lines, "scripted", "EventsProcessed"), 1.0);
    }

    #[tokio::test]
    async fn failures_of_two_kinds_are_counted_per_kind_and_add_up_to_the_total() {
        let consumer = Scripted::failing(&[
            ConsumerError::Effect("SES throttled".into()),
            ConsumerError::Permanent("no such customer".into()),
        ]);
        let (lines, failed) = metered(&consumer, &consumer.dead_letters, &[body("a"), body("b"), body("c")]).await;
        assert_eq!(failed, vec!["m0"], "the permanent one was dead-lettered");
        assert_eq!(lines.len(), 2, "the errorKind dimension holds one value per line");
        assert_eq!(failed_of_kind(&lines, "scripted", "transient"), 1.0);
        assert_eq!(failed_of_kind(&lines, "scripted", "permanent"), 1.0);
        assert_eq!(total(&lines, "scripted", "EventsFailed"), 2.0);
        assert_eq!(total(&lines, "scripted", "EventsProcessed"), 1.0, "counted once across the lines");
    }

    #[tokio::test]
    async fn a_batch_larger_than_an_emf_value_array_keeps_every_age() {
        let consumer = Counting::default();
        let bodies: Vec<String> = (0..150).map(|i| body(&format!("c{i}"))).collect();
        let (lines, _) = metered(&consumer, &consumer.dead_letters, &bodies).await;
        assert_eq!(lines.len(), 2, "100 ages on the batch's line, 50 on the next");
        let ages: usize = lines
            .iter()
            .flat_map(|l| crate::telemetry::datapoints(l))
            .filter(|p| p.name == "EventAgeMilliseconds")
            .map(|p| p.values.len())
            .sum();
        assert_eq!(ages, 150);
        assert_eq!(total(&lines, "counting", "EventsProcessed"), 150.0);
    }

    #[tokio::test]
    async fn a_message_without_a_body_is_poison() {
        let consumer = Counting::default();
        let mut batch = sqs_batch(&[body("a")]);
        batch.records[0].body = None;
        assert!(failed_ids(&handle_batch(&consumer, &consumer.dead_letters, &batch, NOW, NOW).await).is_empty());
        assert_eq!(consumer.dead_letters.message_ids(), vec!["m0"]);
    }
}
