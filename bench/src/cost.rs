//! Cost per million checkouts from measured durations, counted requests and list prices.
//!
//! The prices are the public on-demand list prices of us-east-1 (N. Virginia) as published on
//! the AWS pricing pages, as known in 2025 (DynamoDB on-demand after its November 2024 price
//! cut). They are written down here, not fetched: this machine has no internet. Free tiers,
//! volume tiers, data transfer, CloudWatch Logs and storage are left out.

use serde_json::Value;

/// The region the prices are for.
pub const REGION: &str = "us-east-1";
/// When these list prices were current.
pub const PRICES_AS_OF: &str = "2025 (AWS pricing pages, us-east-1, on-demand, without free tier)";

const PER_MILLION: f64 = 1e-6;
/// Lambda on arm64 (Graviton), per GB-second of billed duration (first pricing tier).
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda, per request.
pub const LAMBDA_PER_REQUEST: f64 = 0.20 * PER_MILLION;
/// API Gateway HTTP API, per request up to 512 KB (first 300 million a month).
pub const HTTP_API_PER_REQUEST: f64 = 1.00 * PER_MILLION;
/// EventBridge, per custom event published (each 64 KB chunk of a payload counts as one).
pub const EVENTBRIDGE_PER_CUSTOM_EVENT: f64 = 1.00 * PER_MILLION;
/// DynamoDB on-demand, per write request unit (1 KB; 2 units per KB in a transaction).
pub const DYNAMODB_PER_WRITE_UNIT: f64 = 0.625 * PER_MILLION;
/// DynamoDB on-demand, per read request unit (4 KB strongly consistent, or 2 × 4 KB eventually
/// consistent; 2 units per 4 KB in a transaction).
pub const DYNAMODB_PER_READ_UNIT: f64 = 0.125 * PER_MILLION;
/// SQS standard queue, per request (each 64 KB chunk of a payload counts as one).
pub const SQS_PER_REQUEST: f64 = 0.40 * PER_MILLION;

/// SES, per e-mail sent (outbound, from Lambda). Not one of the itemised services of the issue,
/// but one receipt per order: the report names it beside the total.
pub const SES_PER_EMAIL: f64 = 0.10 / 1000.0;

/// Lambda bills duration rounded up to the millisecond.
pub fn billed_ms(measured_ms: f64) -> f64 {
    measured_ms.ceil().max(1.0)
}

/// DynamoDB request units of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    pub write: f64,
    pub read: f64,
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, other: Units) {
        self.write += other.write;
        self.read += other.read;
    }
}

/// The size DynamoDB bills for an attribute value (its documented item-size rules).
fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) | ("B", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => {
            n.trim_start_matches('-').chars().filter(char::is_ascii_digit).count().div_ceil(2) + 1
        }
        ("BOOL", _) | ("NULL", _) => 1,
        ("SS", Value::Array(v)) | ("BS", Value::Array(v)) => v.iter().map(|s| s.as_str().map_or(0, str::len)).sum(),
        ("NS", Value::Array(v)) => v.iter().map(|n| n.as_str().map_or(0, |n| n.len().div_ceil(2) + 1)).sum(),
        ("L", Value::Array(v)) => 3 + v.iter().map(|e| value_size(e) + 1).sum::<usize>(),
        ("M", Value::Object(m)) => 3 + m.iter().map(|(k, e)| k.len() + value_size(e) + 1).sum::<usize>(),
        _ => 0,
    }
}

/// The size of an item in DynamoDB JSON (`{"name": {"S": "..."}, ...}`), in bytes.
pub fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
}

fn write_units_for_put(item: &Value) -> f64 {
    item_size(item).div_ceil(1024).max(1) as f64
}

/// The request units of one DynamoDB call, from its operation (the `X-Amz-Target` suffix) and
/// its JSON request. Puts are sized from the item they write; updates, deletes and condition
/// checks count as items of at most 1 KB and reads as items of at most 4 KB (true of every
/// item this shop writes: stock, counters, markers, balances, small events).
pub fn dynamodb_units(operation: &str, request: &Value) -> Units {
    let consistent = |r: &Value| r["ConsistentRead"].as_bool().unwrap_or(false);
    let read_unit = |strong: bool| if strong { 1.0 } else { 0.5 };
    match operation {
        "PutItem" => Units { write: write_units_for_put(&request["Item"]), read: 0.0 },
        "UpdateItem" | "DeleteItem" => Units { write: 1.0, read: 0.0 },
        "TransactWriteItems" => {
            let items = request["TransactItems"].as_array().map(Vec::as_slice).unwrap_or_default();
            let write = items
                .iter()
                .map(|action| match action.get("Put") {
                    Some(put) => 2.0 * write_units_for_put(&put["Item"]),
                    None => 2.0,
                })
                .sum();
            Units { write, read: 0.0 }
        }
        "BatchWriteItem" => {
            let write = request["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .filter_map(Value::as_array)
                .flatten()
                .map(|w| w.get("PutRequest").map_or(1.0, |p| write_units_for_put(&p["Item"])))
                .sum();
            Units { write, read: 0.0 }
        }
        "GetItem" | "Query" | "Scan" => Units { write: 0.0, read: read_unit(consistent(request)) },
        "BatchGetItem" => {
            let read = request["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .map(|t| t["Keys"].as_array().map_or(0, Vec::len) as f64 * read_unit(consistent(t)))
                .sum();
            Units { write: 0.0, read }
        }
        "TransactGetItems" => {
            Units { write: 0.0, read: 2.0 * request["TransactItems"].as_array().map_or(0, Vec::len) as f64 }
        }
        _ => Units::default(),
    }
}

/// One Lambda function's part in a checkout.
#[derive(Debug, Clone)]
pub struct LambdaUse {
    pub function: String,
    /// Invocations per checkout (1 for the checkout; at most 1 for a consumer, fewer when SQS
    /// batches several orders into one invocation).
    pub invocations: f64,
    /// Measured duration of one invocation, in milliseconds.
    pub duration_ms: f64,
    pub memory_mb: u32,
    /// DynamoDB units one invocation uses.
    pub dynamodb: Units,
}

/// Everything one checkout uses, end to end.
#[derive(Debug, Clone)]
pub struct Usage {
    pub http_api_requests: f64,
    pub lambdas: Vec<LambdaUse>,
    pub eventbridge_events: f64,
    pub sqs_requests: f64,
}

/// One line of the bill for a million checkouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub item: String,
    /// How much of the priced unit a million checkouts use.
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

pub fn per_million_checkouts(usage: &Usage) -> Vec<Line> {
    const M: f64 = 1e6;
    let mut lines = vec![Line {
        item: "API Gateway HTTP API requests".into(),
        quantity: usage.http_api_requests * M,
        unit: "requests",
        usd: usage.http_api_requests * M * HTTP_API_PER_REQUEST,
    }];
    let requests: f64 = usage.lambdas.iter().map(|l| l.invocations).sum::<f64>() * M;
    lines.push(Line {
        item: "Lambda requests (all functions)".into(),
        quantity: requests,
        unit: "requests",
        usd: requests * LAMBDA_PER_REQUEST,
    });
    for l in &usage.lambdas {
        let gb_seconds = l.invocations * M * billed_ms(l.duration_ms) / 1000.0 * f64::from(l.memory_mb) / 1024.0;
        lines.push(Line {
            item: format!(
                "Lambda arm64 duration: {} ({} ms billed × {} MB)",
                l.function,
                billed_ms(l.duration_ms),
                l.memory_mb
            ),
            quantity: gb_seconds,
            unit: "GB-s",
            usd: gb_seconds * LAMBDA_ARM64_PER_GB_SECOND,
        });
    }
    lines.push(Line {
        item: "EventBridge custom events published".into(),
        quantity: usage.eventbridge_events * M,
        unit: "events",
        usd: usage.eventbridge_events * M * EVENTBRIDGE_PER_CUSTOM_EVENT,
    });
    for l in usage.lambdas.iter().filter(|l| l.dynamodb.write > 0.0) {
        let units = l.invocations * M * l.dynamodb.write;
        lines.push(Line {
            item: format!("DynamoDB on-demand writes: {}", l.function),
            quantity: units,
            unit: "WRU",
            usd: units * DYNAMODB_PER_WRITE_UNIT,
        });
    }
    for l in usage.lambdas.iter().filter(|l| l.dynamodb.read > 0.0) {
        let units = l.invocations * M * l.dynamodb.read;
        lines.push(Line {
            item: format!("DynamoDB on-demand reads: {}", l.function),
            quantity: units,
            unit: "RRU",
            usd: units * DYNAMODB_PER_READ_UNIT,
        });
    }
    lines.push(Line {
        item: "SQS standard requests".into(),
        quantity: usage.sqs_requests * M,
        unit: "requests",
        usd: usage.sqs_requests * M * SQS_PER_REQUEST,
    });
    lines
}

pub fn total(lines: &[Line]) -> f64 {
    lines.iter().map(|l| l.usd).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transactional_write_costs_two_units_per_item_and_a_plain_one_one() {
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"orderId": {"S": "01J"}, "version": {"N": "1"}}}},
            {"Update": {"TableName": "t", "Key": {"sku": {"S": "MUG"}}}},
        ]});
        assert_eq!(dynamodb_units("TransactWriteItems", &transaction), Units { write: 4.0, read: 0.0 });
        assert_eq!(dynamodb_units("PutItem", &json!({"Item": {"id": {"S": "k"}}})).write, 1.0);
        assert_eq!(dynamodb_units("DeleteItem", &json!({})).write, 1.0);
    }

    #[test]
    fn a_put_is_billed_per_started_kilobyte() {
        let big = json!({"Item": {"id": {"S": "k"}, "body": {"S": "x".repeat(1500)}}});
        assert_eq!(dynamodb_units("PutItem", &big).write, 2.0);
        let in_transaction = json!({"TransactItems": [{"Put": big}]});
        assert_eq!(dynamodb_units("TransactWriteItems", &in_transaction).write, 4.0);
    }

    #[test]
    fn reads_cost_half_a_unit_unless_strongly_consistent() {
        let batch = json!({"RequestItems": {"products": {"Keys": [{"sku": {"S": "A"}}, {"sku": {"S": "B"}}]}}});
        assert_eq!(dynamodb_units("BatchGetItem", &batch).read, 1.0);
        assert_eq!(dynamodb_units("GetItem", &json!({"ConsistentRead": true})).read, 1.0);
        assert_eq!(dynamodb_units("GetItem", &json!({})).read, 0.5);
    }

    #[test]
    fn item_size_follows_the_documented_rules() {
        // name + value: "sku"+"MUG" = 6; "n"+ 3 digits → 2 bytes + 1 = 4.
        assert_eq!(item_size(&json!({"sku": {"S": "MUG"}, "n": {"N": "125"}})), 10);
    }

    #[test]
    fn duration_is_billed_per_started_millisecond_at_the_configured_memory() {
        let usage = Usage {
            http_api_requests: 1.0,
            lambdas: vec![LambdaUse {
                function: "checkout".into(),
                invocations: 1.0,
                duration_ms: 19.2,
                memory_mb: 256,
                dynamodb: Units { write: 11.0, read: 1.0 },
            }],
            eventbridge_events: 1.0,
            sqs_requests: 0.0,
        };
        let lines = per_million_checkouts(&usage);
        let duration = lines.iter().find(|l| l.unit == "GB-s").unwrap();
        assert_eq!(duration.quantity, 1e6 * 0.020 * 0.25);
        let writes = lines.iter().find(|l| l.unit == "WRU").unwrap();
        assert!((writes.usd - 11.0 * 0.625).abs() < 1e-9);
        assert!((total(&lines) - (1.0 + 0.2 + 5000.0 * LAMBDA_ARM64_PER_GB_SECOND + 1.0 + 6.875 + 0.125)).abs() < 1e-9);
    }
}
