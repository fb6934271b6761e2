//! The edge of the read APIs behind API Gateway (payload v2): an answer, RFC 9457 problem
//! details, and the response every such function sends (JSON, the correlation ID echoed, a
//! `Retry-After` on 503).

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Error, Request, Response};
use serde_json::{json, Value};

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a read API answers, before it becomes a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Value,
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer { status: 200, content_type: JSON, body }
    }
}

/// A problem detail (RFC 9457) whose `type` names `slug`.
pub fn problem(status: u16, slug: &str, title: &str, detail: &str) -> Answer {
    let body = json!({
        "type": format!("https://shop.example/problems/{slug}"),
        "title": title,
        "status": status,
        "detail": detail,
    });
    Answer { status, content_type: PROBLEM_JSON, body }
}

/// The response for `answer` to `req`: the request's correlation ID (or a new one) echoed, and
/// a `Retry-After` when the answer is 503.
pub fn respond(req: &Request, answer: Answer) -> Result<Response<Body>, Error> {
    let header = req.headers().get("x-correlation-id").and_then(|v| v.to_str().ok());
    let correlation_id = crate::telemetry::correlation_id(header);
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type)
        .body(Body::Text(answer.body.to_string()))?;
    if answer.status == 503 {
        response.headers_mut().insert("retry-after", HeaderValue::from_static("5"));
    }
    // correlation_id() only returns printable ASCII, which is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert("x-correlation-id", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_type_status_and_detail() {
        let answer = problem(400, "invalid-limit", "Invalid limit", "limit is 1 to 100.");
        assert_eq!((answer.status, answer.content_type), (400, PROBLEM_JSON));
        assert_eq!(answer.body["type"], "https://shop.example/problems/invalid-limit");
        assert_eq!(answer.body["status"], 400);
    }

    #[test]
    fn a_503_says_when_to_retry_and_every_answer_echoes_the_correlation_id() {
        let req = lambda_http::http::Request::builder().header("x-correlation-id", "corr-7").body(Body::Empty).unwrap();
        let response = respond(&req, problem(503, "unavailable", "Unavailable", "Try again.")).unwrap();
        assert_eq!(response.headers()["retry-after"], "5");
        assert_eq!(response.headers()["x-correlation-id"], "corr-7");
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
    }
}
