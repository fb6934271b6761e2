//! API Gateway HTTP API on 127.0.0.1: the template's routes, payload format 2.0 to the
//! function, the function's payload 2.0 response back as HTTP. What API Gateway itself answers
//! (headers or body too large, no route, throttled, refused by the JWT authorizer, integration
//! failure) it answers here the same way, in the same order, and then invokes nothing.

use crate::authorizer::{Grant, JwtAuthorizer, Refusal};
use crate::invoke::{InvokeError, Invoker};
use aws_lambda_events::event::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// API Gateway's request payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// HTTP API quota: "Total combined size of request line and header values", 10240 bytes.
pub const MAX_REQUEST_LINE_AND_HEADER_VALUES: usize = 10240;

/// Who may call a route: anyone (`Authorizer: NONE`), or bearers of a token the JWT
/// authorizer accepts, with at least one of `scopes` when there are any.
#[derive(Debug, Clone, Default)]
pub enum Authorization {
    #[default]
    None,
    Jwt {
        authorizer: Arc<JwtAuthorizer>,
        scopes: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    /// As in the template, e.g. `/orders/{id}`.
    pub path: String,
    pub binary: String,
    pub timeout: Duration,
    pub authorization: Authorization,
}

impl Route {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters if `path` matches this route's template (as the functions
    /// themselves match it: `shared::http`).
    pub fn matches(&self, method: &str, path: &str) -> Option<Map<String, Value>> {
        if !self.method.eq_ignore_ascii_case(method) && self.method != "ANY" {
            return None;
        }
        let params = shared::http::path_parameters(&self.path, path)?;
        Some(params.into_iter().map(|(name, value)| (name, Value::String(value))).collect())
    }
}

pub struct Api {
    pub routes: Vec<Route>,
    pub invoker: Arc<Invoker>,
    /// host:port, for `requestContext.domainName`.
    pub domain: String,
    /// The stage's throttling, when the template sets it.
    pub throttle: Option<TokenBucket>,
}

/// API Gateway's throttling of a stage: a bucket of `burst` tokens, refilled at `rate` per
/// second, one token per request; a request that finds it empty is answered 429 and invokes
/// nothing.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    /// Tokens left, and when that was counted.
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: std::time::Instant) -> TokenBucket {
        TokenBucket { rate, burst, state: std::sync::Mutex::new((burst, now)) }
    }

    /// Takes a token for a request arriving at `now`; `false` when there is none.
    pub fn take(&self, now: std::time::Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, counted) = *state;
        let refilled = (tokens + now.saturating_duration_since(counted).as_secs_f64() * self.rate).min(self.burst);
        let (left, taken) = if refilled >= 1.0 { (refilled - 1.0, true) } else { (refilled, false) };
        *state = (left, now.max(counted));
        taken
    }
}

fn gateway_answer(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(json!({ "message": message }).to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// The size API Gateway's quota counts: the request line (`GET /path?query HTTP/1.1`) and
/// every header value.
pub fn request_line_and_header_values(parts: &axum::http::request::Parts) -> usize {
    let target = parts.uri.path_and_query().map_or(parts.uri.path().len(), |p| p.as_str().len());
    let request_line = parts.method.as_str().len() + 1 + target + 1 + "HTTP/1.1".len();
    request_line + parts.headers.values().map(|v| v.as_bytes().len()).sum::<usize>()
}

/// Over the quota, the front end refuses the request before routing it, with the text API
/// Gateway's users report getting ("HTTP header is larger than 10240 bytes."). No document
/// gives its status: 413 is the one API Gateway answers with the sibling message of the same
/// front end for a body over its limit ("HTTP content length exceeded 10485760 bytes.").
fn headers_too_large() -> Response {
    let text = format!("HTTP header is larger than {MAX_REQUEST_LINE_AND_HEADER_VALUES} bytes.");
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// API Gateway's answer to a request its authorizer refused.
fn refused(refusal: &Refusal, route_scopes: &[String]) -> Response {
    let mut response = gateway_answer(refusal.status(), refusal.message());
    if let Ok(challenge) = HeaderValue::from_str(&refusal.challenge(route_scopes)) {
        response.headers_mut().insert("www-authenticate", challenge);
    }
    response
}

pub async fn handle(State(api): State<Arc<Api>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if request_line_and_header_values(&parts) > MAX_REQUEST_LINE_AND_HEADER_VALUES {
        return headers_too_large();
    }
    let Ok(body) = to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return gateway_answer(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let path = parts.uri.path();
    let matched = api.routes.iter().find_map(|r| r.matches(parts.method.as_str(), path).map(|p| (r, p)));
    let Some((route, params)) = matched else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
    };
    if api.throttle.as_ref().is_some_and(|bucket| !bucket.take(std::time::Instant::now())) {
        return gateway_answer(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    }
    let grant = match &route.authorization {
        Authorization::None => None,
        Authorization::Jwt { authorizer, scopes } => {
            match authorizer.authorize(&parts.headers, parts.uri.query(), scopes).await {
                Ok(grant) => Some(grant),
                Err(refusal) => return refused(&refusal, scopes),
            }
        }
    };
    let payload = payload_v2(&parts, &body, route, params, &api.domain, grant.as_ref());
    match api.invoker.invoke(&route.binary, payload, route.timeout).await {
        Ok(result) => response_v2(result),
        Err(InvokeError::Timeout(_)) => gateway_answer(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Err(error) => {
            tracing::error!(route = route.key(), %error, "integration failed");
            gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The event API Gateway sends for an HTTP API route (payload format 2.0), as
/// `aws_lambda_events`' own type, so that no field API Gateway sends can be forgotten; with
/// what the JWT authorizer granted, if the route has one, in `requestContext.authorizer.jwt`.
pub fn payload_v2(
    parts: &axum::http::request::Parts,
    body: &[u8],
    route: &Route,
    path_parameters: Map<String, Value>,
    domain: &str,
    grant: Option<&Grant>,
) -> Value {
    let mut event = ApiGatewayV2httpRequest::default();
    let mut cookies = Vec::new();
    // Repeated headers arrive comma-joined, as API Gateway joins them; cookies apart.
    let mut joined: Vec<(HeaderName, String)> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()));
        } else if let Some((_, existing)) = joined.iter_mut().find(|(n, _)| n == name) {
            existing.push(',');
            existing.push_str(&value);
        } else {
            joined.push((name.clone(), value));
        }
    }
    for (name, value) in joined {
        if let Ok(value) = HeaderValue::from_str(&value) {
            event.headers.insert(name, value);
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let now = chrono::Utc::now();

    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = parts.method.clone();
    http.path = Some(parts.uri.path().to_owned());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some("127.0.0.1".into());
    http.user_agent = header("user-agent");
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route.key());
    context.account_id = Some("123456789012".into());
    context.stage = Some("$default".into());
    context.request_id = Some(ulid::Ulid::new().to_string());
    context.apiid = Some("local".into());
    context.domain_name = Some(domain.to_owned());
    context.domain_prefix = Some(domain.split(':').next().unwrap_or(domain).to_owned());
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();
    context.http = http;
    if let Some(grant) = grant {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = grant.claims.clone();
        jwt.scopes = grant.scopes.clone();
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        context.authorizer = Some(authorizer);
    }

    event.version = Some("2.0".into());
    event.route_key = Some(route.key());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(raw_query.to_owned());
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.query_string_parameters = QueryMap::from(query);
    event.path_parameters =
        path_parameters.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned()))).collect();
    event.request_context = context;
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event.body = Some(text.to_owned()),
            Err(_) => {
                event.is_base64_encoded = true;
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
            }
        }
    }
    let mut value = serde_json::to_value(&event).expect("an API Gateway event serialises");
    if let Some(fields) = value.as_object_mut() {
        // The type also models Custom Authorizer v1 requests; API Gateway sends none of their
        // fields (nor `httpMethod`) in an HTTP API route's event.
        for v1_only in ["type", "methodArn", "httpMethod", "identitySource", "authorizationToken", "resource"] {
            fields.remove(v1_only);
        }
    }
    // API Gateway sends `"scopes": null` on a route without scopes; the type leaves it out.
    if let Some(jwt) = value.pointer_mut("/requestContext/authorizer/jwt").and_then(Value::as_object_mut) {
        jwt.entry("scopes").or_insert(Value::Null);
    }
    value
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
        Route {
            method: method.into(),
            path: path.into(),
            binary: "f".into(),
            timeout: Duration::from_secs(1),
            authorization: Authorization::None,
        }
    }

    #[test]
    fn given_a_full_bucket_when_a_burst_arrives_then_only_burst_requests_pass() {
        let t0 = std::time::Instant::now();
        let bucket = TokenBucket::new(1.0, 3.0, t0);
        let passed = (0..5).filter(|_| bucket.take(t0)).count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn given_an_empty_bucket_when_time_passes_then_it_refills_at_the_rate_up_to_the_burst() {
        let t0 = std::time::Instant::now();
        let bucket = TokenBucket::new(2.0, 3.0, t0);
        (0..3).for_each(|_| assert!(bucket.take(t0)));
        assert!(!bucket.take(t0));
        let half_a_second = t0 + Duration::from_millis(500);
        assert!(bucket.take(half_a_second), "one token back after 0.5 s at 2/s");
        assert!(!bucket.take(half_a_second));
        let much_later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.take(much_later)).count(), 3, "never more than the burst");
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
        let event = payload_v2(&parts, b"{}", &route("POST", "/orders"), Map::new(), "127.0.0.1:1", None);
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
    fn the_payload_has_no_field_api_gateway_sends_only_to_v1_authorizers() {
        let (parts, ()) = axum::http::Request::builder().uri("/orders/1").body(()).unwrap().into_parts();
        let mut params = Map::new();
        params.insert("id".into(), json!("1"));
        let event = payload_v2(&parts, b"", &route("GET", "/orders/{id}"), params, "h", None);
        for absent in ["type", "methodArn", "httpMethod", "identitySource", "authorizationToken", "body"] {
            assert!(event.get(absent).is_none(), "{absent} present");
        }
        assert_eq!(event["pathParameters"]["id"], "1");
        assert_eq!(event["requestContext"]["timeEpoch"].as_i64().map(|t| t > 0), Some(true));
    }

    #[test]
    fn a_binary_body_is_base64_encoded() {
        let (parts, ()) = axum::http::Request::builder().uri("/orders").body(()).unwrap().into_parts();
        let event = payload_v2(&parts, &[0xff, 0xfe], &route("POST", "/orders"), Map::new(), "h", None);
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

    // ----------------------------------------------------------------------------------------
    // What API Gateway answers itself: the JWT authorizer, the header quota
    // ----------------------------------------------------------------------------------------

    use crate::authorizer::{JwtAuthorizer, JwtConfig};
    use crate::oidc::{Issuer, AUDIENCE};

    type Invocations = Arc<std::sync::Mutex<Vec<Value>>>;

    /// The API with one function, `f`, that records each payload it gets and answers 200.
    fn api(routes: Vec<Route>) -> (Arc<Api>, Invocations) {
        let invocations = Invocations::default();
        let recorder = invocations.clone();
        let function: crate::functions::Handler = Arc::new(move |payload, _context| {
            recorder.lock().unwrap().push(payload);
            Box::pin(async { Ok(json!({"statusCode": 200, "body": "{}"})) })
        });
        let invoker = Arc::new(Invoker::InProcess(HashMap::from([("f".to_owned(), function)])));
        (Arc::new(Api { routes, invoker, domain: "127.0.0.1:1".into(), throttle: None }), invocations)
    }

    fn protected(authorizer: &Arc<JwtAuthorizer>, method: &str, path: &str, scopes: &[&str]) -> Route {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        Route { authorization: Authorization::Jwt { authorizer: authorizer.clone(), scopes }, ..route(method, path) }
    }

    async fn shop(issuer: &Issuer) -> (Arc<Api>, Invocations) {
        let config = JwtConfig { issuer: issuer.url().to_owned(), audience: vec![AUDIENCE.to_owned()] };
        let authorizer =
            Arc::new(JwtAuthorizer::new("ShopJwt", config, &["$request.header.Authorization".to_owned()]).unwrap());
        api(vec![
            protected(&authorizer, "GET", "/orders/{id}", &[]),
            protected(&authorizer, "POST", "/orders/{id}/shipments", &["shop/staff"]),
            route("GET", "/products/{sku}/recommendations"),
        ])
    }

    async fn call(api: &Arc<Api>, method: &str, uri: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Value) {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = handle(State(api.clone()), request.body(Body::empty()).unwrap()).await;
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn given_no_token_when_a_protected_route_is_called_then_401_and_nothing_is_invoked() {
        let issuer = Issuer::start_with(crate::oidc::tests::key()).await.unwrap();
        let (api, invocations) = shop(&issuer).await;
        let (status, headers, body) = call(&api, "GET", "/orders/1", None).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"})));
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, _) = call(&api, "GET", "/orders/1", Some("not.a.token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(invocations.lock().unwrap().is_empty(), "nothing was invoked");
        issuer.stop().await;
    }

    #[tokio::test]
    async fn given_a_customer_token_on_a_staff_route_then_403_and_nothing_is_invoked() {
        let issuer = Issuer::start_with(crate::oidc::tests::key()).await.unwrap();
        let (api, invocations) = shop(&issuer).await;
        let token = issuer.tokens().access_token("cust-ada", None).unwrap();
        let (status, headers, body) = call(&api, "POST", "/orders/1/shipments", Some(&token)).await;
        assert_eq!((status, body), (StatusCode::FORBIDDEN, json!({"message": "Forbidden"})));
        assert!(headers["www-authenticate"].to_str().unwrap().contains(r#"error="insufficient_scope""#));
        assert!(invocations.lock().unwrap().is_empty(), "nothing was invoked");
        issuer.stop().await;
    }

    #[tokio::test]
    async fn given_valid_tokens_then_the_function_gets_the_claims_as_strings_and_the_granted_scopes() {
        let issuer = Issuer::start_with(crate::oidc::tests::key()).await.unwrap();
        let (api, invocations) = shop(&issuer).await;
        let ada = issuer.tokens().access_token("cust-ada", None).unwrap();
        let sam = issuer.tokens().access_token("staff-sam", Some("openid shop/staff")).unwrap();
        assert_eq!(call(&api, "GET", "/orders/1", Some(&ada)).await.0, StatusCode::OK);
        assert_eq!(call(&api, "POST", "/orders/1/shipments", Some(&sam)).await.0, StatusCode::OK);
        let invoked = invocations.lock().unwrap().clone();
        let jwt = &invoked[0]["requestContext"]["authorizer"]["jwt"];
        assert_eq!((jwt["claims"]["sub"].as_str(), jwt["claims"]["aud"].as_str()), (Some("cust-ada"), Some(AUDIENCE)));
        assert_eq!(jwt["claims"]["iss"], issuer.url());
        assert!(jwt["claims"]["exp"].as_str().is_some_and(|exp| exp.parse::<u64>().is_ok()), "{jwt}");
        assert_eq!(jwt["scopes"], Value::Null, "present, and null, on a route without scopes: {jwt}");
        let staff = &invoked[1]["requestContext"]["authorizer"]["jwt"];
        assert_eq!(
            (staff["claims"]["scope"].as_str(), &staff["scopes"]),
            (Some("openid shop/staff"), &json!(["shop/staff"]))
        );
        // And the functions read the caller from it: the token's subject, staff by its scope.
        let request = lambda_http::request::from_str(&invoked[1].to_string()).unwrap();
        let caller = shared::auth::Access::default().caller(&request).unwrap();
        assert_eq!((caller.subject.0.as_str(), caller.staff), ("staff-sam", true));
        issuer.stop().await;
    }

    #[tokio::test]
    async fn given_a_public_route_then_no_token_is_asked_for_and_no_authorizer_context_is_sent() {
        let issuer = Issuer::start_with(crate::oidc::tests::key()).await.unwrap();
        let (api, invocations) = shop(&issuer).await;
        assert_eq!(call(&api, "GET", "/products/MUG/recommendations", None).await.0, StatusCode::OK);
        assert!(invocations.lock().unwrap()[0]["requestContext"].get("authorizer").is_none());
        issuer.stop().await;
    }

    #[tokio::test]
    async fn given_a_request_line_and_header_values_over_10240_bytes_then_413_and_nothing_is_invoked() {
        let (api, invocations) = api(vec![route("GET", "/orders")]);
        // "GET /orders HTTP/1.1" is 20 bytes: a header value of 10220 fills the quota exactly.
        let send = |filler: usize| {
            let request = axum::http::Request::builder().uri("/orders").header("x-filler", "f".repeat(filler));
            handle(State(api.clone()), request.body(Body::empty()).unwrap())
        };
        assert_eq!(send(10240 - 20).await.status(), StatusCode::OK, "at the quota");
        let over = send(10240 - 20 + 1).await;
        assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let text = to_bytes(over.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&text[..], b"HTTP header is larger than 10240 bytes.");
        assert_eq!(invocations.lock().unwrap().len(), 1, "only the request within the quota was invoked");
    }
}
