//! Lambda's DynamoDB Streams event source, for one stream → one function, configured as the
//! template's event source mapping says (moto keeps the stream but maps it to nothing):
//! - each shard is read in order from `StartingPosition`; a shard's records are never handed
//!   to the function concurrently or out of order (one batch in flight per shard);
//! - a batch is up to `BatchSize` records, gathered for at most the batching window;
//! - with `ReportBatchItemFailures`, the answer's first failed sequence number is the
//!   checkpoint: the records before it are done, the batch is retried from it;
//! - a function error or timeout retries the whole batch; with `BisectBatchOnFunctionError`
//!   it is split in two first, and each half is retried on its own (a split does not count
//!   as a retry);
//! - after `MaximumRetryAttempts` retries (-1: never give up), the batch is described on the
//!   `OnFailure` destination (an SQS queue) and skipped: the description names the shard and
//!   sequence numbers, the records stay in the table.

use crate::invoke::Invoker;
use crate::poller::Observation;
use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

#[derive(Debug, Clone)]
pub struct StreamSource {
    /// The function's logical ID in the template.
    pub function: String,
    pub binary: String,
    pub config: testkit::StreamSource,
    pub timeout: Duration,
}

/// What the function's answer means for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Done,
    /// Records before this index are done; retry from it.
    FailedFrom(usize),
    /// An error or timeout: nothing is known to be done.
    FunctionError,
}

/// Reads an invocation's result against the batch it was for, as Lambda does: a reported
/// identifier that is not in the batch, or an empty one, fails the whole batch.
pub fn answer(batch: &[EventRecord], result: Result<Value, String>, report_item_failures: bool) -> Answer {
    let Ok(value) = result else { return Answer::FunctionError };
    if !report_item_failures {
        return Answer::Done;
    }
    let failures = value.get("batchItemFailures").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut first: Option<usize> = None;
    for failure in failures {
        let position = failure["itemIdentifier"]
            .as_str()
            .and_then(|id| batch.iter().position(|r| r.change.sequence_number.as_deref() == Some(id)));
        match position {
            Some(at) => first = Some(first.map_or(at, |f| f.min(at))),
            None => return Answer::FailedFrom(0),
        }
    }
    first.map_or(Answer::Done, Answer::FailedFrom)
}

/// A batch still to be delivered and how many times it was retried.
#[derive(Debug, Clone)]
pub struct Pending {
    pub records: Vec<EventRecord>,
    pub retries: i64,
}

/// What to do after an answer: the batches to deliver next, in order, and what to give up on.
#[derive(Debug, Default)]
pub struct Steps {
    pub next: Vec<Pending>,
    pub given_up: Option<Vec<EventRecord>>,
}

pub fn next_steps(records: Vec<EventRecord>, retries: i64, answer: Answer, config: &testkit::StreamSource) -> Steps {
    let exhausted = |retries: i64| config.maximum_retry_attempts >= 0 && retries >= config.maximum_retry_attempts;
    let retry =
        |records: Vec<EventRecord>, retries: i64| Steps { next: vec![Pending { records, retries }], given_up: None };
    let give_up = |records: Vec<EventRecord>| Steps { next: vec![], given_up: Some(records) };
    match answer {
        Answer::Done => Steps::default(),
        Answer::FailedFrom(at) => {
            let rest = records[at.min(records.len())..].to_vec();
            if exhausted(retries) {
                give_up(rest)
            } else {
                retry(rest, retries + 1)
            }
        }
        Answer::FunctionError if config.bisect_batch_on_function_error && records.len() > 1 => {
            let mut first = records;
            let second = first.split_off(first.len() / 2);
            let halves = vec![Pending { records: first, retries }, Pending { records: second, retries }];
            Steps { next: halves, given_up: None }
        }
        Answer::FunctionError if exhausted(retries) => give_up(records),
        Answer::FunctionError => retry(records, retries + 1),
    }
}

/// The record Lambda builds from a stream record, as `aws_lambda_events`' own type.
pub fn record(r: &Record, stream_arn: &str, region: &str) -> EventRecord {
    let mut change = StreamRecord::default();
    if let Some(stream) = r.dynamodb() {
        let image =
            |m: Option<&std::collections::HashMap<String, _>>| serde_dynamo::Item::from(m.cloned().unwrap_or_default());
        change.keys = image(stream.keys());
        change.new_image = image(stream.new_image());
        change.old_image = image(stream.old_image());
        change.sequence_number = stream.sequence_number().map(str::to_owned);
        change.size_bytes = stream.size_bytes().unwrap_or_default();
        change.stream_view_type =
            stream.stream_view_type().and_then(|v| serde_json::from_value(json!(v.as_str())).ok());
        if let Some(at) = stream.approximate_creation_date_time() {
            change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default();
        }
    }
    let mut event = EventRecord::default();
    event.aws_region = region.to_owned();
    event.change = change;
    event.event_id = r.event_id().unwrap_or_default().to_owned();
    event.event_name = r.event_name().map(|n| n.as_str().to_owned()).unwrap_or_default();
    event.event_source = Some("aws:dynamodb".into());
    event.event_version = r.event_version().map(str::to_owned);
    event.event_source_arn = Some(stream_arn.to_owned());
    event
}

/// The on-failure record Lambda sends for a stream batch it gave up on.
pub fn failure_record(source: &StreamSource, shard_id: &str, batch: &[EventRecord], invocations: i64) -> Value {
    let sequence = |r: Option<&EventRecord>| r.and_then(|r| r.change.sequence_number.clone());
    let arrival = |r: Option<&EventRecord>| r.map(|r| r.change.approximate_creation_date_time.to_rfc3339());
    json!({
        "requestContext": {
            "requestId": ulid::Ulid::new().to_string(),
            "functionArn": format!("arn:aws:lambda:{}:123456789012:function:{}", testkit::REGION, source.binary),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invocations,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence(batch.first()),
            "endSequenceNumber": sequence(batch.last()),
            "approximateArrivalOfFirstRecord": arrival(batch.first()),
            "approximateArrivalOfLastRecord": arrival(batch.last()),
            "batchSize": batch.len(),
            "streamArn": source.config.stream_arn,
        },
    })
}

pub struct StreamPoller {
    pub source: StreamSource,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub invoker: Arc<Invoker>,
    pub region: String,
    pub observations: broadcast::Sender<Observation>,
}

fn display<E: std::error::Error>(e: E) -> String {
    aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string()
}

impl StreamPoller {
    /// Reads every shard of the stream, one task per shard, until `stop`.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let shards = loop {
            match this.shards().await {
                Ok(shards) => break shards,
                Err(error) => {
                    tracing::warn!(function = this.source.function, %error, "describe stream failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if *stop.borrow() {
                        return;
                    }
                }
            }
        };
        let tasks: Vec<_> =
            shards.into_iter().map(|shard| tokio::spawn(this.clone().shard(shard, stop.clone()))).collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn shards(&self) -> Result<Vec<String>, String> {
        let out =
            self.streams.describe_stream().stream_arn(&self.source.config.stream_arn).send().await.map_err(display)?;
        let description = out.stream_description().ok_or("no stream description")?;
        Ok(description.shards().iter().filter_map(|s| s.shard_id().map(str::to_owned)).collect())
    }

    /// An iterator from the starting position, or just after the last record read (after a
    /// failed read: iterators expire).
    async fn iterator(&self, shard: &str, after: Option<&str>) -> Result<Option<String>, String> {
        let request = self.streams.get_shard_iterator().stream_arn(&self.source.config.stream_arn).shard_id(shard);
        let request = match (after, self.source.config.starting_position.as_str()) {
            (Some(sequence), _) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence)
            }
            (None, "TRIM_HORIZON") => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            (None, _) => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        let out = request.send().await.map_err(display)?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    async fn shard(self: Arc<Self>, shard: String, mut stop: watch::Receiver<bool>) {
        let mut iterator: Option<String> = None;
        let mut last_read: Option<String> = None;
        let mut closed = false;
        let mut buffered: VecDeque<EventRecord> = VecDeque::new();
        let mut first_seen: Option<Instant> = None;
        let window = Duration::from_secs(self.source.config.maximum_batching_window_in_seconds.into());
        let size = self.source.config.batch_size.max(1) as usize;
        while !*stop.borrow() {
            if !closed && buffered.len() < size {
                let current = match iterator.take() {
                    Some(it) => it,
                    None => match self.iterator(&shard, last_read.as_deref()).await {
                        Ok(Some(it)) => it,
                        Ok(None) => {
                            closed = true;
                            continue;
                        }
                        Err(error) => {
                            tracing::warn!(function = self.source.function, %error, "no shard iterator; retrying");
                            self.pause(&mut stop, Duration::from_secs(1)).await;
                            continue;
                        }
                    },
                };
                match self.streams.get_records().shard_iterator(current).send().await {
                    Ok(out) => {
                        let stream_arn = &self.source.config.stream_arn;
                        buffered.extend(out.records().iter().map(|r| record(r, stream_arn, &self.region)));
                        if let Some(last) = buffered.back() {
                            last_read.clone_from(&last.change.sequence_number);
                        }
                        iterator = out.next_shard_iterator().map(str::to_owned);
                        closed = iterator.is_none();
                        // moto gap: a cancelled transaction restores its tables from copies,
                        // and an iterator keeps reading the shard of the copy it was made on,
                        // which nothing appends to any more. Asking for a fresh iterator after
                        // the last record read whenever a read comes back empty follows the
                        // live shard; against AWS it is merely an extra call.
                        if out.records().is_empty() {
                            iterator = None;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(
                            function = self.source.function,
                            error = display(error),
                            "get records failed; retrying"
                        );
                        self.pause(&mut stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if buffered.is_empty() {
                if closed {
                    return;
                }
                self.pause(&mut stop, Duration::from_millis(200)).await;
                continue;
            }
            let since = *first_seen.get_or_insert_with(Instant::now);
            if !closed && buffered.len() < size && since.elapsed() < window {
                self.pause(&mut stop, Duration::from_millis(50)).await;
                continue;
            }
            first_seen = None;
            let batch: Vec<EventRecord> = buffered.drain(..buffered.len().min(size)).collect();
            self.deliver(&shard, batch).await;
        }
    }

    async fn pause(&self, stop: &mut watch::Receiver<bool>, duration: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = stop.changed() => {}
        }
    }

    /// Delivers one batch until it is done or given up on; the shard waits meanwhile.
    async fn deliver(&self, shard: &str, batch: Vec<EventRecord>) {
        let report_failures = self.source.config.function_response_types.iter().any(|t| t == "ReportBatchItemFailures");
        let mut work = VecDeque::from([Pending { records: batch, retries: 0 }]);
        let mut invocations = 0;
        while let Some(Pending { records, retries }) = work.pop_front() {
            let mut event = Event::default();
            event.records = records.clone();
            invocations += 1;
            let result = match serde_json::to_value(&event) {
                Ok(payload) => self
                    .invoker
                    .invoke(&self.source.binary, payload, self.source.timeout)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("a stream event that does not serialise: {e}")),
            };
            if let Err(error) = &result {
                tracing::warn!(function = self.source.function, %error, retries, records = records.len(), "stream batch failed");
            }
            let answer = answer(&records, result, report_failures);
            self.observe(&records, &answer, retries);
            let steps = next_steps(records, retries, answer, &self.source.config);
            for pending in steps.next.into_iter().rev() {
                work.push_front(pending);
            }
            if let Some(given_up) = steps.given_up {
                self.give_up(shard, &given_up, invocations).await;
            }
            if !work.is_empty() {
                // Lambda backs off between retries of a stream batch.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn give_up(&self, shard: &str, batch: &[EventRecord], invocations: i64) {
        tracing::error!(
            function = self.source.function,
            records = batch.len(),
            "retries exhausted; the batch is skipped"
        );
        let Some(queue) = &self.source.config.on_failure_queue_url else { return };
        let body = failure_record(&self.source, shard, batch, invocations).to_string();
        if let Err(error) = self.sqs.send_message().queue_url(queue).message_body(body).send().await {
            tracing::error!(function = self.source.function, error = %aws_sdk_sqs::error::DisplayErrorContext(error), "could not send to the on-failure destination");
        }
    }

    fn observe(&self, records: &[EventRecord], answer: &Answer, retries: i64) {
        for (i, r) in records.iter().enumerate() {
            let succeeded = match answer {
                Answer::Done => true,
                Answer::FailedFrom(at) => i < *at,
                Answer::FunctionError => false,
            };
            let order_id = match r.change.keys.get("orderId") {
                Some(serde_dynamo::AttributeValue::S(id)) => Some(id.clone()),
                _ => None,
            };
            let _ = self.observations.send(Observation {
                function: self.source.function.clone(),
                message_id: r.change.sequence_number.clone().unwrap_or_default(),
                receive_count: u32::try_from(retries + 1).unwrap_or(u32::MAX),
                event_id: Some(r.event_id.clone()),
                order_id,
                source: None,
                detail_type: None,
                detail: None,
                succeeded,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(retries: i64, bisect: bool) -> testkit::StreamSource {
        testkit::StreamSource {
            stream_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x".into(),
            table_name: "t".into(),
            starting_position: "TRIM_HORIZON".into(),
            batch_size: 100,
            maximum_batching_window_in_seconds: 0,
            maximum_retry_attempts: retries,
            bisect_batch_on_function_error: bisect,
            function_response_types: vec!["ReportBatchItemFailures".into()],
            on_failure_queue_url: None,
            on_failure_queue_arn: None,
        }
    }

    fn batch(sequence: &[&str]) -> Vec<EventRecord> {
        sequence
            .iter()
            .map(|s| {
                let mut r = EventRecord::default();
                r.change.sequence_number = Some((*s).to_owned());
                r
            })
            .collect()
    }

    fn sequences(records: &[EventRecord]) -> Vec<String> {
        records.iter().filter_map(|r| r.change.sequence_number.clone()).collect()
    }

    #[test]
    fn given_reported_failures_when_answered_then_the_checkpoint_is_the_first_failed_record() {
        let result = Ok(json!({"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "2"}]}));
        assert_eq!(answer(&batch(&["1", "2", "3"]), result, true), Answer::FailedFrom(1));
    }

    #[test]
    fn given_an_identifier_not_in_the_batch_when_answered_then_the_whole_batch_failed() {
        let result = Ok(json!({"batchItemFailures": [{"itemIdentifier": "9"}]}));
        assert_eq!(answer(&batch(&["1", "2"]), result, true), Answer::FailedFrom(0));
    }

    #[test]
    fn given_no_failures_or_an_error_when_answered_then_done_or_function_error() {
        assert_eq!(answer(&batch(&["1"]), Ok(json!({"batchItemFailures": []})), true), Answer::Done);
        assert_eq!(answer(&batch(&["1"]), Ok(Value::Null), true), Answer::Done);
        assert_eq!(answer(&batch(&["1"]), Err("boom".into()), true), Answer::FunctionError);
    }

    #[test]
    fn given_a_partial_failure_when_retried_then_only_the_rest_is_delivered_again() {
        let steps = next_steps(batch(&["1", "2", "3"]), 0, Answer::FailedFrom(1), &config(3, true));
        assert_eq!(steps.next.len(), 1);
        assert_eq!(
            (sequences(&steps.next[0].records), steps.next[0].retries),
            (vec!["2".to_owned(), "3".to_owned()], 1)
        );
        assert!(steps.given_up.is_none());
    }

    #[test]
    fn given_a_function_error_with_bisect_when_retried_then_the_halves_go_separately_without_a_retry_counted() {
        let steps = next_steps(batch(&["1", "2", "3"]), 2, Answer::FunctionError, &config(3, true));
        let halves: Vec<(Vec<String>, i64)> = steps.next.iter().map(|p| (sequences(&p.records), p.retries)).collect();
        assert_eq!(halves, vec![(vec!["1".to_owned()], 2), (vec!["2".to_owned(), "3".to_owned()], 2)]);
    }

    #[test]
    fn given_retries_exhausted_when_the_record_still_fails_then_it_is_given_up() {
        let steps = next_steps(batch(&["7"]), 3, Answer::FunctionError, &config(3, true));
        assert!(steps.next.is_empty());
        assert_eq!(sequences(&steps.given_up.unwrap()), vec!["7".to_owned()]);
    }

    #[test]
    fn given_unlimited_retries_when_a_batch_fails_then_it_is_never_given_up() {
        let steps = next_steps(batch(&["1"]), 10_000, Answer::FunctionError, &config(-1, false));
        assert_eq!(steps.next[0].retries, 10_001);
        assert!(steps.given_up.is_none());
    }

    #[test]
    fn a_failure_record_names_the_shard_and_the_sequence_range() {
        let source = StreamSource {
            function: "F".into(),
            binary: "f".into(),
            config: config(3, true),
            timeout: Duration::from_secs(1),
        };
        let record = failure_record(&source, "shard-1", &batch(&["5", "6"]), 4);
        let info = &record["DDBStreamBatchInfo"];
        assert_eq!((info["shardId"].as_str(), info["startSequenceNumber"].as_str()), (Some("shard-1"), Some("5")));
        assert_eq!((info["endSequenceNumber"].as_str(), info["batchSize"].as_u64()), (Some("6"), Some(2)));
        assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    }
}
