//! The consumers' dead-letter queues: how deep each is, what is in one (without consuming it),
//! moving its messages back to the consumer's queue, and purging it.
//!
//! The primitives ([`depth`], [`DeadLetter::of`], [`peek`], [`move_by_hand`]) are the only ones
//! in the workspace: the `shop-ops dlq` commands below and the local dashboard
//! (`local/src/dashboard.rs`, its DLQ list and Redrive button) both call them.
//!
//! A dead letter is the EventBridge event the consumer's queue received, unchanged, with the
//! harness's `ErrorKind` and `ErrorReason` message attributes when it dead-lettered the message
//! itself (a permanent failure or poison), or EventBridge's `ERROR_CODE` and `ERROR_MESSAGE`
//! when the rule could not deliver to the queue; without any, SQS's redrive policy moved it
//! after its receives ran out (transient failures).

use crate::error::{self, Failure};
use crate::report::{progress, Done};
use crate::target::{Consumer, Target};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// How long `show` hides the messages it has seen so that the next receive returns the
/// others; it makes them visible again as soon as it has seen them all (and nothing polls a
/// DLQ, so the hiding delays no one).
const LOOK_SECONDS: i32 = 30;
/// How long the local redrive hides a message between its receive and its delete: long enough
/// to send it to the source queue.
const MOVE_SECONDS: i32 = 30;
/// A receive that waits this long for messages asks every SQS server, so an empty answer
/// means an empty queue (a short poll samples a few servers and may answer empty wrongly).
const WAIT_SECONDS: i32 = 1;

fn sqs(target: &Target) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&target.aws)
}

/// A queue's approximate depth, as SQS reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Depth {
    pub url: String,
    pub arn: String,
    /// Messages available (`ApproximateNumberOfMessages`).
    pub messages: u64,
    /// Received and not yet deleted nor visible again (`ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: u64,
}

impl Depth {
    /// Everything the queue holds: available plus in flight.
    pub fn total(&self) -> u64 {
        self.messages + self.in_flight
    }
}

pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Depth, Failure> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| error::aws(&format!("reading the attributes of {url}"), e))?;
    let attribute = |name: QueueAttributeName| out.attributes().and_then(|a| a.get(&name)).cloned();
    let count = |name| attribute(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Depth {
        url: url.to_owned(),
        arn: attribute(QueueAttributeName::QueueArn).unwrap_or_default(),
        messages: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerDepths {
    consumer: Consumer,
    queue: Depth,
    dead_letter_queue: Depth,
}

/// `dlq list`: every consumer's queue and dead-letter queue depth.
pub async fn list(target: &Target) -> Result<Done, Failure> {
    let sqs = sqs(target);
    let mut rows = Vec::new();
    for consumer in Consumer::ALL {
        let queue = depth(&sqs, target.queue_url(consumer)?).await?;
        let dead_letter_queue = depth(&sqs, target.dead_letter_queue_url(consumer)?).await?;
        rows.push(ConsumerDepths { consumer, queue, dead_letter_queue });
    }
    let mut text = format!(
        "{}\n{:<16} {:>8} {:>10} {:>13}\n",
        target.describe(),
        "consumer",
        "queued",
        "in flight",
        "dead letters"
    );
    for row in &rows {
        text += &format!(
            "{:<16} {:>8} {:>10} {:>13}\n",
            row.consumer.name(),
            row.queue.messages,
            row.queue.in_flight,
            row.dead_letter_queue.total()
        );
    }
    let dead: u64 = rows.iter().map(|r| r.dead_letter_queue.total()).sum();
    text += &if dead == 0 {
        "No dead letters.".to_owned()
    } else {
        format!(
            "{dead} dead letter(s) (approximate counts): `shop-ops dlq show <consumer>` to look at them, \
             `shop-ops dlq redrive <consumer>` once their cause is fixed."
        )
    };
    Ok(Done::new(serde_json::json!({"target": target.json(), "consumers": rows}), text))
}

/// One dead letter, as an operator reads it: which event, and why it is there (`show`, and
/// the local dashboard's list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: String,
    /// Our envelope's `type` (e.g. `order.placed`), else the EventBridge `detail-type`.
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub order_id: Option<String>,
    /// Our envelope's `correlationId`: the request the event came from.
    pub correlation_id: Option<String>,
    /// The EventBridge `source` (`shop.checkout`, ...).
    pub source: Option<String>,
    /// SQS's `ApproximateReceiveCount`: receives in the consumer's queue when SQS moved it
    /// here (the count carries over), plus every look at the DLQ, this one included.
    pub receive_count: Option<u64>,
    /// `ApproximateFirstReceiveTimestamp`: the first failed delivery.
    pub first_received_at: Option<DateTime<Utc>>,
    /// `SentTimestamp`.
    pub sent_at: Option<DateTime<Utc>>,
    /// `ErrorKind` (the harness: permanent, ...) or `ERROR_CODE` (EventBridge could not deliver).
    pub error_kind: Option<String>,
    /// `ErrorReason` or `ERROR_MESSAGE`.
    pub error_reason: Option<String>,
    /// Whether the body is an EventBridge event at all (a poison message may not be).
    pub readable: bool,
    pub body: String,
}

impl DeadLetter {
    pub fn of(message: &Message) -> DeadLetter {
        let body = message.body().unwrap_or_default().to_owned();
        let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok().filter(serde_json::Value::is_object);
        let field = |path: &[&str]| {
            let mut node = parsed.as_ref()?;
            for key in path {
                node = node.get(key)?;
            }
            node.as_str().map(str::to_owned)
        };
        let system = |name: MessageSystemAttributeName| message.attributes().and_then(|a| a.get(&name)).cloned();
        let at =
            |name| system(name).and_then(|ms| ms.parse::<i64>().ok()).and_then(DateTime::<Utc>::from_timestamp_millis);
        let attribute = |names: &[&str]| {
            names.iter().find_map(|name| {
                message
                    .message_attributes()
                    .and_then(|a| a.get(*name))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned)
            })
        };
        DeadLetter {
            message_id: message.message_id().unwrap_or_default().to_owned(),
            event_type: field(&["detail", "type"]).or_else(|| field(&["detail-type"])),
            event_id: field(&["detail", "eventId"]),
            order_id: field(&["detail", "orderId"]),
            correlation_id: field(&["detail", "correlationId"]),
            source: field(&["source"]),
            receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount).and_then(|c| c.parse().ok()),
            first_received_at: at(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp),
            sent_at: at(MessageSystemAttributeName::SentTimestamp),
            error_kind: attribute(&[shared::adapters::sqs::ERROR_KIND, "ERROR_CODE"]),
            error_reason: attribute(&[shared::adapters::sqs::ERROR_REASON, "ERROR_MESSAGE"]),
            readable: parsed.as_ref().is_some_and(|p| p.get("detail").is_some()),
            body,
        }
    }

    fn text(&self) -> String {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let time = |t: &Option<DateTime<Utc>>| {
            t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        let mut text = format!("message {}\n", self.message_id);
        if self.readable {
            text += &format!(
                "  event      {} {} (source {})\n  order      {} (correlation {})\n",
                or(&self.event_type),
                or(&self.event_id),
                or(&self.source),
                or(&self.order_id),
                or(&self.correlation_id)
            );
        } else {
            let head: String = self.body.chars().take(200).collect();
            text += &format!("  body       not an EventBridge event (poison): {head}\n");
        }
        text += &format!(
            "  receives   {}, first {}, sent {}\n",
            self.receive_count.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            time(&self.first_received_at),
            time(&self.sent_at),
        );
        match (&self.error_kind, &self.error_reason) {
            (None, None) => text += "  failure    none recorded: SQS moved it after its receives ran out (transient)\n",
            (kind, reason) => text += &format!("  failure    {}: {}\n", or(kind), or(reason)),
        }
        text
    }
}

/// `dlq show`: every message of the consumer's DLQ (up to `max`), left in the queue ([`peek`]).
pub async fn show(target: &Target, consumer: Consumer, max: usize) -> Result<Done, Failure> {
    let sqs = sqs(target);
    let url = target.dead_letter_queue_url(consumer)?;
    let seen = peek(&sqs, url, max).await?;
    let label = format!("{consumer}'s dead-letter queue");
    let text = if seen.is_empty() {
        format!("{label} is empty: nothing to show ({}).", target.describe())
    } else {
        let mut text = format!("{label}: {} message(s), left in the queue ({})\n", seen.len(), target.describe());
        for letter in &seen {
            text += &letter.text();
        }
        if seen.len() >= max {
            text += &format!("(stopped at --max {max}; there may be more)\n");
        }
        text
    };
    let json = serde_json::json!({
        "target": target.json(),
        "consumer": consumer,
        "queueUrl": url,
        "messages": seen,
    });
    Ok(Done::new(json, text.trim_end().to_owned()))
}

/// Up to `max` messages of a queue, left in it, oldest sent first.
///
/// Seen messages are hidden for [`LOOK_SECONDS`] so that each receive returns new ones, then
/// made visible again at once (`ChangeMessageVisibility` 0): nothing is deleted, and afterwards
/// the queue holds and shows exactly what it held. A receive with a visibility timeout of 0
/// would leave nothing hidden, but then every receive may return the same ten messages and a
/// longer queue could never be listed whole; and each receive long-polls ([`WAIT_SECONDS`]), so
/// an empty answer means the end of the queue, not a short poll's sample. Each look counts as
/// a receive, which a dead-letter queue (no redrive policy of its own) does not act on.
/// Stopping at `max` spares the last, empty, long poll when the caller knows the depth.
pub async fn peek(sqs: &aws_sdk_sqs::Client, url: &str, max: usize) -> Result<Vec<DeadLetter>, Failure> {
    let mut seen: Vec<DeadLetter> = Vec::new();
    let mut handles: Vec<String> = Vec::new();
    let looked = look(sqs, url, max, &mut seen, &mut handles).await;
    let restored = restore(sqs, url, &handles).await;
    looked?;
    restored?;
    // A stable order, whatever order the receives returned them in.
    seen.sort_by(|a, b| (a.sent_at, &a.message_id).cmp(&(b.sent_at, &b.message_id)));
    Ok(seen)
}

async fn look(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: usize,
    seen: &mut Vec<DeadLetter>,
    handles: &mut Vec<String>,
) -> Result<(), Failure> {
    while seen.len() < max {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from((max - seen.len()).min(10)).unwrap_or(10))
            .visibility_timeout(LOOK_SECONDS)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| error::aws(&format!("receiving from {url}"), e))?;
        let messages = out.messages();
        if messages.is_empty() {
            return Ok(());
        }
        for message in messages {
            handles.extend(message.receipt_handle().map(str::to_owned));
            if !seen.iter().any(|s| Some(s.message_id.as_str()) == message.message_id()) {
                seen.push(DeadLetter::of(message));
            }
        }
    }
    Ok(())
}

/// Makes the received messages visible again at once.
async fn restore(sqs: &aws_sdk_sqs::Client, url: &str, handles: &[String]) -> Result<(), Failure> {
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let out = sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| error::aws(&format!("making the messages of {url} visible again"), e))?;
        if let Some(failed) = out.failed().first() {
            return Err(Failure::failed(format!(
                "{} message(s) of {url} stay hidden for up to {LOOK_SECONDS} s ({}): nothing was lost, they \
                 reappear by themselves",
                out.failed().len(),
                failed.message().unwrap_or(failed.code())
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Redriven {
    consumer: Consumer,
    from: String,
    to: String,
    /// `moved` (locally, done) or the AWS move task's status.
    status: String,
    moved: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_move: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
}

/// `dlq redrive`: the consumer's dead letters back to its queue.
///
/// In AWS, an SQS message move task with the consumer's queue named as the destination:
/// messages the harness dead-lettered itself were sent, not moved by SQS, so SQS has no source
/// queue on record for them. Locally (moto has no move tasks) the same by hand, [`move_by_hand`].
pub async fn redrive(target: &Target, consumer: Consumer, wait: bool, rate: Option<i32>) -> Result<Done, Failure> {
    let sqs = sqs(target);
    let dlq = depth(&sqs, target.dead_letter_queue_url(consumer)?).await?;
    let queue = depth(&sqs, target.queue_url(consumer)?).await?;
    let mut done = Redriven {
        consumer,
        from: dlq.url.clone(),
        to: queue.url.clone(),
        status: "empty".into(),
        moved: 0,
        to_move: None,
        task_handle: None,
        failure_reason: None,
    };
    let empty = dlq.total() == 0;
    if empty && !target.is_local() {
        let text = format!("{consumer}'s dead-letter queue is empty: nothing to redrive ({}).", target.describe());
        return Ok(Done::new(done, text));
    }
    if target.is_local() {
        done.moved = move_by_hand(&sqs, &dlq.url, &queue.url, |moved, held| {
            progress(format!("{consumer}: moved {moved} of ~{held} message(s) back to its queue"))
        })
        .await?;
        done.status = if done.moved == 0 { "empty".into() } else { "moved".into() };
    } else {
        start_move_task(&sqs, &dlq, &queue, consumer, wait, rate, &mut done).await?;
    }
    let text = match done.status.as_str() {
        "empty" => format!("{consumer}'s dead-letter queue is empty: nothing to redrive ({}).", target.describe()),
        "moved" | "COMPLETED" => format!(
            "moved {} message(s) from {consumer}'s dead-letter queue back to its queue; the consumer processes \
             them again (events it already applied are skipped as duplicates).",
            done.moved
        ),
        "RUNNING" => format!(
            "move task started ({} of ~{} moved so far): follow it with `shop-ops dlq redrive-status {consumer}`.",
            done.moved,
            done.to_move.unwrap_or(dlq.messages)
        ),
        other => format!(
            "move task {other} after {} message(s): {}",
            done.moved,
            done.failure_reason.clone().unwrap_or_default()
        ),
    };
    let exit = if matches!(done.status.as_str(), "FAILED" | "CANCELLED") { error::EXIT_FAILED } else { 0 };
    Ok(Done::new(done, text).with_exit(exit))
}

/// Moves the messages the dead-letter queue `dlq_url` holds when it starts back to `queue_url`,
/// by hand: the local stand-in for SQS's message move task, which moto does not implement. The
/// number moved; `progress(moved, held)` after each batch.
///
/// Each message is received (hidden for [`MOVE_SECONDS`]), sent to the queue with its body and
/// message attributes unchanged, then deleted: the send comes before the delete, so a crash
/// duplicates a message at worst (the consumers are idempotent) and never loses one. It stops
/// after as many messages as the queue held when it started (`ApproximateNumberOfMessages` plus
/// `...NotVisible`): a message dead-lettered again while it runs, its cause not fixed, is left
/// for the next redrive instead of going round for ever. Receives long-poll ([`WAIT_SECONDS`]),
/// so a message that another reader ([`peek`]) hides for a moment is still found.
pub async fn move_by_hand(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, Failure> {
    let held = depth(sqs, dlq_url).await?.total();
    let mut moved = 0;
    while moved < held {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(i32::try_from((held - moved).min(10)).unwrap_or(10))
            .visibility_timeout(MOVE_SECONDS)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| error::aws(&format!("receiving from {dlq_url}"), e))?;
        if out.messages().is_empty() {
            break;
        }
        for message in out.messages() {
            let stop = |what: String| {
                Failure::failed(format!(
                    "{what}; {moved} message(s) moved before it. Run the redrive again: what is left is still in \
                     the dead-letter queue (visible again within {MOVE_SECONDS} s)"
                ))
            };
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(message.body().unwrap_or_default())
                .set_message_attributes(message.message_attributes().filter(|a| !a.is_empty()).cloned())
                .send()
                .await
                .map_err(|e| stop(error::aws(&format!("sending to {queue_url}"), e).message))?;
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| stop(error::aws(&format!("deleting from {dlq_url}"), e).message))?;
            moved += 1;
        }
        progress(moved, held);
    }
    Ok(moved)
}

async fn start_move_task(
    sqs: &aws_sdk_sqs::Client,
    dlq: &Depth,
    queue: &Depth,
    consumer: Consumer,
    wait: bool,
    rate: Option<i32>,
    done: &mut Redriven,
) -> Result<(), Failure> {
    let started = sqs
        .start_message_move_task()
        .source_arn(&dlq.arn)
        .destination_arn(&queue.arn)
        .set_max_number_of_messages_per_second(rate)
        .send()
        .await
        .map_err(|err| {
            let running = err
                .as_service_error()
                .and_then(aws_sdk_sqs::error::ProvideErrorMetadata::message)
                .is_some_and(|m| m.to_lowercase().contains("already"));
            if running {
                Failure::failed(format!(
                    "a move task is already running on {consumer}'s dead-letter queue: follow it with \
                     `shop-ops dlq redrive-status {consumer}`"
                ))
            } else {
                error::aws(&format!("starting a message move task from {}", dlq.arn), err)
            }
        })?;
    done.task_handle = started.task_handle().map(str::to_owned);
    progress(format!("{consumer}: move task started, ~{} message(s) to move", dlq.messages));
    loop {
        let latest = move_tasks(sqs, &dlq.arn, 1).await?.into_iter().next();
        let Some(task) = latest else {
            done.status = "RUNNING".into();
            return Ok(());
        };
        done.status = task.status.clone();
        done.moved = task.moved;
        done.to_move = task.to_move;
        done.failure_reason = task.failure_reason.clone();
        if !wait || task.status != "RUNNING" {
            return Ok(());
        }
        progress(format!("{consumer}: {} of ~{} moved", task.moved, task.to_move.unwrap_or(dlq.messages)));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One message move task, as `ListMessageMoveTasks` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveTask {
    pub status: String,
    pub moved: u64,
    pub to_move: Option<u64>,
    pub destination: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    pub task_handle: Option<String>,
}

async fn move_tasks(sqs: &aws_sdk_sqs::Client, source_arn: &str, max: i32) -> Result<Vec<MoveTask>, Failure> {
    let out = sqs
        .list_message_move_tasks()
        .source_arn(source_arn)
        .max_results(max)
        .send()
        .await
        .map_err(|e| error::aws(&format!("listing the message move tasks of {source_arn}"), e))?;
    Ok(out
        .results()
        .iter()
        .map(|t| MoveTask {
            status: t.status().unwrap_or("UNKNOWN").to_owned(),
            moved: u64::try_from(t.approximate_number_of_messages_moved()).unwrap_or(0),
            to_move: t.approximate_number_of_messages_to_move().and_then(|n| u64::try_from(n).ok()),
            destination: t.destination_arn().map(str::to_owned),
            started_at: DateTime::<Utc>::from_timestamp_millis(t.started_timestamp()),
            failure_reason: t.failure_reason().map(str::to_owned),
            task_handle: t.task_handle().map(str::to_owned),
        })
        .collect())
}

/// `dlq redrive-status`: the consumer's recent move tasks (AWS keeps them 14 days).
pub async fn redrive_status(target: &Target, consumer: Consumer) -> Result<Done, Failure> {
    let sqs = sqs(target);
    let dlq = depth(&sqs, target.dead_letter_queue_url(consumer)?).await?;
    if target.is_local() {
        let text = "locally a redrive moves the messages before it answers (moto has no message move tasks): \
                    there is no task to follow.";
        return Ok(Done::new(serde_json::json!({"consumer": consumer, "tasks": [], "note": text}), text));
    }
    let tasks = move_tasks(&sqs, &dlq.arn, 10).await?;
    let mut text = if tasks.is_empty() {
        format!("no message move task on {consumer}'s dead-letter queue in the last 14 days\n")
    } else {
        format!("message move tasks of {consumer}'s dead-letter queue, newest first:\n")
    };
    for task in &tasks {
        text += &format!(
            "  {} {} moved of ~{}, started {}{}\n",
            task.status,
            task.moved,
            task.to_move.map_or_else(|| "?".into(), |n| n.to_string()),
            task.started_at.map_or_else(|| "-".into(), |t| t.to_rfc3339()),
            task.failure_reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    text += &format!("{} message(s) in the dead-letter queue now", dlq.messages);
    Ok(Done::new(serde_json::json!({"consumer": consumer, "deadLetterQueue": dlq, "tasks": tasks}), text))
}

/// `dlq purge`: deletes every message of the consumer's DLQ, for good; refused without `yes`.
pub async fn purge(target: &Target, consumer: Consumer, yes: bool) -> Result<Done, Failure> {
    let sqs = sqs(target);
    let dlq = depth(&sqs, target.dead_letter_queue_url(consumer)?).await?;
    let count = dlq.total();
    if count == 0 {
        let text = format!("{consumer}'s dead-letter queue is already empty: nothing to purge.");
        return Ok(Done::new(serde_json::json!({"consumer": consumer, "purged": 0}), text));
    }
    if !yes {
        return Err(Failure::refused(format!(
            "not purged: this deletes the ~{count} message(s) of {consumer}'s dead-letter queue ({}) for good. \
             Look first (`shop-ops dlq show {consumer}`) or redrive them (`shop-ops dlq redrive {consumer}`); \
             to delete them, run again with --yes",
            target.describe()
        )));
    }
    sqs.purge_queue().queue_url(&dlq.url).send().await.map_err(|err| {
        let code = err.as_service_error().and_then(aws_sdk_sqs::error::ProvideErrorMetadata::code).unwrap_or("");
        if code.contains("PurgeQueueInProgress") {
            Failure::failed(format!(
                "{consumer}'s dead-letter queue was purged less than 60 seconds ago (SQS allows one purge a minute): \
                 try again in a minute"
            ))
        } else {
            error::aws(&format!("purging {}", dlq.url), err)
        }
    })?;
    let text = format!(
        "purged {consumer}'s dead-letter queue: ~{count} message(s) deleted (SQS finishes a purge within 60 seconds)."
    );
    Ok(Done::new(serde_json::json!({"consumer": consumer, "queueUrl": dlq.url, "purged": count}), text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn message(body: &str) -> aws_sdk_sqs::types::builders::MessageBuilder {
        Message::builder().message_id("m-1").body(body)
    }

    fn string(value: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
    }

    #[test]
    fn a_dead_lettered_event_shows_its_type_ids_receives_and_failure() {
        let body = r#"{"detail-type":"order.placed","source":"shop.checkout",
            "detail":{"type":"order.placed","eventId":"E1","orderId":"O1"}}"#;
        let m = message(body)
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "4")
            .attributes(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp, "1700000000000")
            .message_attributes("ErrorKind", string("permanent"))
            .message_attributes("ErrorReason", string("unknown customer cust-x"))
            .build();
        let letter = DeadLetter::of(&m);
        assert_eq!(letter.event_type.as_deref(), Some("order.placed"));
        assert_eq!((letter.event_id.as_deref(), letter.order_id.as_deref()), (Some("E1"), Some("O1")));
        assert_eq!(letter.receive_count, Some(4));
        assert_eq!(letter.first_received_at, DateTime::from_timestamp_millis(1_700_000_000_000));
        assert_eq!(letter.error_kind.as_deref(), Some("permanent"));
        assert!(letter.readable);
        assert!(letter.text().contains("permanent: unknown customer cust-x"));
    }

    #[test]
    fn given_a_message_the_harness_dead_lettered_then_its_ids_sent_time_and_reason_are_read() {
        let body = serde_json::json!({
            "detail-type": "order.placed",
            "detail": {"type": "order.placed", "eventId": "ev-1", "orderId": "ord-1", "correlationId": "corr-1"}
        });
        let m = message(&body.to_string())
            .attributes(MessageSystemAttributeName::SentTimestamp, "1767225600000")
            .message_attributes("ErrorKind", string("permanent"))
            .message_attributes("ErrorReason", string("customer cust-ghost has no e-mail address"))
            .build();
        let letter = DeadLetter::of(&m);
        assert_eq!(
            (letter.event_type.as_deref(), letter.event_id.as_deref(), letter.order_id.as_deref()),
            (Some("order.placed"), Some("ev-1"), Some("ord-1"))
        );
        assert_eq!(letter.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(letter.error_reason.as_deref(), Some("customer cust-ghost has no e-mail address"));
        assert_eq!(letter.sent_at, DateTime::from_timestamp_millis(1_767_225_600_000));
        assert!(letter.text().contains("ord-1 (correlation corr-1)"));
    }

    #[test]
    fn an_event_eventbridge_could_not_deliver_shows_eventbridge_s_error() {
        let m = message(r#"{"detail-type":"order.placed","detail":{}}"#)
            .message_attributes("ERROR_CODE", string("SQS.AccessDenied"))
            .message_attributes("ERROR_MESSAGE", string("no permission"))
            .build();
        let letter = DeadLetter::of(&m);
        assert_eq!(letter.error_kind.as_deref(), Some("SQS.AccessDenied"));
        assert_eq!(letter.error_reason.as_deref(), Some("no permission"));
        assert_eq!(letter.event_type.as_deref(), Some("order.placed"));
    }

    #[test]
    fn a_poison_message_is_shown_as_such_with_the_start_of_its_body() {
        let letter = DeadLetter::of(&message("not json at all").build());
        assert!(!letter.readable);
        assert_eq!(letter.message_id, "m-1");
        assert_eq!((&letter.event_type, &letter.order_id, &letter.error_kind), (&None, &None, &None));
        assert!(letter.text().contains("(poison): not json at all"));
    }

    #[test]
    fn a_message_without_failure_attributes_was_moved_by_the_redrive_policy() {
        let letter = DeadLetter::of(&message(r#"{"detail":{"type":"order.placed"}}"#).build());
        assert!(letter.text().contains("receives ran out"));
    }
}
