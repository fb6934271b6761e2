//! API Gateway HTTP API on 127.0.0.1: the template's routes, payload format 2.0 to the
//! function, the function's payload 2.0 response back as HTTP. What API Gateway itself answers
//! (no route, body too large, integration failure) it answers here the same way.

use crate::invoke::{InvokeError, Invoker};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// API Gateway's request payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    /// As in the template, e.g. `/orders/{id}`.
    pub path: String,
    pub binary: String,
    pub timeout: Duration,
}

impl Route {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters if `path` matches this route's template.
    pub fn matches(&self, method: &str, path: &str) -> Option<Map<String, Value>> {
        if !self.method.eq_ignore_ascii_case(method) && self.method != "ANY" {
            return None;
        }
        let (want, got): (Vec<&str>, Vec<&str>) =
            (self.path.trim_matches('/').split('/').collect(), path.trim_matches('/').split('/').collect());
        let mut params = Map::new();
        for (i, segment) in want.iter().enumerate() {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                let rest = got.get(i..).filter(|r| !r.is_empty())?.join("/");
                params.insert(name.to_owned(), Value::String(rest));
                return Some(params);
            }
            let actual = *got.get(i)?;
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if !actual.is_empty() => {
                    params.insert(name.to_owned(), Value::String(actual.to_owned()));
                }
                Some(_) => return None,
                None if *segment == actual => {}
                None => return None,
            }
        }
        (want.len() == got.len()).then_some(params)
    }
}

pub struct Api {
    pub routes: Vec<Route>,
    pub invoker: Arc<Invoker>,
    /// host:port, for `requestContext.domainName`.
    pub domain: String,
}

fn gateway_answer(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(json!({ "message": message }).to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    response
}

pub async fn handle(State(api): State<Arc<Api>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return gateway_answer(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let path = parts.uri.path();
    let matched = api.routes.iter().find_map(|r| r.matches(parts.method.as_str(), path).map(|p| (r, p)));
    let Some((route, params)) = matched else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
    };
    let payload = payload_v2(&parts, &body, route, params, &api.domain);
    match api.invoker.invoke(&route.binary, payload, route.timeout).await {
        Ok(result) => response_v2(result),
        Err(InvokeError::Timeout(_)) => gateway_answer(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Err(error) => {
            tracing::error!(route = route.key(), %error, "integration failed");
            gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The event API Gateway sends for an HTTP API route (payload format 2.0).
pub fn payload_v2(
    parts: &axum::http::request::Parts,
    body: &[u8],
    route: &Route,
    path_parameters: Map<String, Value>,
    domain: &str,
) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_owned())));
            continue;
        }
        // Repeated headers arrive comma-joined, as API Gateway joins them.
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| *v = Value::String(format!("{},{value}", v.as_str().unwrap_or_default())))
            .or_insert(Value::String(value));
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|e| *e = Value::String(format!("{},{v}", e.as_str().unwrap_or_default())))
            .or_insert(Value::String(v.into_owned()));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split(':').next().unwrap_or(domain),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": header("user-agent"),
            },
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": route.key(),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    let fields = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), Value::Array(cookies));
    }
    if !query.is_empty() {
        fields.insert("queryStringParameters".into(), Value::Object(query));
    }
    if !path_parameters.is_empty() {
        fields.insert("pathParameters".into(), Value::Object(path_parameters));
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => fields.insert("body".into(), Value::String(text.to_owned())),
            Err(_) => {
                fields.insert("isBase64Encoded".into(), Value::Bool(true));
                fields.insert("body".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(body)))
            }
        };
    }
    event
}

/// The HTTP response for a function's payload 2.0 answer. An answer without `statusCode` is a
/// 200 whose body is the answer itself, as API Gateway infers it.
pub fn response_v2(result: Value) -> Response {
    let Some(status) = result.get("statusCode").and_then(Value::as_u64) else {
        let mut response = Response::new(Body::from(result.to_string()));
        response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
        return response;
    };
    let text = result.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if result.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers: &mut HeaderMap = response.headers_mut();
    let single = result.get("headers").and_then(Value::as_object).into_iter().flatten();
    for (name, value) in single {
        if let (Ok(name), Some(Ok(value))) =
            (HeaderName::try_from(name.as_str()), value.as_str().map(HeaderValue::from_str))
        {
            headers.append(name, value);
        }
    }
    for cookie in result.get("cookies").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append("set-cookie", value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route { method: method.into(), path: path.into(), binary: "f".into(), timeout: Duration::from_secs(1) }
    }

    #[test]
    fn a_literal_route_matches_only_its_path_and_method() {
        assert_eq!(route("POST", "/orders").matches("POST", "/orders"), Some(Map::new()));
        assert_eq!(route("POST", "/orders").matches("GET", "/orders"), None);
        assert_eq!(route("POST", "/orders").matches("POST", "/orders/1"), None);
    }

    #[test]
    fn a_path_parameter_captures_one_segment() {
        let params = route("GET", "/products/{sku}/recommendations").matches("GET", "/products/MUG/recommendations");
        assert_eq!(params.unwrap()["sku"], "MUG");
        assert_eq!(route("GET", "/orders/{id}").matches("GET", "/orders/"), None);
        assert_eq!(route("GET", "/orders/{id}").matches("GET", "/orders/a/b"), None);
    }

    #[test]
    fn a_greedy_parameter_captures_the_rest() {
        let params = route("ANY", "/files/{proxy+}").matches("GET", "/files/a/b/c").unwrap();
        assert_eq!(params["proxy"], "a/b/c");
    }

    #[test]
    fn the_payload_carries_route_headers_query_cookies_and_body() {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/orders?x=1&x=2")
            .header("content-type", "application/json")
            .header("cookie", "a=1; b=2")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let event = payload_v2(&parts, b"{}", &route("POST", "/orders"), Map::new(), "127.0.0.1:1");
        assert_eq!(event["routeKey"], "POST /orders");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["headers"]["content-type"], "application/json");
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!((event["body"].as_str(), event["isBase64Encoded"].as_bool()), (Some("{}"), Some(false)));
        // And lambda_http reads it as an API Gateway v2 request.
        let parsed: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
        assert!(matches!(parsed, lambda_http::request::LambdaRequest::ApiGatewayV2(_)));
    }

    #[test]
    fn a_binary_body_is_base64_encoded() {
        let (parts, ()) = axum::http::Request::builder().uri("/orders").body(()).unwrap().into_parts();
        let event = payload_v2(&parts, &[0xff, 0xfe], &route("POST", "/orders"), Map::new(), "h");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "//4=");
    }

    #[test]
    fn a_function_answer_becomes_status_headers_cookies_and_body() {
        let response = response_v2(json!({
            "statusCode": 201,
            "headers": {"location": "/orders/1"},
            "cookies": ["s=1"],
            "body": "{\"ok\":true}",
            "isBase64Encoded": false,
        }));
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["location"], "/orders/1");
        assert_eq!(response.headers()["set-cookie"], "s=1");
    }

    #[test]
    fn an_answer_without_a_status_code_is_a_200_of_itself() {
        assert_eq!(response_v2(json!({"hello": "world"})).status(), 200);
    }
}
