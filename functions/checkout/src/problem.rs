//! RFC 9457 problem details: every error answer of the API is `application/problem+json`.

use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One thing wrong with the request, located by a JSON pointer into the body (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), detail: detail.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension member: the SKUs concerned (unknown, out of stock).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<String>,
    /// Extension member: the order's current status, when that is why the request was refused
    /// (not `status`, which RFC 9457 reserves for the HTTP status code).
    #[serde(rename = "orderStatus", skip_serializing_if = "Option::is_none")]
    pub order_status: Option<&'static str>,
}

impl Problem {
    /// `slug` becomes the problem type URI, which names the kind of problem for clients.
    pub fn new(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: format!("https://shop.example/problems/{slug}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: Vec::new(),
            skus: Vec::new(),
            order_status: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_order_status(mut self, status: shared::domain::OrderStatus) -> Self {
        self.order_status = Some(status.as_str());
        self
    }

    pub fn with_skus(mut self, skus: impl IntoIterator<Item = impl ToString>) -> Self {
        self.skus = skus.into_iter().map(|s| s.to_string()).collect();
        self
    }
}
