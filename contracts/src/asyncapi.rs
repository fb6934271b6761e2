//! The AsyncAPI 3.0 document of the order events bus, generated from the catalogue (each
//! event type a channel, each version a message whose payload is its committed schema, sent by
//! its `source`) and from template.yaml's EventBridge rules (which consumer receives what), so
//! that it cannot disagree with the code or with the wiring.
//!
//! The template is read through `tools/localstack.py`'s loader (SAM's own YAML parser, short
//! tags included), the one reading of the template the emulator tests also rely on.

use crate::{catalogue, Contract};
use serde_json::{json, Map, Value};
use shared::events::routed_pairs;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One EventBridge rule of the template, followed to the function that consumes its target.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Rule {
    /// The rule's logical ID.
    pub name: String,
    pub description: String,
    pub pattern: Value,
    /// Logical IDs of the queues it targets and of the functions reading them.
    pub queues: Vec<String>,
    pub functions: Vec<String>,
}

const READ_RULES: &str = r#"
import json, sys
sys.path.insert(0, "tools")
from localstack import load_template

resources = load_template()["Resources"]
def target(node):
    return node["Fn::GetAtt"][0] if isinstance(node, dict) and "Fn::GetAtt" in node else None
readers = {}
for props in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"):
    queue, function = target(props["EventSourceArn"]), props["FunctionName"]
    if queue and isinstance(function, dict) and "Ref" in function:
        readers.setdefault(queue, []).append(function["Ref"])
rules = []
for name, rule in sorted(resources.items()):
    if rule["Type"] != "AWS::Events::Rule":
        continue
    props = rule["Properties"]
    queues = [q for q in (target(t["Arn"]) for t in props.get("Targets", [])) if q]
    rules.append({
        "name": name,
        "description": props.get("Description", ""),
        "pattern": props["EventPattern"],
        "queues": queues,
        "functions": sorted({f for q in queues for f in readers.get(q, [])}),
    })
json.dump(rules, sys.stdout)
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("contracts is inside the workspace").to_path_buf()
}

/// template.yaml's EventBridge rules, read with the project's venv (`make venv`, or `SHOP_VENV`).
pub fn template_rules() -> Vec<Rule> {
    let root = workspace_root();
    let venv = std::env::var_os("SHOP_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv"));
    let output = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(READ_RULES)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("no Python in {}: run `make venv` first ({e})", venv.display()));
    assert!(output.status.success(), "reading template.yaml's rules: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the rules as JSON")
}

fn message_key(c: &Contract) -> String {
    format!("{}.v{}", c.detail_type, c.version)
}

/// The document, from the catalogue and `rules`.
pub fn document(rules: &[Rule]) -> Value {
    let contracts = catalogue();
    // Each rule's routes, read once: a pattern the reading does not understand (a prefix
    // matcher, say) would misstate who receives what, so it stops the generation.
    let routes: Vec<(&Rule, BTreeSet<(String, String)>)> = rules
        .iter()
        .map(|r| (r, routed_pairs(&r.pattern).unwrap_or_else(|e| panic!("rule {}: {e}", r.name))))
        .collect();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for c in &contracts {
        messages.insert(
            message_key(c),
            json!({
                "name": c.detail_type,
                "title": c.schema["title"],
                "summary": c.schema["description"],
                "contentType": "application/json",
                "payload": {
                    "schemaFormat": "application/schema+json;version=draft-07",
                    "schema": { "$ref": format!("events/{}", c.file_name()) }
                },
                "x-eventbridge": { "source": c.source, "detail-type": c.detail_type, "version": c.version }
            }),
        );
    }
    let types: BTreeSet<(&str, &str)> = contracts.iter().map(|c| (c.source, c.detail_type)).collect();
    for (source, detail_type) in &types {
        let versions: Vec<&Contract> =
            contracts.iter().filter(|c| c.source == *source && c.detail_type == *detail_type).collect();
        let refs: Map<String, Value> = versions
            .iter()
            .map(|c| (message_key(c), json!({ "$ref": format!("#/components/messages/{}", message_key(c)) })))
            .collect();
        let channel_messages: Vec<Value> = versions
            .iter()
            .map(|c| json!({ "$ref": format!("#/channels/{detail_type}/messages/{}", message_key(c)) }))
            .collect();
        channels.insert(
            (*detail_type).to_owned(),
            json!({
                "address": detail_type,
                "title": detail_type,
                "description": format!(
                    "EventBridge events of detail-type `{detail_type}` from source `{source}` on the order events bus \
                     (template.yaml: OrderEventsBus); each event's `detail` is the message."
                ),
                "messages": refs
            }),
        );
        operations.insert(
            format!("{source}.send.{detail_type}"),
            json!({
                "action": "send",
                "title": format!("{source} publishes {detail_type}"),
                "channel": { "$ref": format!("#/channels/{detail_type}") },
                "messages": channel_messages
            }),
        );
        let pair = ((*source).to_owned(), (*detail_type).to_owned());
        for rule in routes.iter().filter(|(_, routed)| routed.contains(&pair)).map(|(rule, _)| rule) {
            operations.insert(
                format!("{}.receive.{detail_type}", rule.name),
                json!({
                    "action": "receive",
                    "title": format!("{} receives {detail_type}", rule.functions.join(", ")),
                    "description": format!(
                        "Rule {} ({}) routes it to {}, which {} reads.",
                        rule.name, rule.description, rule.queues.join(", "), rule.functions.join(", ")
                    ),
                    "channel": { "$ref": format!("#/channels/{detail_type}") },
                    "messages": channel_messages,
                    "x-eventbridge-rule": { "name": rule.name, "eventPattern": rule.pattern }
                }),
            );
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shop order events",
            "version": "1.0.0",
            "description": "The events on the shop's EventBridge bus, generated from the event types \
                (shared/src/events/) and template.yaml's rules by `cargo run -p contracts --bin event-schemas`. \
                A message is an event's `detail`; its schema is the committed JSON Schema beside this file."
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages }
    })
}
