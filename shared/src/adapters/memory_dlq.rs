//! An in-memory dead-letter queue for tests and benchmarks: keeps what it is sent, and can be
//! told to fail, as SQS does when throttled or unreachable.

use crate::ports::{DeadLetters, ErrorKind, StoreError};
use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsMessage;
use std::collections::HashMap;
use std::sync::Mutex;

/// One message as it sits in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The source message's ID (SQS gives the dead letter a new one).
    pub source_message_id: String,
    pub body: Option<String>,
    /// The original string attributes.
    pub attributes: HashMap<String, String>,
    pub kind: ErrorKind,
    pub reason: String,
}

#[derive(Default)]
struct State {
    sent: Vec<DeadLetter>,
    fail_next: u32,
}

#[derive(Default)]
pub struct MemoryDeadLetters {
    state: Mutex<State>,
}

impl MemoryDeadLetters {
    /// Everything dead-lettered so far, in order.
    pub fn sent(&self) -> Vec<DeadLetter> {
        self.state.lock().unwrap().sent.clone()
    }

    /// The source message IDs of everything dead-lettered so far, in order.
    pub fn message_ids(&self) -> Vec<String> {
        self.state.lock().unwrap().sent.iter().map(|d| d.source_message_id.clone()).collect()
    }

    /// The next `sends` sends fail.
    pub fn fail_next(&self, sends: u32) {
        self.state.lock().unwrap().fail_next = sends;
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn send(&self, message: &SqsMessage, kind: ErrorKind, reason: &str) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.state.lock().unwrap();
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        let attributes = message
            .message_attributes
            .iter()
            .filter_map(|(name, a)| Some((name.clone(), a.string_value.clone()?)))
            .collect();
        state.sent.push(DeadLetter {
            source_message_id: message.message_id.clone().unwrap_or_default(),
            body: message.body.clone(),
            attributes,
            kind,
            reason: reason.to_owned(),
        });
        Ok(())
    }
}
