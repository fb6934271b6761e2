//! The last things that flowed through the local system, for the dashboard: every API request
//! the local API Gateway answered and every message an event source delivered, with the IDs
//! that tie them together (event ID, order ID, correlation ID). A bounded ring: the oldest go.

use crate::poller::Observation;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Entries kept.
pub const CAPACITY: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Unix milliseconds.
    pub at: i64,
    /// `request` (the API answered) or `delivery` (a function got a message or stream record).
    pub kind: &'static str,
    /// The route asked (`POST /orders`) or the consumer's service name (`email`).
    pub target: String,
    /// The event's type (`order.placed`), for a delivery that carried our envelope.
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub order_id: Option<String>,
    pub correlation_id: Option<String>,
    /// `201`, or for a delivery `handled` (deleted from its queue: processed, skipped, or
    /// dead-lettered by the consumer itself) or `retry` (left for another receive).
    pub outcome: String,
    /// Which receive of the message this was (deliveries only).
    pub receive_count: Option<u32>,
}

/// The ring, shared by the recorders and the page.
#[derive(Debug, Default)]
pub struct Flow {
    entries: Mutex<VecDeque<Entry>>,
}

impl Flow {
    pub fn push(&self, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The `n` newest entries, newest first.
    pub fn newest(&self, n: usize) -> Vec<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().rev().take(n).cloned().collect()
    }
}

/// A delivery, from what the event source observed; `services` maps the template's function
/// logical IDs to their service names (binaries).
pub fn delivery(observation: &Observation, services: &HashMap<String, String>, at: i64) -> Entry {
    let detail = observation.detail.as_ref();
    let field = |name: &str| detail.and_then(|d| d.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
    Entry {
        at,
        kind: "delivery",
        target: services.get(&observation.function).cloned().unwrap_or_else(|| observation.function.clone()),
        event_type: field("type"),
        event_id: observation.event_id.clone(),
        order_id: observation.order_id.clone(),
        correlation_id: field("correlationId"),
        outcome: if observation.succeeded { "handled" } else { "retry" }.to_owned(),
        receive_count: Some(observation.receive_count),
    }
}

/// The order a request was about: the one it created (`Location: /orders/{id}`) or the one in
/// its path (`/orders/{id}/...`).
pub fn order_of(path: &str, location: Option<&str>) -> Option<String> {
    let from = |p: &str| {
        let mut segments = p.split('/').skip(1);
        match (segments.next(), segments.next()) {
            (Some("orders"), Some(id)) if !id.is_empty() => Some(id.to_owned()),
            _ => None,
        }
    };
    location.and_then(from).or_else(|| from(path))
}

/// An API request as answered. `path` only, never the query: a token may ride in it.
pub fn request(
    method: &str,
    path: &str,
    status: u16,
    location: Option<&str>,
    correlation_id: Option<&str>,
    at: i64,
) -> Entry {
    Entry {
        at,
        kind: "request",
        target: format!("{method} {path}"),
        event_type: None,
        event_id: None,
        order_id: order_of(path, location),
        correlation_id: correlation_id.map(str::to_owned),
        outcome: status.to_string(),
        receive_count: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(n: usize) -> Entry {
        request("GET", &format!("/orders/{n}"), 200, None, None, n as i64)
    }

    #[test]
    fn given_more_entries_than_its_capacity_then_the_ring_keeps_the_newest_newest_first() {
        let flow = Flow::default();
        (0..CAPACITY + 5).for_each(|n| flow.push(entry(n)));
        let newest = flow.newest(usize::MAX);
        assert_eq!(newest.len(), CAPACITY);
        assert_eq!((newest[0].at, newest[CAPACITY - 1].at), ((CAPACITY + 4) as i64, 5));
        assert_eq!(flow.newest(2).len(), 2);
    }

    #[test]
    fn given_a_delivery_of_our_envelope_then_its_ids_and_consumer_are_recorded() {
        let observation = Observation {
            function: "EmailFunction".into(),
            message_id: "m1".into(),
            receive_count: 2,
            event_id: Some("ev-1".into()),
            order_id: Some("ord-1".into()),
            source: Some("shop.checkout".into()),
            detail_type: Some("order.placed".into()),
            detail: Some(json!({"type": "order.placed", "correlationId": "corr-1", "eventId": "ev-1"})),
            succeeded: false,
        };
        let services = HashMap::from([("EmailFunction".to_owned(), "email".to_owned())]);
        let entry = delivery(&observation, &services, 7);
        assert_eq!(entry.target, "email");
        assert_eq!(
            (entry.event_type.as_deref(), entry.correlation_id.as_deref(), entry.order_id.as_deref()),
            (Some("order.placed"), Some("corr-1"), Some("ord-1"))
        );
        assert_eq!((entry.outcome.as_str(), entry.receive_count), ("retry", Some(2)));
    }

    #[test]
    fn given_a_delivery_without_an_envelope_then_it_is_recorded_with_what_is_known() {
        let observation = Observation {
            function: "Unknown".into(),
            message_id: "m1".into(),
            receive_count: 1,
            event_id: None,
            order_id: None,
            source: None,
            detail_type: None,
            detail: Some(json!({"type": 42})),
            succeeded: true,
        };
        let entry = delivery(&observation, &HashMap::new(), 7);
        assert_eq!((entry.target.as_str(), entry.event_type, entry.outcome.as_str()), ("Unknown", None, "handled"));
    }

    #[test]
    fn the_order_of_a_request_is_the_created_one_or_the_one_in_its_path() {
        assert_eq!(order_of("/orders", Some("/orders/01J")), Some("01J".into()));
        assert_eq!(order_of("/orders/01J/events", None), Some("01J".into()));
        assert_eq!(order_of("/orders", None), None);
        assert_eq!(order_of("/orders/", None), None);
        assert_eq!(order_of("/customers/cust-ada/orders", None), None);
        assert_eq!(order_of("/orders", Some("https://elsewhere")), None);
    }
}
