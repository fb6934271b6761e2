//! The HTTP edge of every API function behind API Gateway (HTTP API, payload v2), written once:
//! which route a request is for, RFC 9457 problem details, and the response (the correlation
//! ID echoed). The checkout, the warehouse's routes and the read APIs all answer through it, so
//! the same situation gets the same answer whichever function meets it.

use lambda_http::http::HeaderValue;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Serialize;

pub use crate::ports::StoredResponse as Reply;

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";

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

/// An RFC 9457 problem detail: every error answer is `application/problem+json`.
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

    pub fn with_order_status(mut self, status: crate::domain::OrderStatus) -> Self {
        self.order_status = Some(status.as_str());
        self
    }

    pub fn with_skus(mut self, skus: impl IntoIterator<Item = impl ToString>) -> Self {
        self.skus = skus.into_iter().map(|s| s.to_string()).collect();
        self
    }

    /// The answer that carries this problem.
    pub fn reply(self) -> Reply {
        problem(self)
    }
}

pub fn reply(status: u16, content_type: &str, body: String) -> Reply {
    Reply { status, headers: vec![("content-type".into(), content_type.into())], body }
}

pub fn json(status: u16, body: &serde_json::Value) -> Reply {
    reply(status, JSON, body.to_string())
}

pub fn problem(p: Problem) -> Reply {
    reply(p.status, PROBLEM_JSON, serde_json::to_string(&p).expect("problems serialise"))
}

pub fn with_header(mut r: Reply, name: &str, value: impl Into<String>) -> Reply {
    r.headers.push((name.to_owned(), value.into()));
    r
}

/// The path parameters of `path` if it matches `template` (`/orders/{id}`, `/files/{proxy+}`),
/// as API Gateway matches a route's path: literal segments equal, `{name}` one non-empty
/// segment, `{name+}` the rest.
pub fn path_parameters(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let want: Vec<&str> = template.trim_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut params = Vec::new();
    for (i, segment) in want.iter().enumerate() {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            let rest = got.get(i..).filter(|r| !r.is_empty())?.join("/");
            params.push((name.to_owned(), rest));
            return Some(params);
        }
        let actual = *got.get(i)?;
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !actual.is_empty() => params.push((name.to_owned(), actual.to_owned())),
            Some(_) => return None,
            None if *segment == actual => {}
            None => return None,
        }
    }
    (want.len() == got.len()).then_some(params)
}

/// The route a request is for, among a function's `routes` (`"GET /orders/{id}"`), with its
/// path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: &'static str,
    pub params: Vec<(String, String)>,
}

impl Matched {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Which of `routes` `req` is for: the route API Gateway matched (its `routeKey`), or, for an
/// event whose `routeKey` is `$default` or absent (`sam local generate-event`, a hand-written
/// event), the first route whose method and path template match the request.
pub fn route(req: &Request, routes: &[&'static str]) -> Option<Matched> {
    let path = request_path(req);
    let matched_by_gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone().filter(|k| k != "$default"),
        _ => None,
    };
    let by_template = |route: &&'static str| -> Option<Matched> {
        let (method, template) = route.split_once(' ')?;
        if !req.method().as_str().eq_ignore_ascii_case(method) {
            return None;
        }
        path_parameters(template, &path).map(|params| Matched { route, params })
    };
    match matched_by_gateway {
        Some(key) => {
            let route = routes.iter().find(|r| **r == key)?;
            // The gateway's own path parameters, else those of the path.
            let given = req.path_parameters();
            let params = by_template(route).map(|m| m.params).unwrap_or_default();
            let params = params.into_iter().map(|(n, v)| (n.clone(), given.first(&n).map_or(v, str::to_owned)));
            Some(Matched { route, params: params.collect() })
        }
        None => routes.iter().find_map(by_template),
    }
}

/// 405 for a path some route of this function has, with another method; 404 otherwise.
pub fn no_route(req: &Request, routes: &[&'static str]) -> Reply {
    let path = request_path(req);
    let path_known = routes.iter().filter_map(|r| r.split_once(' ')).any(|(_, t)| path_parameters(t, &path).is_some());
    let (status, slug, title) = if path_known {
        (405, "method-not-allowed", "Method not allowed")
    } else {
        (404, "not-found", "No such route")
    };
    problem(Problem::new(status, slug, title, format!("{} {path} is not a route of this API.", req.method())))
}

fn request_path(req: &Request) -> String {
    Some(req.raw_http_path()).filter(|p| !p.is_empty()).unwrap_or(req.uri().path()).to_owned()
}

/// The request's correlation ID (`x-correlation-id`), or a new one: read once per request, so
/// that its log lines, its events and its response carry the same.
pub fn correlation_id(req: &Request) -> String {
    crate::telemetry::correlation_id(req.headers().get("x-correlation-id").and_then(|v| v.to_str().ok()))
}

/// The response for `reply`, echoing the request's `correlation_id`.
pub fn respond(reply: Reply, correlation_id: &str) -> Result<Response<Body>, Error> {
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    let mut response = response.body(Body::Text(reply.body))?;
    // correlation_id() only returns printable ASCII, which is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        response.headers_mut().insert("x-correlation-id", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[&str] = &["POST /orders", "GET /orders/{id}", "GET /orders/{id}/events"];

    fn request(method: &str, path: &str) -> Request {
        lambda_http::http::Request::builder().method(method).uri(path).body(Body::Empty).unwrap()
    }

    #[test]
    fn a_problem_names_its_type_status_and_detail() {
        let reply = problem(Problem::new(400, "invalid-limit", "Invalid limit", "limit is 1 to 100."));
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!((reply.status, reply.headers[0].1.as_str()), (400, PROBLEM_JSON));
        assert_eq!(body["type"], "https://shop.example/problems/invalid-limit");
        assert_eq!(body["status"], 400);
    }

    #[test]
    fn given_no_route_key_when_routed_then_method_and_path_template_decide() {
        let matched = route(&request("GET", "/orders/01ABC/events"), ROUTES).unwrap();
        assert_eq!((matched.route, matched.param("id")), ("GET /orders/{id}/events", Some("01ABC")));
        assert_eq!(route(&request("DELETE", "/orders/01ABC"), ROUTES), None);
        assert_eq!(route(&request("GET", "/orders/"), ROUTES), None);
    }

    #[test]
    fn given_the_default_route_key_when_routed_then_the_path_decides_as_for_a_generated_event() {
        // What `sam local generate-event apigateway http-api-proxy` produces: `$default`.
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/orders/01ABC", "rawQueryString": "",
            "headers": {}, "isBase64Encoded": false,
            "requestContext": {"routeKey": "$default", "stage": "$default", "timeEpoch": 0,
                "http": {"method": "GET", "path": "/orders/01ABC", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "x"}},
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let matched = route(&req, ROUTES).unwrap();
        assert_eq!((matched.route, matched.param("id")), ("GET /orders/{id}", Some("01ABC")));
    }

    #[test]
    fn given_the_route_key_api_gateway_matched_then_it_decides_with_its_path_parameters() {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /orders/{id}/events", "rawPath": "/orders/01XYZ/events",
            "rawQueryString": "", "headers": {}, "isBase64Encoded": false, "pathParameters": {"id": "01XYZ"},
            "requestContext": {"routeKey": "GET /orders/{id}/events", "stage": "$default", "timeEpoch": 0,
                "http": {"method": "GET", "path": "/orders/01XYZ/events", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "x"}},
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let matched = route(&req, ROUTES).unwrap();
        assert_eq!((matched.route, matched.param("id")), ("GET /orders/{id}/events", Some("01XYZ")));
        assert_eq!(route(&req, &["POST /orders"]), None, "a route of another function is not this one's");
    }

    #[test]
    fn a_greedy_parameter_captures_the_rest_and_a_literal_must_match() {
        assert_eq!(path_parameters("/files/{proxy+}", "/files/a/b"), Some(vec![("proxy".into(), "a/b".into())]));
        assert_eq!(path_parameters("/orders", "/orders/1"), None);
        assert_eq!(path_parameters("/orders/{id}", "/orders/1/x"), None);
    }

    #[test]
    fn a_known_path_with_another_method_is_405_and_an_unknown_path_404() {
        assert_eq!(no_route(&request("DELETE", "/orders/1"), ROUTES).status, 405);
        assert_eq!(no_route(&request("GET", "/nowhere"), ROUTES).status, 404);
        assert_eq!(no_route(&request("DELETE", "/nowhere"), ROUTES).status, 404);
    }

    #[test]
    fn every_response_echoes_the_correlation_id_and_keeps_the_reply_headers() {
        let req = lambda_http::http::Request::builder().header("x-correlation-id", "corr-7").body(Body::Empty).unwrap();
        let reply =
            with_header(problem(Problem::new(503, "unavailable", "Unavailable", "Try again.")), "retry-after", "5");
        let response = respond(reply, &correlation_id(&req)).unwrap();
        assert_eq!(response.headers()["retry-after"], "5");
        assert_eq!(response.headers()["x-correlation-id"], "corr-7");
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
    }
}
