//! The AsyncAPI 3.0 document of the order events bus, generated from the catalogue (each
//! event type a channel, each version a message whose payload is its committed schema), from
//! what each publishing function declares it sends ([`crate::producers`]), and from
//! template.yaml's EventBridge rules (which consumer receives what), so that it cannot disagree
//! with the code or with the wiring.
//!
//! The template is read through `tools/localstack.py`'s loader (SAM's own YAML parser, short
//! tags included), the one reading of the template the emulator tests also rely on.

use crate::producers::{producers, publishes, relayed, RELAY};
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

const READ_PUBLISHERS: &str = r#"
import json, sys
sys.path.insert(0, "tools")
from localstack import load_template

def grants(node):
    if isinstance(node, dict):
        return any(grants(v) for v in node.values())
    if isinstance(node, list):
        return any(grants(v) for v in node)
    return node == "events:PutEvents"
resources = load_template()["Resources"]
json.dump(sorted(name for name, r in resources.items()
                 if r["Type"] == "AWS::Serverless::Function" and grants(r["Properties"].get("Policies", []))),
          sys.stdout)
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("contracts is inside the workspace").to_path_buf()
}

/// template.yaml's EventBridge rules, read with the project's venv (`make venv`, or `SHOP_VENV`).
pub fn template_rules() -> Vec<Rule> {
    read_template(READ_RULES, "rules")
}

/// The logical IDs of template.yaml's functions whose role may `events:PutEvents`.
pub fn template_publishers() -> Vec<String> {
    read_template(READ_PUBLISHERS, "publishers")
}

fn read_template<T: serde::de::DeserializeOwned>(script: &str, what: &str) -> T {
    let root = workspace_root();
    let venv = std::env::var_os("SHOP_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv"));
    let output = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("no Python in {}: run `make venv` first ({e})", venv.display()));
    assert!(output.status.success(), "reading template.yaml's {what}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("template.yaml's {what} as JSON: {e}"))
}

/// The functions that send an event type, each with the versions it sends and how: its
/// producers (by their `PUBLISHES`), then the outbox relay.
fn senders<'a>(versions: &[&'a Contract]) -> Vec<(&'static str, Vec<&'a Contract>, &'static str)> {
    let mut senders: Vec<(&'static str, Vec<&'a Contract>, &'static str)> = producers()
        .iter()
        .map(|p| {
            let sent: Vec<&Contract> = versions.iter().copied().filter(|c| publishes(p, c)).collect();
            let how = match p.via_outbox {
                true => "Put on the bus as the change commits (with an outbox entry in the same transaction).",
                false => "Put on the bus directly.",
            };
            (p.function, sent, how)
        })
        .filter(|(_, sent, _)| !sent.is_empty())
        .collect();
    let relayed: Vec<&Contract> = versions.iter().copied().filter(|c| relayed(c)).collect();
    if !relayed.is_empty() {
        let how = "Re-sends what its producers could not: outbox entries older than the grace period, in the \
                   version they were written in (an earlier one, for entries written before an upgrade).";
        senders.push((RELAY, relayed, how));
    }
    senders
}

fn message_key(c: &Contract) -> String {
    format!("{}.v{}", c.detail_type, c.version)
}

/// References to `versions`' messages in their channel, as an operation lists them.
fn channel_messages(versions: &[&Contract]) -> Vec<Value> {
    let reference = |c: &&Contract| format!("#/channels/{}/messages/{}", c.detail_type, message_key(c));
    versions.iter().map(|c| json!({ "$ref": reference(c) })).collect()
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
        let latest = contracts.iter().filter(|l| l.detail_type == c.detail_type).map(|l| l.version).max();
        let status = match latest {
            Some(latest) if latest > c.version => format!(
                "Superseded by v{latest}: no function publishes it any more, but the outbox relay may still send \
                 entries written before the upgrade, and the archive replays it; consumers read it upcast to \
                 v{latest}."
            ),
            _ => "The version published now.".to_owned(),
        };
        messages.insert(
            message_key(c),
            json!({
                "name": c.detail_type,
                "title": c.schema["title"],
                "summary": c.schema["description"],
                "description": status,
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
        let every_version = channel_messages(&versions);
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
        for (function, sent, how) in senders(&versions) {
            operations.insert(
                format!("{function}.send.{detail_type}"),
                json!({
                    "action": "send",
                    "title": format!("{function} publishes {detail_type}"),
                    "description": how,
                    "channel": { "$ref": format!("#/channels/{detail_type}") },
                    "messages": channel_messages(&sent)
                }),
            );
        }
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
                    "messages": every_version,
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
