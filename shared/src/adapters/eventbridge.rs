//! The event publisher on Amazon EventBridge.

use crate::events::Outbound;
use crate::ports::{EventPublisher, PublishError, Rejected};
use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

#[derive(Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError> {
        let entries = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| PublishError::Unavailable(DisplayErrorContext(e).to_string()))?;
        if out.failed_entry_count() == 0 {
            return Ok(Vec::new());
        }
        // 200 with failed entries: results line up with the request entries by position.
        Ok(out
            .entries()
            .iter()
            .zip(events)
            .filter_map(|(result, event)| {
                result.error_code().map(|code| Rejected { event_id: event.event_id, code: code.to_owned() })
            })
            .collect())
    }
}
