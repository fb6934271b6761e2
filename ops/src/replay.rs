//! `replay`: events of a time range from the bus's archive back onto the bus, to every rule or
//! to one consumer's rule only.
//!
//! In AWS, EventBridge's own replay (`StartReplay`, with `Destination.FilterArns` = the
//! consumer's rule for `--consumer`), followed with `DescribeReplay`. The archive and the rule
//! are found from the stack's outputs: the archive is the one whose source is the bus
//! (`ListArchives`), the consumer's rule the one that targets its queue
//! (`ListRuleNamesByTarget`).
//!
//! Locally, moto's `StartReplay` is not faithful: it replays the whole archive, whatever the
//! time range, to every rule, whatever `FilterArns`, in the call itself. So the local replay
//! does what EventBridge does itself: it reads the archived events from the emulator (moto's
//! state API, `/moto-api/data.json`), keeps those that occurred in [from, to), and delivers
//! each, with a new envelope `id` and `replay-name` as EventBridge adds them, to the SQS
//! targets of the enabled rules (all, or the consumer's) whose pattern matches it. It is
//! reported as emulated. The archive's own rule never receives a replayed event (its pattern
//! excludes `replay-name`, in AWS as in moto).

use crate::error::{self, Failure};
use crate::pattern;
use crate::report::{progress, Done};
use crate::target::{Consumer, Place, Target};
use aws_sdk_eventbridge::primitives::DateTime as AwsTime;
use aws_sdk_eventbridge::types::ReplayDestination;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub consumer: Option<Consumer>,
    /// Confirmed on the command line: no question asked.
    pub yes: bool,
    /// In AWS, poll `DescribeReplay` until the replay ends.
    pub wait: bool,
}

/// Asks the operator before anything is replayed.
pub trait Confirm {
    fn confirm(&mut self, question: &str) -> Result<bool, Failure>;
}

/// The question on stderr, the answer from stdin; no terminal, no answer: refused.
pub struct Terminal;

impl Confirm for Terminal {
    fn confirm(&mut self, question: &str) -> Result<bool, Failure> {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            return Err(Failure::refused(format!(
                "{question}\nnot replayed: there is no terminal to confirm on; re-run with --yes to replay"
            )));
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::refused(format!("no answer: {e}")))?;
        Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Replayed {
    name: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<String>,
    archive: String,
    archive_arn: String,
    /// Events in the whole archive (EventBridge counts no more precisely before a replay).
    archive_event_count: i64,
    bus: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer: Option<Consumer>,
    /// The rules replayed to (`FilterArns`); empty: every rule of the bus.
    rules: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_last_replayed_time: Option<DateTime<Utc>>,
    /// Locally: moto's replay is not faithful, this one routes the events itself.
    emulated: bool,
    /// Locally: the events of the range, and each delivery made.
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deliveries: Vec<Delivery>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped_targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    rule: String,
    target: String,
    events: usize,
}

pub async fn replay(target: &Target, request: &Request, confirm: &mut dyn Confirm) -> Result<Done, Failure> {
    if request.from >= request.to {
        return Err(Failure::refused(format!(
            "--from {} is not before --to {}: give the range of event times to replay",
            request.from.to_rfc3339(),
            request.to.to_rfc3339()
        )));
    }
    let events = aws_sdk_eventbridge::Client::new(&target.aws);
    let bus = target.output("EventBusName")?.to_owned();
    let bus_arn = target.output("EventBusArn")?.to_owned();
    let (archive, archive_arn, archive_event_count) = archive_of(&events, &bus, &bus_arn).await?;
    let rules = match request.consumer {
        Some(consumer) => vec![rule_of(target, &events, &bus, consumer).await?],
        None => Vec::new(),
    };
    let whom = match (request.consumer, rules.first()) {
        (Some(consumer), Some(rule)) => format!("{consumer}'s rule only ({})", rule.rsplit('/').next().unwrap_or(rule)),
        _ => "every rule of the bus (all consumers)".to_owned(),
    };
    let question = format!(
        "Replay the events that occurred between {} and {} from archive {archive} ({archive_event_count} event(s) \
         archived in all) onto bus {bus}, to {whom}, on {}? Consumers skip the events they already applied \
         (by eventId).",
        request.from.to_rfc3339_opts(SecondsFormat::Secs, true),
        request.to.to_rfc3339_opts(SecondsFormat::Secs, true),
        target.describe()
    );
    if !request.yes && !confirm.confirm(&question)? {
        return Err(Failure::refused("not replayed: not confirmed"));
    }
    let name = replay_name(request.consumer);
    let mut done = Replayed {
        name: name.clone(),
        state: String::new(),
        state_reason: None,
        archive,
        archive_arn,
        archive_event_count,
        bus,
        from: request.from,
        to: request.to,
        consumer: request.consumer,
        rules,
        event_last_replayed_time: None,
        emulated: target.is_local(),
        events: None,
        deliveries: Vec::new(),
        skipped_targets: Vec::new(),
    };
    match &target.place {
        Place::Local { endpoint, .. } => emulate(target, &events, endpoint, &mut done).await?,
        Place::Deployed { .. } => start(&events, &bus_arn, request.wait, &mut done).await?,
    }
    let text = text(&done);
    let exit = if matches!(done.state.as_str(), "FAILED" | "CANCELLED") { error::EXIT_FAILED } else { 0 };
    Ok(Done::new(serde_json::json!({"target": target.json(), "replay": done}), text).with_exit(exit))
}

fn text(done: &Replayed) -> String {
    let mut text = format!("replay {}: {}", done.name, done.state);
    if let Some(reason) = &done.state_reason {
        text += &format!(" ({reason})");
    }
    if let Some(events) = done.events {
        let delivered: usize = done.deliveries.iter().map(|d| d.events).sum();
        text += &format!(
            "\n{events} archived event(s) in the range, {delivered} delivered to queues (emulated locally: moto's own \
             replay ignores the range and the rule filter)"
        );
        for delivery in &done.deliveries {
            text += &format!("\n  {} -> {}: {}", delivery.rule, delivery.target, delivery.events);
        }
        for skipped in &done.skipped_targets {
            text += &format!("\n  not delivered (not emulated): {skipped}");
        }
    } else if let Some(last) = done.event_last_replayed_time {
        text += &format!(", replayed up to {}", last.to_rfc3339());
    }
    if done.state == "STARTING" || done.state == "RUNNING" {
        text += &format!(
            "\nfollow it with `aws events describe-replay --replay-name {}` (or re-run with --wait)",
            done.name
        );
    }
    text
}

/// `shop-ops-<consumer|all>-<ulid>`: unique, within the 64 characters EventBridge allows.
fn replay_name(consumer: Option<Consumer>) -> String {
    let whom = consumer.map_or("all", Consumer::name);
    format!("shop-ops-{whom}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

async fn archive_of(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    bus_arn: &str,
) -> Result<(String, String, i64), Failure> {
    let listed = events
        .list_archives()
        .event_source_arn(bus_arn)
        .send()
        .await
        .map_err(|e| error::aws(&format!("listing the archives of bus {bus}"), e))?;
    let names: Vec<&str> = listed.archives().iter().filter_map(|a| a.archive_name()).collect();
    let name = match names.as_slice() {
        [one] => (*one).to_owned(),
        [] => {
            return Err(Failure::failed(format!(
                "bus {bus} has no archive, so there is nothing to replay: the template's OrderEventsArchive \
                 archives it; is the stack fully deployed?"
            )))
        }
        several => {
            return Err(Failure::failed(format!(
                "bus {bus} has several archives ({}): this CLI replays from the stack's one archive only",
                several.join(", ")
            )))
        }
    };
    let described = events
        .describe_archive()
        .archive_name(&name)
        .send()
        .await
        .map_err(|e| error::aws(&format!("describing archive {name}"), e))?;
    let arn = described.archive_arn().unwrap_or_default().to_owned();
    Ok((name, arn, described.event_count()))
}

/// The ARN of the rule that targets the consumer's queue.
async fn rule_of(
    target: &Target,
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    consumer: Consumer,
) -> Result<String, Failure> {
    let sqs = aws_sdk_sqs::Client::new(&target.aws);
    let queue = crate::dlq::depth(&sqs, target.queue_url(consumer)?).await?;
    let listed = events
        .list_rule_names_by_target()
        .target_arn(&queue.arn)
        .event_bus_name(bus)
        .send()
        .await
        .map_err(|e| error::aws(&format!("finding the rule that targets {}", queue.arn), e))?;
    let Some(name) = listed.rule_names().first() else {
        return Err(Failure::failed(format!(
            "no rule on bus {bus} targets {consumer}'s queue ({}): the stack is not wired as template.yaml says",
            queue.arn
        )));
    };
    let rule = events
        .describe_rule()
        .name(name)
        .event_bus_name(bus)
        .send()
        .await
        .map_err(|e| error::aws(&format!("describing rule {name}"), e))?;
    rule.arn().map(str::to_owned).ok_or_else(|| Failure::failed(format!("rule {name} has no ARN")))
}

/// In AWS: EventBridge's replay.
async fn start(
    events: &aws_sdk_eventbridge::Client,
    bus_arn: &str,
    wait: bool,
    done: &mut Replayed,
) -> Result<(), Failure> {
    let destination = ReplayDestination::builder()
        .arn(bus_arn)
        .set_filter_arns((!done.rules.is_empty()).then(|| done.rules.clone()))
        .build()
        .map_err(|e| Failure::failed(e.to_string()))?;
    events
        .start_replay()
        .replay_name(&done.name)
        .description(format!("shop-ops replay to {}", done.consumer.map_or("all consumers", Consumer::name)))
        .event_source_arn(&done.archive_arn)
        .event_start_time(AwsTime::from_millis(done.from.timestamp_millis()))
        .event_end_time(AwsTime::from_millis(done.to.timestamp_millis()))
        .destination(destination)
        .send()
        .await
        .map_err(|e| error::aws(&format!("starting replay {} from {}", done.name, done.archive), e))?;
    loop {
        let described = events
            .describe_replay()
            .replay_name(&done.name)
            .send()
            .await
            .map_err(|e| error::aws(&format!("describing replay {}", done.name), e))?;
        done.state = described.state().map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned());
        done.state_reason = described.state_reason().map(str::to_owned);
        done.event_last_replayed_time = described
            .event_last_replayed_time()
            .and_then(|t| t.to_millis().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        if !wait || !matches!(done.state.as_str(), "STARTING" | "RUNNING") {
            return Ok(());
        }
        progress(format!(
            "replay {}: {}{}",
            done.name,
            done.state,
            done.event_last_replayed_time.map(|t| format!(", replayed up to {}", t.to_rfc3339())).unwrap_or_default()
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Locally: EventBridge's replay, done by hand over the emulator's archive (see the module).
async fn emulate(
    target: &Target,
    events: &aws_sdk_eventbridge::Client,
    endpoint: &str,
    done: &mut Replayed,
) -> Result<(), Failure> {
    let archived = archived_events(endpoint, &done.archive_arn).await?;
    let mut in_range: Vec<(DateTime<Utc>, serde_json::Map<String, Value>)> = archived
        .into_iter()
        .filter_map(|event| {
            let at = event_time(event.get("time")?)?;
            let event = event.as_object()?.clone();
            (done.from <= at && at < done.to).then_some((at, event))
        })
        .collect();
    in_range.sort_by_key(|(at, _)| *at);
    let routes = routes(target, events, &done.bus, &done.rules, &mut done.skipped_targets).await?;
    let sqs = aws_sdk_sqs::Client::new(&target.aws);
    let mut counts = vec![0usize; routes.len()];
    for (n, (at, archived)) in in_range.iter().enumerate() {
        let event = replayed(archived, *at, &done.name);
        for (route, count) in routes.iter().zip(counts.iter_mut()) {
            let matched = pattern::matches(&route.pattern, &event)
                .map_err(|e| Failure::failed(format!("rule {}: {e}", route.rule)))?;
            if matched {
                sqs.send_message()
                    .queue_url(&route.queue_url)
                    .message_body(event.to_string())
                    .send()
                    .await
                    .map_err(|e| error::aws(&format!("delivering to {}", route.queue_url), e))?;
                *count += 1;
            }
        }
        if (n + 1) % 10 == 0 {
            progress(format!("replay {}: {} of {} event(s)", done.name, n + 1, in_range.len()));
        }
    }
    done.events = Some(in_range.len());
    done.deliveries = routes
        .iter()
        .zip(counts)
        .map(|(route, events)| Delivery { rule: route.rule.clone(), target: route.target.clone(), events })
        .collect();
    done.state = "COMPLETED".into();
    if let Some((at, _)) = in_range.last() {
        done.event_last_replayed_time = Some(*at);
    }
    Ok(())
}

/// The archived events, as moto holds them (its state API; there is no AWS API that reads an
/// archive).
async fn archived_events(endpoint: &str, archive_arn: &str) -> Result<Vec<Value>, Failure> {
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    let cannot = |why: String| {
        Failure::failed(format!(
            "cannot read the local archive from the emulator ({url}: {why}); the local replay needs moto's state API"
        ))
    };
    let state: Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| cannot(e.to_string()))?
        .json()
        .await
        .map_err(|e| cannot(e.to_string()))?;
    let archives =
        state.pointer("/events/Archive").and_then(Value::as_array).ok_or_else(|| cannot("no archives".into()))?;
    let archive = archives
        .iter()
        .find(|a| a.get("arn").and_then(Value::as_str) == Some(archive_arn))
        .ok_or_else(|| cannot(format!("no archive {archive_arn}")))?;
    Ok(archive.get("events").and_then(Value::as_array).cloned().unwrap_or_default())
}

/// moto keeps an archived event's `time` as epoch seconds; accept RFC 3339 too.
fn event_time(time: &Value) -> Option<DateTime<Utc>> {
    match time {
        Value::Number(seconds) => {
            let millis = (seconds.as_f64()? * 1000.0).round() as i64;
            DateTime::<Utc>::from_timestamp_millis(millis)
        }
        Value::String(text) => text
            .parse::<f64>()
            .ok()
            .and_then(|s| DateTime::<Utc>::from_timestamp_millis((s * 1000.0).round() as i64))
            .or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))),
        _ => None,
    }
}

/// The event as a replay delivers it: a new envelope `id`, `replay-name`, the original time in
/// EventBridge's format, and nothing of the archive's own bookkeeping.
fn replayed(archived: &serde_json::Map<String, Value>, at: DateTime<Utc>, name: &str) -> Value {
    let mut event = archived.clone();
    event.remove("ingestion-time");
    event.insert("id".into(), Value::String(uuid_like()));
    event.insert("time".into(), Value::String(at.to_rfc3339_opts(SecondsFormat::Secs, true)));
    event.insert("replay-name".into(), Value::String(name.to_owned()));
    Value::Object(event)
}

/// A random ID in the UUID form EventBridge's `id` has.
fn uuid_like() -> String {
    let hex = format!("{:032x}", ulid::Ulid::new().0);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// One SQS target of an enabled rule the replay goes to.
struct Route {
    rule: String,
    pattern: Value,
    target: String,
    queue_url: String,
}

async fn routes(
    target: &Target,
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    only: &[String],
    skipped: &mut Vec<String>,
) -> Result<Vec<Route>, Failure> {
    let sqs = aws_sdk_sqs::Client::new(&target.aws);
    let mut routes = Vec::new();
    let mut token = None;
    loop {
        let page = events
            .list_rules()
            .event_bus_name(bus)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| error::aws(&format!("listing the rules of bus {bus}"), e))?;
        for rule in page.rules() {
            let (Some(name), Some(arn)) = (rule.name(), rule.arn()) else { continue };
            let enabled = rule.state().is_some_and(|s| s.as_str() == "ENABLED");
            // The archive's own rule is managed by EventBridge and excludes replayed events.
            if !enabled || rule.managed_by().is_some() || !(only.is_empty() || only.iter().any(|o| o == arn)) {
                continue;
            }
            let Some(text) = rule.event_pattern() else { continue };
            let pattern: Value =
                serde_json::from_str(text).map_err(|e| Failure::failed(format!("rule {name}: pattern {text}: {e}")))?;
            let targets = events
                .list_targets_by_rule()
                .rule(name)
                .event_bus_name(bus)
                .send()
                .await
                .map_err(|e| error::aws(&format!("listing the targets of rule {name}"), e))?;
            for t in targets.targets() {
                let transforms = t.input().is_some() || t.input_path().is_some() || t.input_transformer().is_some();
                // arn:<partition>:sqs:<region>:<account>:<queue name>
                let parts: Vec<&str> = t.arn().splitn(6, ':').collect();
                match parts.as_slice() {
                    ["arn", _, "sqs", _, account, queue_name] if !transforms => {
                        let url = sqs
                            .get_queue_url()
                            .queue_name(*queue_name)
                            .queue_owner_aws_account_id(*account)
                            .send()
                            .await
                            .map_err(|e| error::aws(&format!("finding the queue {queue_name}"), e))?;
                        routes.push(Route {
                            rule: name.to_owned(),
                            pattern: pattern.clone(),
                            target: t.arn().to_owned(),
                            queue_url: url.queue_url().unwrap_or_default().to_owned(),
                        });
                    }
                    _ => skipped.push(format!("rule {name} target {} (only plain SQS targets are emulated)", t.arn())),
                }
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(routes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Answer(bool, Vec<String>);

    impl Confirm for Answer {
        fn confirm(&mut self, question: &str) -> Result<bool, Failure> {
            self.1.push(question.to_owned());
            Ok(self.0)
        }
    }

    #[test]
    fn moto_s_epoch_seconds_and_rfc3339_times_both_read() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        assert_eq!(event_time(&json!(at.timestamp() as f64)), Some(at));
        assert_eq!(event_time(&json!("2026-01-02T03:04:05Z")), Some(at));
        assert_eq!(event_time(&json!(null)), None);
    }

    #[test]
    fn a_replayed_event_gets_a_new_id_and_its_replay_name_and_keeps_its_time_and_detail() {
        let archived = json!({"id": "old", "time": 1.5, "ingestion-time": 2.0, "detail": {"eventId": "E1"}});
        let at = DateTime::<Utc>::from_timestamp(1_767_323_045, 0).unwrap();
        let event = replayed(archived.as_object().unwrap(), at, "r1");
        assert_ne!(event["id"], "old");
        assert_eq!(event["id"].as_str().unwrap().len(), 36);
        assert_eq!(event["replay-name"], "r1");
        assert_eq!(event["time"], "2026-01-02T03:04:05Z");
        assert_eq!(event["detail"]["eventId"], "E1");
        assert!(event.get("ingestion-time").is_none());
    }

    #[test]
    fn replay_names_are_unique_and_within_eventbridge_s_limits() {
        let (a, b) = (replay_name(Some(Consumer::Recommendations)), replay_name(None));
        assert_ne!(a, replay_name(Some(Consumer::Recommendations)));
        for name in [a, b] {
            assert!(name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{name}");
        }
    }

    #[tokio::test]
    async fn a_range_that_ends_before_it_starts_is_refused_before_anything_is_asked() {
        let target = Target {
            place: Place::Deployed { stack: "s".into() },
            region: "us-east-1".into(),
            outputs: Default::default(),
            aws: aws_config::SdkConfig::builder().build(),
        };
        let now = Utc::now();
        let request =
            Request { from: now, to: now - chrono::Duration::hours(1), consumer: None, yes: false, wait: false };
        let mut answer = Answer(true, Vec::new());
        let failure = replay(&target, &request, &mut answer).await.unwrap_err();
        assert!(failure.message.contains("is not before --to"), "{failure}");
        assert!(answer.1.is_empty());
    }
}
