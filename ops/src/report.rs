//! What a command answers: a JSON document for scripts (`--json`, on stdout) and lines for a
//! human, and the exit status. Progress of long operations goes to stderr, so that stdout
//! stays one JSON document.

use serde::Serialize;

#[derive(Debug, Clone)]
pub struct Done {
    pub json: serde_json::Value,
    pub text: String,
    /// 0, or 1 for a completed check that found differences (`projections rebuild --check`).
    pub exit: u8,
}

impl Done {
    pub fn new(json: impl Serialize, text: impl Into<String>) -> Done {
        let json = serde_json::to_value(json).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
        Done { json, text: text.into(), exit: 0 }
    }

    pub fn with_exit(mut self, exit: u8) -> Done {
        self.exit = exit;
        self
    }
}

/// A progress line for a long operation (redrive, seed, replay), on stderr.
pub fn progress(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}
