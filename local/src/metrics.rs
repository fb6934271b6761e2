//! What CloudWatch makes of the functions' embedded-metric-format (EMF) lines, locally: every
//! line the functions emit (`shared::telemetry::emit`, which hands it to the sink installed
//! here) is read as CloudWatch reads it, and counted per service and metric, per dimension value
//! and per minute. The dashboard page and `make demo`'s summary read the same numbers.
//!
//! A document is read in the general EMF shape, not just the shape the functions write today:
//! several directives in `_aws.CloudWatchMetrics`, several metrics and dimension sets in each,
//! values as a number or an array of numbers. Each metric's values are counted once per
//! document under its service (so a metric declared under both `[service]` and
//! `[service, reason]` is not counted twice), and once more under each dimension set that names
//! more than the service (the breakdowns: rejections by reason, failures by error kind).

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Minutes of per-minute history kept (older buckets are dropped as time moves on).
pub const MINUTES_KEPT: i64 = 60;
/// Values CloudWatch takes in one EMF array; more is a malformed document.
pub const MAX_VALUES: usize = 100;

/// Why a line was not counted (the line is dropped, as CloudWatch drops what it cannot read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmfError {
    #[error("not a JSON object")]
    NotJson,
    #[error("no _aws.CloudWatchMetrics array: a log line, not an EMF document")]
    NotEmf,
    #[error("metric {0} has no numeric value (a number, or an array of at most 100 numbers)")]
    BadValue(String),
}

/// Values seen of one series: how many, their sum, extremes and the last one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stat {
    pub samples: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub last: Option<f64>,
}

impl Stat {
    fn add(&mut self, value: f64) {
        self.samples += 1;
        self.sum += value;
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
        self.last = Some(value);
    }

    fn merge(&mut self, other: &Stat) {
        self.samples += other.samples;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if other.last.is_some() {
            self.last = other.last;
        }
    }

    pub fn average(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.sum / self.samples as f64)
    }
}

/// A series: a service's metric, overall (`dimensions` empty) or for one value of its other
/// dimensions (e.g. `[("reason", "unknown-sku")]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    service: String,
    metric: String,
    dimensions: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
struct Series {
    unit: Option<String>,
    total: Stat,
    /// Minute (Unix milliseconds / 60 000) → values in it.
    minutes: BTreeMap<i64, Stat>,
}

/// Counts of EMF documents, per service, metric, dimension value and minute.
#[derive(Debug, Clone, Default)]
pub struct Aggregator {
    series: BTreeMap<Key, Series>,
    lines_counted: u64,
    lines_refused: u64,
    newest_minute: i64,
}

fn numbers(value: Option<&Value>) -> Option<Vec<f64>> {
    match value? {
        Value::Number(n) => n.as_f64().map(|v| vec![v]),
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_VALUES => {
            items.iter().map(Value::as_f64).collect()
        }
        _ => None,
    }
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    /// Counts one EMF line; the number of values counted, or why none was. `now_ms` stands
    /// for the document's time when it has no `_aws.Timestamp`.
    pub fn record(&mut self, line: &str, now_ms: i64) -> Result<usize, EmfError> {
        let result = self.read(line, now_ms);
        match result {
            Ok(_) => self.lines_counted += 1,
            Err(_) => self.lines_refused += 1,
        }
        result
    }

    fn read(&mut self, line: &str, now_ms: i64) -> Result<usize, EmfError> {
        let document: Value = serde_json::from_str(line.trim()).map_err(|_| EmfError::NotJson)?;
        let document = document.as_object().ok_or(EmfError::NotJson)?;
        let aws = document.get("_aws").ok_or(EmfError::NotEmf)?;
        let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or(EmfError::NotEmf)?;
        let timestamp = aws.get("Timestamp").and_then(Value::as_i64).unwrap_or(now_ms);
        let minute = timestamp.div_euclid(60_000);
        let service = document.get("service").and_then(Value::as_str).unwrap_or_default().to_owned();

        // Every series this document adds to, once each, with the metric's values and unit.
        let mut wanted: BTreeMap<Key, Option<String>> = BTreeMap::new();
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for directive in directives {
            let metrics = directive.get("Metrics").and_then(Value::as_array).into_iter().flatten();
            let sets: Vec<Vec<(String, String)>> = directive
                .get("Dimensions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|set| {
                    // A set naming a dimension the document does not carry as a string is
                    // one CloudWatch rejects: it gets no breakdown.
                    let names = set.as_array()?;
                    let mut pairs: Vec<(String, String)> = names
                        .iter()
                        .map(|name| {
                            let name = name.as_str()?;
                            Some((name.to_owned(), document.get(name)?.as_str()?.to_owned()))
                        })
                        .collect::<Option<_>>()?;
                    pairs.retain(|(name, _)| name != "service");
                    pairs.sort();
                    Some(pairs)
                })
                .collect();
            for metric in metrics {
                let Some(name) = metric.get("Name").and_then(Value::as_str) else { continue };
                let unit = metric.get("Unit").and_then(Value::as_str).map(str::to_owned);
                let found = numbers(document.get(name)).ok_or_else(|| EmfError::BadValue(name.to_owned()))?;
                values.insert(name.to_owned(), found);
                let key = |dimensions| Key { service: service.clone(), metric: name.to_owned(), dimensions };
                wanted.insert(key(Vec::new()), unit.clone());
                for set in sets.iter().filter(|set| !set.is_empty()) {
                    wanted.insert(key(set.clone()), unit.clone());
                }
            }
        }
        let mut counted = 0;
        for (key, unit) in wanted {
            let found = &values[&key.metric];
            let series = self.series.entry(key.clone()).or_default();
            if unit.is_some() {
                series.unit = unit;
            }
            let bucket = series.minutes.entry(minute).or_default();
            for value in found {
                series.total.add(*value);
                bucket.add(*value);
            }
            if key.dimensions.is_empty() {
                counted += found.len();
            }
        }
        if minute > self.newest_minute {
            self.newest_minute = minute;
            let oldest = minute - MINUTES_KEPT;
            for series in self.series.values_mut() {
                series.minutes.retain(|m, _| *m > oldest);
            }
        }
        Ok(counted)
    }

    /// Every value of `service`'s `metric` so far.
    pub fn total(&self, service: &str, metric: &str) -> Stat {
        self.series.get(&key(service, metric, &[])).map(|s| s.total).unwrap_or_default()
    }

    /// The sum of `service`'s `metric` (what a Count metric counted).
    pub fn sum(&self, service: &str, metric: &str) -> f64 {
        self.total(service, metric).sum
    }

    /// The sums of `service`'s `metric` per value of `dimension` (from the dimension sets that
    /// name it besides the service), e.g. rejections per reason.
    pub fn breakdown(&self, service: &str, metric: &str, dimension: &str) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for (k, series) in self.range(service, metric) {
            if let [(name, value)] = k.dimensions.as_slice() {
                if name == dimension {
                    *sums.entry(value.clone()).or_default() += series.total.sum;
                }
            }
        }
        sums
    }

    /// The values of `service`'s `metric` in each of the `minutes` minutes up to the one
    /// holding `now_ms`, oldest first: (minute start in Unix milliseconds, values in it).
    pub fn per_minute(&self, service: &str, metric: &str, now_ms: i64, minutes: i64) -> Vec<(i64, Stat)> {
        let current = now_ms.div_euclid(60_000);
        let series = self.series.get(&key(service, metric, &[]));
        (current - minutes + 1..=current)
            .map(|m| (m * 60_000, series.and_then(|s| s.minutes.get(&m)).copied().unwrap_or_default()))
            .collect()
    }

    /// The values of `service`'s `metric` in the last `minutes` minutes up to `now_ms`.
    pub fn recent(&self, service: &str, metric: &str, now_ms: i64, minutes: i64) -> Stat {
        let mut stat = Stat::default();
        for (_, bucket) in self.per_minute(service, metric, now_ms, minutes) {
            stat.merge(&bucket);
        }
        stat
    }

    /// Every service and metric seen, with its unit and overall values: the raw view.
    pub fn services(&self) -> BTreeMap<String, BTreeMap<String, SeriesView>> {
        let mut services: BTreeMap<String, BTreeMap<String, SeriesView>> = BTreeMap::new();
        for (k, series) in self.series.iter().filter(|(k, _)| k.dimensions.is_empty()) {
            let view = SeriesView { unit: series.unit.clone(), total: series.total };
            services.entry(k.service.clone()).or_default().insert(k.metric.clone(), view);
        }
        services
    }

    /// (lines counted, lines refused).
    pub fn lines(&self) -> (u64, u64) {
        (self.lines_counted, self.lines_refused)
    }

    fn range<'a>(&'a self, service: &'a str, metric: &'a str) -> impl Iterator<Item = (&'a Key, &'a Series)> + 'a {
        self.series
            .range(key(service, metric, &[])..)
            .take_while(move |(k, _)| k.service == service && k.metric == metric)
    }

    /// The numbers `make demo` prints and the page heads with, for `consumers` (service names).
    pub fn summary(&self, consumers: &[String]) -> Summary {
        let consumers = consumers
            .iter()
            .map(|service| ConsumerCounts {
                service: service.clone(),
                processed: self.sum(service, "EventsProcessed"),
                duplicate: self.sum(service, "EventsDuplicate"),
                failed: self.sum(service, "EventsFailed"),
                poison: self.sum(service, "EventsPoison"),
                failed_by_kind: self.breakdown(service, "EventsFailed", "errorKind"),
            })
            .collect();
        Summary {
            orders_placed: self.sum("checkout", "OrdersPlaced"),
            orders_rejected: self.sum("checkout", "OrdersRejected"),
            rejected_by_reason: self.breakdown("checkout", "OrdersRejected", "reason"),
            consumers,
        }
    }
}

fn key(service: &str, metric: &str, dimensions: &[(String, String)]) -> Key {
    Key { service: service.to_owned(), metric: metric.to_owned(), dimensions: dimensions.to_vec() }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesView {
    pub unit: Option<String>,
    pub total: Stat,
}

/// One consumer's counts (sums of its Count metrics).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerCounts {
    pub service: String,
    pub processed: f64,
    pub duplicate: f64,
    pub failed: f64,
    pub poison: f64,
    pub failed_by_kind: BTreeMap<String, f64>,
}

/// The counts the demo's summary and the page's headline share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub orders_placed: f64,
    pub orders_rejected: f64,
    pub rejected_by_reason: BTreeMap<String, f64>,
    pub consumers: Vec<ConsumerCounts>,
}

impl Summary {
    /// The summary as `make demo` prints it, one line each.
    pub fn lines(&self) -> Vec<String> {
        let reasons: Vec<String> = self.rejected_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let mut lines = vec![format!(
            "checkout        placed {}, rejected {}{}",
            self.orders_placed,
            self.orders_rejected,
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
        )];
        for c in &self.consumers {
            let kinds: Vec<String> = c.failed_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            lines.push(format!(
                "{:<15} processed {}, duplicate {}, failed {}{}, poison {}",
                c.service,
                c.processed,
                c.duplicate,
                c.failed,
                if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) },
                c.poison
            ));
        }
        lines
    }
}

/// The aggregator the runner's sink feeds, shared with whoever reads it.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<Aggregator>>);

impl Metrics {
    pub fn record(&self, line: &str) -> Result<usize, EmfError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.lock().record(line, now)
    }

    /// Reads the aggregator (briefly: the functions' emits wait meanwhile).
    pub fn read<T>(&self, f: impl FnOnce(&Aggregator) -> T) -> T {
        f(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aggregator> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

static COLLECTED: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics: the first call installs `shared::telemetry`'s sink (one per process,
/// as there is one stdout), later calls return the same aggregator. In-process functions of every
/// `LocalSystem` in this process feed it, so a process that runs one system sees its own.
pub fn collected() -> Metrics {
    COLLECTED
        .get_or_init(|| {
            let metrics = Metrics::default();
            let sink = metrics.clone();
            if !shared::telemetry::collect_metrics(move |line| {
                let _ = sink.record(line);
            }) {
                tracing::warn!("another metric sink is installed; the dashboard counts nothing");
            }
            metrics
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, a minute boundary

    /// One document as the METRICS catalogue describes a consumer's batch line.
    fn batch_line(service: &str, at: i64, processed: u32, failed: &[(&str, u32)], ages: &[f64]) -> String {
        let mut doc = json!({
            "_aws": {
                "Timestamp": at,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Shop",
                        "Dimensions": [["service"]],
                        "Metrics": [
                            {"Name": "EventsProcessed", "Unit": "Count"},
                            {"Name": "EventsDuplicate", "Unit": "Count"},
                            {"Name": "EventAgeMilliseconds", "Unit": "Milliseconds"}
                        ]
                    },
                    {
                        "Namespace": "Shop",
                        "Dimensions": [["service"], ["service", "errorKind"]],
                        "Metrics": [{"Name": "EventsFailed", "Unit": "Count"}]
                    }
                ]
            },
            "service": service,
            "EventsProcessed": processed,
            "EventsDuplicate": 0,
            "EventAgeMilliseconds": ages,
        });
        // No ages, no data (an empty value array is no value).
        if ages.is_empty() {
            doc.as_object_mut().unwrap().remove("EventAgeMilliseconds");
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array_mut().unwrap().pop();
        }
        // One errorKind per document: a batch with two kinds writes two documents.
        let (kind, count) = failed.first().copied().unwrap_or(("transient", 0));
        doc["errorKind"] = json!(kind);
        doc["EventsFailed"] = json!(count);
        doc.to_string()
    }

    fn emf(service: &str, name: &str, value: Value) -> String {
        json!({
            "_aws": {"Timestamp": NOW, "CloudWatchMetrics": [{"Namespace": "Shop", "Dimensions": [["service"]], "Metrics": [{"Name": name, "Unit": "Count"}]}]},
            "service": service,
            name: value,
        })
        .to_string()
    }

    #[test]
    fn given_the_lines_telemetry_writes_today_when_recorded_then_each_counts_its_value() {
        let mut agg = Aggregator::new();
        for _ in 0..3 {
            let line =
                shared::telemetry::emf_line("Shop", "checkout", "OrdersPlaced", shared::telemetry::Unit::Count, 1.0);
            assert_eq!(agg.record(&line, NOW), Ok(1));
        }
        let line =
            shared::telemetry::emf_line("Shop", "checkout", "OrdersRejected", shared::telemetry::Unit::Count, 1.0);
        agg.record(&line, NOW).unwrap();
        assert_eq!((agg.sum("checkout", "OrdersPlaced"), agg.sum("checkout", "OrdersRejected")), (3.0, 1.0));
    }

    #[test]
    fn given_a_document_with_several_directives_and_metrics_then_every_metric_is_counted_under_its_service() {
        let mut agg = Aggregator::new();
        agg.record(&batch_line("email", NOW, 4, &[("transient", 1)], &[120.0, 80.0]), NOW).unwrap();
        agg.record(&batch_line("email", NOW, 2, &[], &[40.0]), NOW).unwrap();
        agg.record(&batch_line("loyalty", NOW, 1, &[], &[10.0]), NOW).unwrap();
        assert_eq!(agg.sum("email", "EventsProcessed"), 6.0);
        assert_eq!(agg.sum("email", "EventsFailed"), 1.0);
        assert_eq!(agg.sum("loyalty", "EventsProcessed"), 1.0);
        assert_eq!(agg.sum("inventory", "EventsProcessed"), 0.0, "a service never seen counts zero");
    }

    #[test]
    fn given_a_metric_under_two_dimension_sets_then_its_service_total_counts_it_once_and_the_breakdown_by_value() {
        let mut agg = Aggregator::new();
        agg.record(&batch_line("email", NOW, 0, &[("permanent", 1)], &[]), NOW).unwrap();
        agg.record(&batch_line("email", NOW, 0, &[("transient", 2)], &[]), NOW).unwrap();
        agg.record(&batch_line("email", NOW, 0, &[("transient", 1)], &[]), NOW).unwrap();
        assert_eq!(agg.sum("email", "EventsFailed"), 4.0, "not doubled by the [service, errorKind] set");
        assert_eq!(
            agg.breakdown("email", "EventsFailed", "errorKind"),
            BTreeMap::from([("permanent".to_owned(), 1.0), ("transient".to_owned(), 3.0)])
        );
    }

    #[test]
    fn given_rejections_declared_only_per_reason_then_the_service_total_still_counts_them() {
        let mut agg = Aggregator::new();
        let line = json!({
            "_aws": {"Timestamp": NOW, "CloudWatchMetrics": [{"Namespace": "Shop", "Dimensions": [["service", "reason"]], "Metrics": [{"Name": "OrdersRejected", "Unit": "Count"}]}]},
            "service": "checkout", "reason": "unknown-sku", "OrdersRejected": 1
        });
        agg.record(&line.to_string(), NOW).unwrap();
        assert_eq!(agg.sum("checkout", "OrdersRejected"), 1.0);
        assert_eq!(agg.breakdown("checkout", "OrdersRejected", "reason")["unknown-sku"], 1.0);
    }

    #[test]
    fn given_a_value_array_then_every_value_is_a_sample_of_the_series() {
        let mut agg = Aggregator::new();
        assert_eq!(agg.record(&batch_line("email", NOW, 3, &[], &[100.0, 300.0, 200.0]), NOW), Ok(6));
        let age = agg.total("email", "EventAgeMilliseconds");
        assert_eq!((age.samples, age.min, age.max, age.last), (3, Some(100.0), Some(300.0), Some(200.0)));
        assert_eq!(age.average(), Some(200.0));
    }

    #[test]
    fn given_documents_in_different_minutes_then_per_minute_puts_each_in_its_minute_oldest_first() {
        let mut agg = Aggregator::new();
        agg.record(
            &emf("checkout", "OrdersPlaced", json!(1)).replace(&NOW.to_string(), &(NOW - 60_000).to_string()),
            NOW,
        )
        .unwrap();
        agg.record(&emf("checkout", "OrdersPlaced", json!(1)), NOW).unwrap();
        agg.record(&emf("checkout", "OrdersPlaced", json!(1)), NOW).unwrap();
        let minutes: Vec<(i64, f64)> =
            agg.per_minute("checkout", "OrdersPlaced", NOW + 5_000, 3).into_iter().map(|(m, s)| (m, s.sum)).collect();
        assert_eq!(minutes, vec![(NOW - 120_000, 0.0), (NOW - 60_000, 1.0), (NOW, 2.0)]);
        assert_eq!(agg.recent("checkout", "OrdersPlaced", NOW + 5_000, 1).sum, 2.0);
    }

    #[test]
    fn given_a_document_without_timestamp_then_it_counts_in_the_minute_it_was_read() {
        let mut agg = Aggregator::new();
        let line = json!({"_aws": {"CloudWatchMetrics": [{"Namespace": "Shop", "Dimensions": [["service"]], "Metrics": [{"Name": "OutboxRelayed"}]}]}, "service": "outbox-relay", "OutboxRelayed": 2});
        agg.record(&line.to_string(), NOW).unwrap();
        assert_eq!(agg.recent("outbox-relay", "OutboxRelayed", NOW, 1).sum, 2.0);
    }

    #[test]
    fn given_an_hour_later_then_older_minutes_are_dropped_but_totals_are_kept() {
        let mut agg = Aggregator::new();
        agg.record(&emf("checkout", "OrdersPlaced", json!(1)), NOW).unwrap();
        let later = NOW + (MINUTES_KEPT + 1) * 60_000;
        agg.record(&emf("checkout", "OrdersPlaced", json!(1)).replace(&NOW.to_string(), &later.to_string()), later)
            .unwrap();
        assert_eq!(agg.recent("checkout", "OrdersPlaced", NOW, 1).sum, 0.0, "the old minute is gone");
        assert_eq!(agg.sum("checkout", "OrdersPlaced"), 2.0);
    }

    #[test]
    fn given_lines_that_are_not_emf_then_they_are_refused_and_nothing_is_counted() {
        let mut agg = Aggregator::new();
        assert_eq!(agg.record("not json", NOW), Err(EmfError::NotJson));
        assert_eq!(agg.record("[1, 2]", NOW), Err(EmfError::NotJson));
        assert_eq!(agg.record(r#"{"level":"INFO","message":"checkout answered"}"#, NOW), Err(EmfError::NotEmf));
        assert_eq!(agg.record(r#"{"_aws":{"CloudWatchMetrics":"no"}}"#, NOW), Err(EmfError::NotEmf));
        assert_eq!(agg.lines(), (0, 4));
        assert!(agg.services().is_empty());
    }

    #[test]
    fn given_a_metric_without_a_numeric_value_then_the_whole_document_is_refused() {
        let mut agg = Aggregator::new();
        for value in [json!("1"), json!(null), json!([]), json!([1, "x"]), json!(vec![1; MAX_VALUES + 1])] {
            let line = emf("checkout", "OrdersPlaced", value.clone());
            assert_eq!(agg.record(&line, NOW), Err(EmfError::BadValue("OrdersPlaced".into())), "{value}");
        }
        let missing = json!({"_aws": {"CloudWatchMetrics": [{"Dimensions": [["service"]], "Metrics": [{"Name": "OrdersPlaced"}]}]}, "service": "checkout"});
        assert_eq!(agg.record(&missing.to_string(), NOW), Err(EmfError::BadValue("OrdersPlaced".into())));
        assert_eq!(agg.sum("checkout", "OrdersPlaced"), 0.0);
    }

    #[test]
    fn given_a_dimension_set_naming_a_missing_dimension_then_only_the_service_total_counts() {
        let mut agg = Aggregator::new();
        let line = json!({
            "_aws": {"CloudWatchMetrics": [{"Dimensions": [["service", "reason"]], "Metrics": [{"Name": "OrdersRejected"}]}]},
            "service": "checkout", "OrdersRejected": 1
        });
        agg.record(&line.to_string(), NOW).unwrap();
        assert_eq!(agg.sum("checkout", "OrdersRejected"), 1.0);
        assert!(agg.breakdown("checkout", "OrdersRejected", "reason").is_empty());
    }

    #[test]
    fn given_counts_then_the_summary_reports_orders_and_each_consumer_in_the_order_asked() {
        let mut agg = Aggregator::new();
        agg.record(&emf("checkout", "OrdersPlaced", json!(1)), NOW).unwrap();
        agg.record(&batch_line("email", NOW, 1, &[("permanent", 1)], &[5.0]), NOW).unwrap();
        let summary = agg.summary(&["loyalty".to_owned(), "email".to_owned()]);
        assert_eq!((summary.orders_placed, summary.orders_rejected), (1.0, 0.0));
        let services: Vec<&str> = summary.consumers.iter().map(|c| c.service.as_str()).collect();
        assert_eq!(services, ["loyalty", "email"]);
        assert_eq!((summary.consumers[1].processed, summary.consumers[1].failed), (1.0, 1.0));
        let lines = summary.lines();
        assert_eq!(lines[0], "checkout        placed 1, rejected 0");
        assert_eq!(lines[2], "email           processed 1, duplicate 0, failed 1 (permanent 1), poison 0");
    }
}
