//! Writes the event contracts generated from the code and template.yaml (and the registry's
//! block in template.yaml, between its markers):
//! `cargo run -p contracts --bin event-schemas`. Schemas no longer generated are removed, so
//! `schemas/events/` holds exactly the catalogue.

use std::fs;

fn main() -> std::io::Result<()> {
    let root = contracts::schemas_dir();
    // The template first: the AsyncAPI document below reads it.
    let template_path = root.join("../template.yaml");
    let template = fs::read_to_string(&template_path)?;
    match contracts::registry::with_block(&template) {
        Some(updated) if updated != template => {
            fs::write(&template_path, updated)?;
            println!("rewrote template.yaml's event schemas");
        }
        Some(_) => println!("template.yaml's event schemas are up to date"),
        None => {
            eprintln!("template.yaml has no `{}` line: event schemas not written", contracts::registry::BEGIN.trim())
        }
    }
    fs::create_dir_all(root.join("events"))?;
    let files = contracts::generated_files();
    for entry in fs::read_dir(root.join("events"))? {
        let path = entry?.path();
        let name = format!("events/{}", path.file_name().and_then(|n| n.to_str()).unwrap_or_default());
        if !files.iter().any(|(f, _)| *f == name) {
            fs::remove_file(&path)?;
            println!("removed schemas/{name}");
        }
    }
    for (name, content) in &files {
        fs::write(root.join(name), content)?;
        println!("wrote schemas/{name}");
    }
    Ok(())
}
