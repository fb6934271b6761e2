//! The event contracts, generated from the event types in `shared::events` so that they cannot
//! drift from what the code serialises: one JSON Schema (draft-07) per event type and version,
//! committed under `schemas/events/`, the AsyncAPI document of the bus (`schemas/asyncapi.json`,
//! see [`asyncapi`]), and the validator the contract tests check events with.
//!
//! `cargo run -p contracts --bin event-schemas` rewrites the committed files; `tests/schemas.rs`
//! fails, naming that command, when they differ from what the code generates.

pub mod asyncapi;
pub mod compat;
pub mod producers;
pub mod registry;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};
use shared::events::{
    Envelope, EventData, LowStockV1, OrderCancelledV1, OrderDeliveredV1, OrderPlacedV1, OrderPlacedV2, OrderShippedV1,
    Outbound, PaymentRefundedV1, Published,
};
use std::path::PathBuf;

/// The command that regenerates every committed contract file.
pub const REGENERATE: &str = "cargo run -p contracts --bin event-schemas";

/// One event type and version of the catalogue, as published on the bus.
#[derive(Debug, Clone)]
pub struct Contract {
    pub source: &'static str,
    pub detail_type: &'static str,
    pub version: u32,
    /// The JSON Schema of the event's `detail` (the envelope with this event's `data`).
    pub schema: Value,
}

impl Contract {
    fn of<D: EventData + JsonSchema>() -> Contract {
        let mut schema = envelope_schema::<D>();
        // The envelope's `type` and `version` are this event's constants, not any string and
        // number: a consumer routing on them can rely on the schema saying so.
        schema["properties"]["type"] = json!({ "const": D::TYPE });
        schema["properties"]["version"] = json!({ "const": D::VERSION });
        schema["title"] = json!(format!("{} v{}", D::TYPE, D::VERSION));
        schema["description"] = schema["properties"]["data"]["description"].clone();
        schema["$id"] = json!(format!("{}.v{}.json", D::TYPE, D::VERSION));
        Contract { source: D::SOURCE, detail_type: D::TYPE, version: D::VERSION, schema }
    }

    /// `<type>.v<N>.json`, the file under `schemas/events/`.
    pub fn file_name(&self) -> String {
        format!("{}.v{}.json", self.detail_type, self.version)
    }

    /// Whether `detail` is a valid instance; every violation, described, when it is not.
    pub fn validate(&self, detail: &Value) -> Result<(), Vec<String>> {
        let validator = jsonschema::validator_for(&self.schema).expect("a generated schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(detail).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Draft-07 (the dialect AsyncAPI 3.0 documents by default), every subschema inline so that
/// each file stands alone for a consumer, the registry and the AsyncAPI document.
fn settings() -> SchemaSettings {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    settings
}

fn envelope_schema<D: JsonSchema>() -> Value {
    settings().into_generator().into_root_schema_for::<Envelope<D>>().to_value()
}

/// Every event type and version the code publishes, in catalogue order.
pub fn catalogue() -> Vec<Contract> {
    vec![
        // Still in the catalogue after v2: the outbox, the DLQs and the archive hold v1 events,
        // and consumers read them (upcast to v2).
        Contract::of::<OrderPlacedV1>(),
        Contract::of::<OrderPlacedV2>(),
        Contract::of::<OrderCancelledV1>(),
        Contract::of::<PaymentRefundedV1>(),
        Contract::of::<OrderShippedV1>(),
        Contract::of::<OrderDeliveredV1>(),
        Contract::of::<LowStockV1>(),
    ]
}

/// The envelope alone, its `data` unconstrained: what every event's `detail` has in common.
pub fn envelope() -> Value {
    let mut schema = envelope_schema::<Value>();
    schema["title"] = json!("Envelope");
    schema["$id"] = json!("envelope.json");
    schema
}

/// The contract of `(source, detail-type, version)`, if the catalogue has one.
pub fn contract(source: &str, detail_type: &str, version: u64) -> Option<Contract> {
    catalogue()
        .into_iter()
        .find(|c| c.source == source && c.detail_type == detail_type && u64::from(c.version) == version)
}

/// Validates one EventBridge event (`source`, `detail-type`, `detail`) against its contract.
pub fn validate_event(source: &str, detail_type: &str, detail: &Value) -> Result<(), String> {
    let version = detail["version"].as_u64().ok_or_else(|| format!("{detail_type}: a detail without a version"))?;
    let contract = contract(source, detail_type, version)
        .ok_or_else(|| format!("({source}, {detail_type}, v{version}) is not in the catalogue"))?;
    contract.validate(detail).map_err(|errors| format!("{detail_type} v{version}: {}", errors.join("; ")))
}

/// Checks an event a function put on the bus: an instance of its contract, and one of the
/// events the function declares it publishes (`declared`, its `PUBLISHES`, from which the
/// AsyncAPI document names the producers).
pub fn check_published(declared: &[Published], event: &Outbound) -> Result<(), String> {
    let detail: Value = serde_json::from_str(&event.detail)
        .map_err(|e| format!("{}: a detail that is not JSON: {e}", event.detail_type))?;
    validate_event(&event.source, &event.detail_type, &detail)?;
    let key = (event.source.as_str(), event.detail_type.as_str(), detail["version"].as_u64());
    match declared.iter().any(|&(source, detail_type, version)| (source, detail_type, Some(u64::from(version))) == key)
    {
        true => Ok(()),
        false => Err(format!(
            "({}, {}, v{}) is not among the events the function declares it publishes: {declared:?}",
            event.source, event.detail_type, detail["version"]
        )),
    }
}

/// `schemas/` at the workspace root: `asyncapi.json` and one schema per event in `events/`.
pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// Every generated file: its path under [`schemas_dir`] and its exact content.
pub fn generated_files() -> Vec<(String, String)> {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("a schema serialises") + "\n";
    let mut files = vec![("events/envelope.json".to_owned(), pretty(&envelope()))];
    files.extend(catalogue().iter().map(|c| (format!("events/{}", c.file_name()), pretty(&c.schema))));
    files.push(("asyncapi.json".to_owned(), pretty(&asyncapi::document(&asyncapi::template_rules()))));
    files
}
