//! API Gateway's JWT authorizer for HTTP APIs, as the emulated API applies it before invoking
//! a route's function (developer guide, "Control access to HTTP APIs with JWT authorizers"):
//!
//! 1. the token is the identity source's value (`$request.header.Authorization`), bare or
//!    after `Bearer `; none, or an empty one: 401;
//! 2. it must be a JWT signed RS256 by a key of the issuer's JWKS, found by its `kid` (the
//!    JWKS comes from `<issuer>/.well-known/openid-configuration`'s `jwks_uri`, fetched over
//!    HTTP and cached; an unknown `kid` fetches it again, at most every 10 s);
//! 3. `iss` must be the configured issuer exactly; `aud` must be one of the configured
//!    audiences, or, only when the token has no `aud`, `client_id` must be ("API Gateway
//!    validates client_id only if aud is not present", troubleshooting guide); `exp` must be
//!    after now, `nbf` and `iat` before;
//! 4. a route with authorization scopes needs a token whose `scope` (or `scp`) holds at least
//!    one of them, else 403.
//!
//! Refusals are API Gateway's: 401 `{"message":"Unauthorized"}` with a `www-authenticate`
//! header saying why (the troubleshooting guide's shape, `Bearer scope="" error="invalid_token"
//! error_description="..."`), 403 `{"message":"Forbidden"}`; nothing is invoked. An accepted
//! token's claims reach the function as `requestContext.authorizer.jwt.claims`, every value a
//! string, and `scopes`: null on a route without scopes (as events captured from API Gateway
//! show, whatever `scope` the token has); on a route with scopes, which no document shows, the
//! route's scopes the token carries.
//!
//! The signature and the registered claims `iss`, `exp`, `nbf` are checked by `jsonwebtoken`.

use axum::http::{HeaderMap, HeaderName, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// API Gateway's quotas for an authorizer's issuer: "Timeout for OpenID Connect discovery
/// endpoint" and "for JSON Web Key Set endpoint", 1500 ms each.
pub const ISSUER_TIMEOUT: Duration = Duration::from_millis(1500);
/// "Response size from JSON Web Key Set endpoint": 150000 bytes.
pub const MAX_JWKS_BYTES: usize = 150_000;
/// An unknown `kid` refetches the JWKS (a rotated key), but not more often than this.
pub const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(10);

/// Why a request is refused, as API Gateway answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401 `{"message":"Unauthorized"}`: no token, or one that does not validate (why, for
    /// the `www-authenticate` header's `error_description`; `None`: no token at all).
    Unauthorized(Option<&'static str>),
    /// 403 `{"message":"Forbidden"}`: a valid token without any of the route's scopes.
    Forbidden,
}

/// The one `error_description` AWS documents verbatim; the others follow its wording.
pub const INVALID_AUDIENCE: &str = "the token does not have a valid audience";
pub const MALFORMED: &str = "the token is not a well-formed JWT";
pub const UNSUPPORTED_ALGORITHM: &str = "the token is not signed with RS256";
pub const UNKNOWN_KEY: &str = "the token's kid is not a key of the issuer";
pub const INVALID_SIGNATURE: &str = "the token's signature is invalid";
pub const INVALID_ISSUER: &str = "the token does not have a valid issuer";
pub const EXPIRED: &str = "the token has expired";
pub const NO_EXPIRY: &str = "the token has no expiry";
pub const NOT_YET_VALID: &str = "the token is not valid yet";
pub const ISSUED_IN_THE_FUTURE: &str = "the token was issued in the future";
pub const KEYS_UNAVAILABLE: &str = "the issuer's keys could not be fetched";

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// API Gateway's body.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(_) => "Unauthorized",
            Refusal::Forbidden => "Forbidden",
        }
    }

    /// The `www-authenticate` challenge (RFC 6750 §3), naming the route's scopes.
    pub fn challenge(&self, route_scopes: &[String]) -> String {
        let scope = route_scopes.join(" ");
        match self {
            Refusal::Unauthorized(None) => "Bearer".to_owned(),
            Refusal::Unauthorized(Some(why)) => {
                format!(r#"Bearer scope="{scope}" error="invalid_token" error_description="{why}""#)
            }
            Refusal::Forbidden => format!(
                r#"Bearer scope="{scope}" error="insufficient_scope" error_description="the token does not have any of the route's scopes""#
            ),
        }
    }
}

/// What an accepted token gives the function: `requestContext.authorizer.jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub claims: HashMap<String, String>,
    pub scopes: Option<Vec<String>>,
}

/// What a JWT authorizer trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: Vec<String>,
}

/// Where the authorizer reads the token: `$request.header.<name>` or
/// `$request.querystring.<name>` (the two a JWT authorizer may use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(HeaderName),
    QueryString(String),
}

impl IdentitySource {
    pub fn parse(expression: &str) -> Option<IdentitySource> {
        if let Some(name) = expression.strip_prefix("$request.header.") {
            return HeaderName::try_from(name).ok().map(IdentitySource::Header);
        }
        let name = expression.strip_prefix("$request.querystring.")?;
        (!name.is_empty()).then(|| IdentitySource::QueryString(name.to_owned()))
    }

    /// The token the request carries there: the value without a `Bearer ` prefix (API
    /// Gateway takes either), or `None` when absent or empty. Repeated headers are joined
    /// with commas, as API Gateway joins them (which no JWT survives).
    pub fn token(&self, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
        let value = match self {
            IdentitySource::Header(name) => {
                let values: Vec<String> =
                    headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
                (!values.is_empty()).then(|| values.join(","))?
            }
            IdentitySource::QueryString(name) => {
                let values: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
                    .collect();
                (!values.is_empty()).then(|| values.join(","))?
            }
        };
        let value = value.trim();
        let token = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
            _ if value.eq_ignore_ascii_case("bearer") => "",
            _ => value,
        };
        (!token.is_empty()).then(|| token.to_owned())
    }
}

/// A claim's value as API Gateway hands it to the function: every value a string. Strings
/// as they are, numbers as their JSON text (`"exp": "1612061676"`), booleans as `true` or
/// `false`, arrays as Go prints a slice (`cognito:groups` `["a","b"]` arrives as `[a b]`),
/// objects as their JSON text; a null claim is left out.
pub fn claim_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().filter_map(claim_text).collect::<Vec<_>>().join(" ")),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
    })
}

/// The scopes a token carries: its `scope` claim (space-separated), or else `scp` (a string or
/// a list, as some issuers write it).
pub fn token_scopes(claims: &Map<String, Value>) -> Vec<String> {
    let of = |value: &Value| match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    claims.get("scope").or_else(|| claims.get("scp")).map(of).unwrap_or_default()
}

fn refusal_of(error: &jsonwebtoken::errors::Error) -> Refusal {
    Refusal::Unauthorized(Some(match error.kind() {
        ErrorKind::ExpiredSignature => EXPIRED,
        ErrorKind::ImmatureSignature => NOT_YET_VALID,
        ErrorKind::InvalidIssuer => INVALID_ISSUER,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => INVALID_ISSUER,
        ErrorKind::MissingRequiredClaim(_) => NO_EXPIRY, // a token that never expires is refused
        ErrorKind::InvalidSignature => INVALID_SIGNATURE,
        ErrorKind::InvalidAlgorithm => UNSUPPORTED_ALGORITHM,
        _ => MALFORMED,
    }))
}

/// Whether `value` (a string or a list of strings) names one of `accepted`.
fn names_one_of(value: &Value, accepted: &[String]) -> bool {
    match value {
        Value::String(s) => accepted.contains(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).any(|s| accepted.iter().any(|a| a == s)),
        _ => false,
    }
}

/// Validates `token` against the issuer's `keys` and `config` for a route requiring
/// `route_scopes` (none: any valid token), as API Gateway does.
pub fn verify(token: &str, keys: &JwkSet, config: &JwtConfig, route_scopes: &[String]) -> Result<Grant, Refusal> {
    let header = decode_header(token).map_err(|_| Refusal::Unauthorized(Some(MALFORMED)))?;
    if header.alg != Algorithm::RS256 {
        return Err(Refusal::Unauthorized(Some(UNSUPPORTED_ALGORITHM)));
    }
    let jwk = header.kid.as_deref().and_then(|kid| keys.find(kid)).ok_or(Refusal::Unauthorized(Some(UNKNOWN_KEY)))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| Refusal::Unauthorized(Some(UNKNOWN_KEY)))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.validate_aud = false; // `aud`, or `client_id` without one: below
    validation.set_issuer(&[&config.issuer]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    let claims = decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| refusal_of(&e))?.claims;

    let audience_ok = match claims.get("aud") {
        Some(aud) => names_one_of(aud, &config.audience),
        None => claims.get("client_id").is_some_and(|id| names_one_of(id, &config.audience)),
    };
    if !audience_ok {
        return Err(Refusal::Unauthorized(Some(INVALID_AUDIENCE)));
    }
    if claims.get("iat").and_then(Value::as_u64).is_some_and(|iat| iat > jsonwebtoken::get_current_timestamp()) {
        return Err(Refusal::Unauthorized(Some(ISSUED_IN_THE_FUTURE)));
    }
    let scopes = if route_scopes.is_empty() {
        None
    } else {
        let carried = token_scopes(&claims);
        let granted: Vec<String> = route_scopes.iter().filter(|s| carried.contains(s)).cloned().collect();
        if granted.is_empty() {
            return Err(Refusal::Forbidden);
        }
        Some(granted)
    };
    let claims = claims.iter().filter_map(|(name, value)| Some((name.clone(), claim_text(value)?))).collect();
    Ok(Grant { claims, scopes })
}

/// The issuer's JWKS, fetched over HTTP as API Gateway fetches it, and kept.
#[derive(Debug)]
struct IssuerKeys {
    issuer: String,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

impl IssuerKeys {
    /// The keys, fetched if there are none yet, or if `kid` is not among them and they were
    /// fetched long enough ago.
    async fn for_kid(&self, kid: Option<&str>) -> Result<Arc<JwkSet>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((keys, fetched)) = cached.as_ref() {
            let known = kid.is_none_or(|kid| keys.find(kid).is_some());
            if known || fetched.elapsed() < REFETCH_AT_MOST_EVERY {
                return Ok(keys.clone());
            }
        }
        let keys = Arc::new(self.fetch().await?);
        *cached = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let discovery: Value = self.get(&discovery_url).await?;
        let jwks_uri =
            discovery["jwks_uri"].as_str().ok_or_else(|| format!("{discovery_url} names no jwks_uri"))?.to_owned();
        let jwks: Value = self.get(&jwks_uri).await?;
        // Keys of a type this cannot use (another kty, a future algorithm) are skipped, not fatal.
        let keys = jwks["keys"].as_array().ok_or_else(|| format!("{jwks_uri} holds no keys"))?;
        Ok(JwkSet { keys: keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).collect() })
    }

    async fn get(&self, url: &str) -> Result<Value, String> {
        let response = self.http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("{url}: {} bytes, more than API Gateway reads", body.len()));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
    }
}

/// A JWT authorizer of the API, as the template configures it.
#[derive(Debug)]
pub struct JwtAuthorizer {
    pub name: String,
    pub config: JwtConfig,
    pub identity: IdentitySource,
    keys: IssuerKeys,
}

impl JwtAuthorizer {
    /// A JWT authorizer reads its token from exactly one identity source.
    pub fn new(name: &str, config: JwtConfig, identity_source: &[String]) -> Result<JwtAuthorizer, String> {
        let identity = match identity_source {
            [one] => IdentitySource::parse(one).ok_or_else(|| format!("authorizer {name}: identity source {one}"))?,
            other => return Err(format!("authorizer {name}: a JWT authorizer has one identity source, not {other:?}")),
        };
        let http = reqwest::Client::builder().timeout(ISSUER_TIMEOUT).build().map_err(|e| e.to_string())?;
        let keys = IssuerKeys { issuer: config.issuer.clone(), http, cached: tokio::sync::Mutex::new(None) };
        Ok(JwtAuthorizer { name: name.to_owned(), config, identity, keys })
    }

    /// API Gateway's decision for a request to a route requiring `route_scopes`.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        route_scopes: &[String],
    ) -> Result<Grant, Refusal> {
        let token = self.identity.token(headers, query).ok_or(Refusal::Unauthorized(None))?;
        let kid = decode_header(&token).map_err(|_| Refusal::Unauthorized(Some(MALFORMED)))?.kid;
        let keys = self.keys.for_kid(kid.as_deref()).await.map_err(|error| {
            tracing::warn!(authorizer = self.name, %error, "the issuer's keys could not be fetched");
            Refusal::Unauthorized(Some(KEYS_UNAVAILABLE))
        })?;
        verify(&token, &keys, &self.config, route_scopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::{self, SigningKey, Tokens, AUDIENCE};
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:1/issuer";

    fn key() -> Arc<SigningKey> {
        crate::oidc::tests::key()
    }

    fn config() -> JwtConfig {
        JwtConfig { issuer: ISSUER.to_owned(), audience: vec![AUDIENCE.to_owned()] }
    }

    fn staff() -> Vec<String> {
        vec!["shop/staff".to_owned()]
    }

    /// A customer's claims as the local issuer mints them, valid for an hour.
    fn claims(sub: &str) -> Value {
        let now = oidc::now();
        json!({"iss": ISSUER, "sub": sub, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 3600,
               "jti": "01J0000000000000000000000", "token_use": "access"})
    }

    fn with(mut claims: Value, changes: Value) -> Value {
        for (name, value) in changes.as_object().unwrap() {
            match value {
                Value::Null => claims.as_object_mut().unwrap().remove(name),
                other => claims.as_object_mut().unwrap().insert(name.clone(), other.clone()),
            };
        }
        claims
    }

    fn verified(claims: &Value, route_scopes: &[String]) -> Result<Grant, Refusal> {
        verify(&key().sign(claims), &key().jwks(), &config(), route_scopes)
    }

    fn b64(json: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    fn authorization() -> IdentitySource {
        IdentitySource::parse("$request.header.Authorization").unwrap()
    }

    #[test]
    fn given_no_authorization_header_then_401_without_an_error_description() {
        assert_eq!(authorization().token(&HeaderMap::new(), None), None);
        let mut empty = HeaderMap::new();
        empty.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(authorization().token(&empty, None), None, "an empty token is no token");
        assert_eq!(Refusal::Unauthorized(None).challenge(&[]), "Bearer");
        assert_eq!(
            (Refusal::Unauthorized(None).status(), Refusal::Unauthorized(None).message()),
            (StatusCode::UNAUTHORIZED, "Unauthorized")
        );
    }

    #[test]
    fn given_a_bearer_or_a_bare_token_then_either_is_read() {
        assert_eq!(authorization().token(&bearer("abc.def.ghi"), None).as_deref(), Some("abc.def.ghi"));
        let mut bare = HeaderMap::new();
        bare.insert("authorization", "abc.def.ghi".parse().unwrap());
        assert_eq!(authorization().token(&bare, None).as_deref(), Some("abc.def.ghi"));
        let mut lower = HeaderMap::new();
        lower.insert("authorization", "bearer abc.def.ghi".parse().unwrap());
        assert_eq!(authorization().token(&lower, None).as_deref(), Some("abc.def.ghi"));
        let query = IdentitySource::parse("$request.querystring.access_token").unwrap();
        assert_eq!(
            query.token(&HeaderMap::new(), Some("a=1&access_token=abc.def.ghi")).as_deref(),
            Some("abc.def.ghi")
        );
    }

    #[test]
    fn given_a_malformed_token_then_401() {
        for token in ["not-a-jwt", "a.b", "a.b.c", "..", "Bearer"] {
            assert_eq!(
                verify(token, &key().jwks(), &config(), &[]),
                Err(Refusal::Unauthorized(Some(MALFORMED))),
                "{token}"
            );
        }
        // A well-formed header over a payload that is not JSON: refused, whichever check sees it first.
        let header = b64(&json!({"alg": "RS256", "kid": key().kid()}));
        for token in [format!("{header}.%%%.sig"), format!("{header}.{}.", b64(&json!("not claims")))] {
            assert!(
                matches!(verify(&token, &key().jwks(), &config(), &[]), Err(Refusal::Unauthorized(Some(_)))),
                "{token}"
            );
        }
    }

    #[test]
    fn given_an_expired_token_then_401() {
        let now = oidc::now();
        let expired = with(claims("cust-ada"), json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 1}));
        assert_eq!(verified(&expired, &[]), Err(Refusal::Unauthorized(Some(EXPIRED))));
        let never_expiring = with(claims("cust-ada"), json!({"exp": null}));
        assert_eq!(verified(&never_expiring, &[]), Err(Refusal::Unauthorized(Some(NO_EXPIRY))));
    }

    #[test]
    fn given_a_token_not_yet_valid_then_401() {
        let later = with(claims("cust-ada"), json!({"nbf": oidc::now() + 600}));
        assert_eq!(verified(&later, &[]), Err(Refusal::Unauthorized(Some(NOT_YET_VALID))));
        let issued_later = with(claims("cust-ada"), json!({"iat": oidc::now() + 600}));
        assert_eq!(verified(&issued_later, &[]), Err(Refusal::Unauthorized(Some(ISSUED_IN_THE_FUTURE))));
    }

    #[test]
    fn given_a_token_signed_by_another_key_then_401() {
        let other = SigningKey::generate();
        let token = other.sign(&claims("cust-ada"));
        assert_eq!(verify(&token, &key().jwks(), &config(), &[]), Err(Refusal::Unauthorized(Some(UNKNOWN_KEY))));
        // Its signature grafted under a header naming our kid: the signature does not verify.
        let (_, rest) = token.split_once('.').unwrap();
        let forged = format!("{}.{rest}", b64(&json!({"alg": "RS256", "typ": "JWT", "kid": key().kid()})));
        assert_eq!(verify(&forged, &key().jwks(), &config(), &[]), Err(Refusal::Unauthorized(Some(INVALID_SIGNATURE))));
    }

    #[test]
    fn given_alg_none_then_401() {
        let token = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims("cust-ada")));
        assert!(matches!(verify(&token, &key().jwks(), &config(), &[]), Err(Refusal::Unauthorized(Some(_)))));
        let with_kid = format!("{}.{}.", b64(&json!({"alg": "none", "kid": key().kid()})), b64(&claims("cust-ada")));
        assert!(matches!(verify(&with_kid, &key().jwks(), &config(), &[]), Err(Refusal::Unauthorized(Some(_)))));
    }

    #[test]
    fn given_hs256_signed_with_the_public_key_as_the_secret_then_401() {
        let jwk = serde_json::to_value(&key().jwks().keys[0]).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key().kid().to_owned());
        for secret in [jwk.to_string().into_bytes(), jwk["n"].as_str().unwrap().as_bytes().to_vec()] {
            let token = jsonwebtoken::encode(&header, &claims("cust-ada"), &EncodingKey::from_secret(&secret)).unwrap();
            assert_eq!(
                verify(&token, &key().jwks(), &config(), &[]),
                Err(Refusal::Unauthorized(Some(UNSUPPORTED_ALGORITHM)))
            );
        }
    }

    #[test]
    fn given_another_issuer_then_401() {
        for iss in [json!("http://127.0.0.1:1/issuer/"), json!("https://evil.example"), Value::Null] {
            let claims = with(claims("cust-ada"), json!({ "iss": iss }));
            assert_eq!(verified(&claims, &[]), Err(Refusal::Unauthorized(Some(INVALID_ISSUER))), "{iss}");
        }
    }

    #[test]
    fn given_another_audience_then_401_with_the_documented_description() {
        let refused = verified(&with(claims("cust-ada"), json!({"aud": "someone-else"})), &[]);
        assert_eq!(refused, Err(Refusal::Unauthorized(Some(INVALID_AUDIENCE))));
        assert_eq!(
            refused.unwrap_err().challenge(&[]),
            r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
        );
        // `aud` decides when present, even if `client_id` would match.
        let both = with(claims("cust-ada"), json!({"aud": "someone-else", "client_id": AUDIENCE}));
        assert_eq!(verified(&both, &[]), Err(Refusal::Unauthorized(Some(INVALID_AUDIENCE))));
        let neither = with(claims("cust-ada"), json!({"aud": null}));
        assert_eq!(verified(&neither, &[]), Err(Refusal::Unauthorized(Some(INVALID_AUDIENCE))));
    }

    #[test]
    fn given_a_cognito_style_access_token_with_client_id_and_no_aud_then_it_passes() {
        let cognito = with(claims("cust-ada"), json!({"aud": null, "client_id": AUDIENCE}));
        assert!(verified(&cognito, &[]).is_ok());
        let listed = with(claims("cust-ada"), json!({"aud": ["other", AUDIENCE]}));
        assert!(verified(&listed, &[]).is_ok(), "one of a list of audiences is enough");
    }

    #[test]
    fn given_a_customer_token_on_a_staff_route_then_403() {
        let refused = verified(&claims("cust-ada"), &staff());
        assert_eq!(refused, Err(Refusal::Forbidden));
        let refusal = refused.unwrap_err();
        assert_eq!((refusal.status(), refusal.message()), (StatusCode::FORBIDDEN, "Forbidden"));
        let other_scope = with(claims("cust-ada"), json!({"scope": "openid shop/staffing"}));
        assert_eq!(verified(&other_scope, &staff()), Err(Refusal::Forbidden));
    }

    #[test]
    fn given_the_routes_scope_among_the_tokens_then_it_passes_with_that_scope() {
        let sam = with(claims("staff-sam"), json!({"scope": "openid shop/staff"}));
        let grant = verified(&sam, &staff()).unwrap();
        assert_eq!(grant.scopes, Some(staff()));
        assert_eq!(grant.claims["scope"], "openid shop/staff");
        let scp = with(claims("staff-sam"), json!({"scp": ["shop/staff"]}));
        assert!(verified(&scp, &staff()).is_ok(), "scp, as some issuers name it");
    }

    #[test]
    fn given_a_valid_token_on_a_route_without_scopes_then_the_claims_pass_as_strings_and_scopes_is_null() {
        let token = with(
            claims("cust-ada"),
            json!({"scope": "openid", "cognito:groups": ["staff", "beta"], "email_verified": true,
                   "address": {"city": "Paris"}, "middle_name": null}),
        );
        let grant = verified(&token, &[]).unwrap();
        assert_eq!(grant.scopes, None);
        let claims = &grant.claims;
        assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), ("cust-ada", AUDIENCE));
        assert_eq!(claims["exp"], token["exp"].as_u64().unwrap().to_string());
        assert_eq!(claims["cognito:groups"], "[staff beta]");
        assert_eq!((claims["email_verified"].as_str(), claims["address"].as_str()), ("true", r#"{"city":"Paris"}"#));
        assert!(!claims.contains_key("middle_name"), "a null claim is left out");
    }

    #[test]
    fn nested_lists_print_as_go_slices_and_numbers_keep_their_json_text() {
        assert_eq!(claim_text(&json!([1, "a", [true]])).as_deref(), Some("[1 a [true]]"));
        assert_eq!(claim_text(&json!(1.5)).as_deref(), Some("1.5"));
    }

    #[tokio::test]
    async fn given_the_issuer_over_http_then_the_authorizer_fetches_its_keys_and_accepts_its_tokens() {
        let issuer = oidc::Issuer::start_with(key()).await.unwrap();
        let config = JwtConfig { issuer: issuer.url().to_owned(), audience: vec![AUDIENCE.to_owned()] };
        let authorizer = JwtAuthorizer::new("ShopJwt", config, &["$request.header.Authorization".to_owned()]).unwrap();
        let token = issuer.tokens().access_token("cust-ada", None).unwrap();
        let grant = authorizer.authorize(&bearer(&token), None, &[]).await.unwrap();
        assert_eq!(grant.claims["iss"], issuer.url());
        assert_eq!(authorizer.authorize(&HeaderMap::new(), None, &[]).await, Err(Refusal::Unauthorized(None)));
        issuer.stop().await;
        // Cached: the keys outlive the issuer's answers.
        assert!(authorizer.authorize(&bearer(&token), None, &[]).await.is_ok());
    }

    #[tokio::test]
    async fn given_an_issuer_that_does_not_answer_then_401_and_nothing_else() {
        let config = JwtConfig { issuer: "http://127.0.0.1:9".to_owned(), audience: vec![AUDIENCE.to_owned()] };
        let authorizer = JwtAuthorizer::new("ShopJwt", config, &["$request.header.Authorization".to_owned()]).unwrap();
        let token = Tokens::new("http://127.0.0.1:9", key()).access_token("cust-ada", None).unwrap();
        let refused = authorizer.authorize(&bearer(&token), None, &[]).await;
        assert_eq!(refused, Err(Refusal::Unauthorized(Some(KEYS_UNAVAILABLE))));
    }
}
