//! The EventBridge schema registry in template.yaml holds exactly the generated schemas, each a
//! valid draft-04 schema that the events on the bus are instances of.

use contracts::registry::{current_block, registry_schema, schema_name, template_block};
use serde_json::Value;
use std::fs;
use std::process::Command;

fn root() -> std::path::PathBuf {
    contracts::schemas_dir().join("..")
}

#[test]
fn the_templates_registry_block_is_the_generated_one() {
    let template = fs::read_to_string(root().join("template.yaml")).unwrap();
    let block = current_block(&template).expect("template.yaml has the event schemas' marker lines");
    assert!(
        block == template_block(),
        "template.yaml's event schemas differ from the generated ones\nregenerate with: {}",
        contracts::REGENERATE
    );
}

#[test]
fn each_registered_schema_is_draft_04_and_an_event_on_the_bus_is_an_instance_of_it() {
    let sample: Value =
        serde_json::from_str(&fs::read_to_string(root().join("events/inventory-order-placed.json")).unwrap()).unwrap();
    let event: Value = serde_json::from_str(sample["Records"][0]["body"].as_str().unwrap()).unwrap();
    for contract in contracts::catalogue() {
        let schema = registry_schema(&contract);
        assert!(jsonschema::draft4::meta::is_valid(&schema), "{} is draft-04", schema_name(&contract));
        let validator = jsonschema::draft4::new(&schema).unwrap();
        // The sample is what the checkout publishes now: order.placed v2, and no other version.
        let expected = (contract.detail_type, contract.version) == ("order.placed", 2);
        assert_eq!(validator.is_valid(&event), expected, "{}", schema_name(&contract));
    }
}

#[test]
fn cloudformation_reads_each_schemas_content_as_the_generated_json() {
    let script = r#"
import json, sys
sys.path.insert(0, "tools")
from localstack import load_template
resources = load_template()["Resources"].values()
json.dump({r["Properties"]["SchemaName"]: json.loads(r["Properties"]["Content"])
           for r in resources if r["Type"] == "AWS::EventSchemas::Schema"}, sys.stdout)
"#;
    let venv = std::env::var_os("SHOP_VENV").map(Into::into).unwrap_or_else(|| root().join(".venv"));
    let output = Command::new(venv.join("bin/python")).arg("-c").arg(script).current_dir(root()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let registered: serde_json::Map<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    let catalogue = contracts::catalogue();
    assert_eq!(registered.len(), catalogue.len(), "one registered schema per event type and version");
    for contract in &catalogue {
        assert_eq!(
            registered.get(&schema_name(contract)),
            Some(&registry_schema(contract)),
            "{}",
            schema_name(contract)
        );
    }
}
