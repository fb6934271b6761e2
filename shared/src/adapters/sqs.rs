//! The dead-letter queue on Amazon SQS: `SendMessage` of the original body and message
//! attributes, plus the failure's `ErrorKind` and `ErrorReason`.

use crate::config::{Env, MissingEnv};
use crate::ports::{DeadLetters, ErrorKind, StoreError};
use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use std::collections::HashMap;

/// The attribute naming the failure's kind (`permanent`, ...).
pub const ERROR_KIND: &str = "ErrorKind";
/// The attribute with the failure's reason (the error, shortened to [`MAX_REASON_CHARS`]).
pub const ERROR_REASON: &str = "ErrorReason";
/// SQS takes at most 10 message attributes per message; two are ours.
pub const MAX_ATTRIBUTES: usize = 10;
/// A reason is for a human reading the DLQ: the first this many characters are plenty.
pub const MAX_REASON_CHARS: usize = 1024;

#[derive(Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// The consumer's own DLQ, `DEAD_LETTER_QUEUE_URL` (template.yaml: `!Ref <X>DeadLetterQueue`).
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        Ok(Self::new(Client::new(aws), env.get("DEAD_LETTER_QUEUE_URL")?))
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// The reason as it is stored: at most [`MAX_REASON_CHARS`] characters, never empty (SQS
/// refuses an empty attribute value).
pub fn shorten(reason: &str) -> String {
    let short: String = reason.chars().take(MAX_REASON_CHARS).collect();
    if short.is_empty() {
        "unspecified".to_owned()
    } else {
        short
    }
}

/// The original message attributes SQS can take back as they are (string, number and binary
/// values; list values are reserved by SQS and never set), leaving room for ours. Attributes
/// named like ours are replaced by ours.
fn original_attributes(message: &SqsMessage) -> HashMap<String, MessageAttributeValue> {
    let mut names: Vec<&String> =
        message.message_attributes.keys().filter(|n| n.as_str() != ERROR_KIND && n.as_str() != ERROR_REASON).collect();
    names.sort();
    let mut kept = HashMap::new();
    for name in names {
        if kept.len() == MAX_ATTRIBUTES - 2 {
            tracing::warn!(attribute = %name, "dead letter has too many message attributes; dropping the rest");
            break;
        }
        let attribute = &message.message_attributes[name];
        let Some(data_type) = attribute.data_type.clone() else { continue };
        let mut value = MessageAttributeValue::builder().data_type(data_type);
        if let Some(text) = &attribute.string_value {
            value = value.string_value(text);
        } else if let Some(bytes) = &attribute.binary_value {
            value = value.binary_value(Blob::new(bytes.0.clone()));
        } else {
            continue;
        }
        if let Ok(value) = value.build() {
            kept.insert(name.clone(), value);
        }
    }
    kept
}

fn string(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data type is set")
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn send(&self, message: &SqsMessage, kind: ErrorKind, reason: &str) -> Result<(), StoreError> {
        let mut attributes = original_attributes(message);
        attributes.insert(ERROR_KIND.to_owned(), string(kind.name()));
        attributes.insert(ERROR_REASON.to_owned(), string(&shorten(reason)));
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            // SQS refuses an empty body; a message always has one, so this only fails a fake.
            .message_body(message.body.clone().unwrap_or_default())
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;

    fn attribute(data_type: &str, value: &str) -> SqsMessageAttribute {
        let mut a = SqsMessageAttribute::default();
        a.data_type = Some(data_type.to_owned());
        a.string_value = Some(value.to_owned());
        a
    }

    #[test]
    fn original_attributes_are_kept_and_ours_win() {
        let mut message = SqsMessage::default();
        message.message_attributes.insert("Tenant".into(), attribute("String", "eu"));
        message.message_attributes.insert("Count".into(), attribute("Number", "3"));
        message.message_attributes.insert(ERROR_KIND.into(), attribute("String", "forged"));
        let kept = original_attributes(&message);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept["Tenant"].string_value(), Some("eu"));
        assert_eq!(kept["Count"].data_type(), "Number");
    }

    #[test]
    fn at_most_eight_original_attributes_leave_room_for_ours() {
        let mut message = SqsMessage::default();
        for i in 0..12 {
            message.message_attributes.insert(format!("A{i:02}"), attribute("String", "x"));
        }
        assert_eq!(original_attributes(&message).len(), MAX_ATTRIBUTES - 2);
    }

    #[test]
    fn a_reason_is_shortened_and_never_empty() {
        assert_eq!(shorten(&"é".repeat(5000)).chars().count(), MAX_REASON_CHARS);
        assert_eq!(shorten(""), "unspecified");
    }
}
