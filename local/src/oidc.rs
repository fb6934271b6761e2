//! The local twin's OpenID Connect issuer: what the Cognito user pool (or Auth0, Okta, Entra
//! ID) is to the deployed stack, on 127.0.0.1. The runner provisions the stack with this
//! issuer's URL as `JwtIssuer` and [`AUDIENCE`] as `JwtAudience`, and the emulated API
//! Gateway fetches its discovery document and keys over HTTP, as API Gateway does.
//!
//! - `GET /.well-known/openid-configuration`: `issuer`, `jwks_uri`, `token_endpoint`;
//! - `GET /.well-known/jwks.json`: the public half of an RSA-2048 key made at start (and never
//!   written anywhere), identified by its RFC 7638 thumbprint as `kid`;
//! - `POST /token` (dev only: no client, no password, anyone on this machine can ask):
//!   form fields `sub` (required), `scope` and `expires_in` (optional); answers RFC 6749's
//!   `{"access_token", "token_type": "Bearer", "expires_in"}`, or its `{"error", ...}` with 400.
//!
//! Tokens are RS256 access tokens shaped like Cognito's: `iss`, `sub`, `aud`, `iat`, `nbf`,
//! `exp`, `jti`, `token_use: access`, and `scope` when asked for. [`Tokens`] mints the same in
//! process, for tests and the demo.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The audience of every token this issuer mints, and the stack's `JwtAudience` locally.
pub const AUDIENCE: &str = "shop-local";
/// A token's lifetime unless asked otherwise: Cognito's default for access tokens (and the
/// template's `AccessTokenValidity`).
pub const DEFAULT_EXPIRES_IN: u64 = 3600;
/// The longest lifetime a token may be asked for: Cognito's maximum for access tokens.
pub const MAX_EXPIRES_IN: u64 = 86_400;
/// RFC 6749 does not bound a scope; a request line and headers must fit API Gateway's 10 KiB.
pub const MAX_SCOPE_LEN: usize = 1024;
const RSA_BITS: usize = 2048;

/// Seconds since the epoch, as JWT times are.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

/// An RSA-2048 signing key and its public JWK.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the operating system's randomness (CPU-bound: a second or so).
    pub fn generate() -> SigningKey {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).expect("an RSA-2048 key");
        let der = private.to_pkcs1_der().expect("an RSA key encodes as PKCS#1");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("the public half of an RSA key");
        let kid = public.thumbprint(ThumbprintHash::SHA256);
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        SigningKey { kid, encoding, public }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS that publishes this key.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.public.clone()] }
    }

    /// `claims` as an RS256 JWT whose header names this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("RS256 signs any JSON claims")
    }
}

/// What to mint: the `POST /token` form's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// `sub`: the customer ID (or a staff member's).
    pub subject: String,
    /// `scope`: space-separated scopes, e.g. the stack's `StaffScope`.
    pub scope: Option<String>,
    /// Seconds, 1..=`MAX_EXPIRES_IN`; `DEFAULT_EXPIRES_IN` when absent.
    pub expires_in: Option<u64>,
}

impl TokenRequest {
    pub fn new(subject: &str, scope: Option<&str>) -> TokenRequest {
        TokenRequest { subject: subject.to_owned(), scope: scope.map(str::to_owned), expires_in: None }
    }
}

/// RFC 6749's token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minted {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Why a token request is refused (RFC 6749 §5.2: `invalid_request` or `invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("sub is required")]
    NoSubject,
    #[error("sub must be 1 to 128 characters of letters, digits and ._@|+-")]
    BadSubject,
    #[error("scope must be space-separated scope tokens (RFC 6749 section 3.3), at most 1024 characters")]
    BadScope,
    #[error("expires_in must be a whole number of seconds from 1 to 86400")]
    BadExpiry,
    #[error("{0}")]
    BadRequest(String),
}

impl MintError {
    fn code(&self) -> &'static str {
        match self {
            MintError::BadScope => "invalid_scope",
            _ => "invalid_request",
        }
    }
}

/// One scope-token of RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`, the set the template's
/// `StaffScope` pattern allows too.
fn scope_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Mints access tokens for one issuer; cheap to clone into tests and the demo.
#[derive(Debug, Clone)]
pub struct Tokens {
    issuer: String,
    key: Arc<SigningKey>,
}

impl Tokens {
    pub fn new(issuer: &str, key: Arc<SigningKey>) -> Tokens {
        Tokens { issuer: issuer.to_owned(), key }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// An access token for `request`, as `POST /token` mints it. The subject is held to what
    /// the functions accept as a customer ID (`shared::auth::valid_subject`), so that a token
    /// this issuer mints never reaches a function only to be refused there.
    pub fn mint(&self, request: &TokenRequest) -> Result<Minted, MintError> {
        if request.subject.is_empty() {
            return Err(MintError::NoSubject);
        }
        if !shared::auth::valid_subject(&request.subject) {
            return Err(MintError::BadSubject);
        }
        let scope = request.scope.as_deref().filter(|s| !s.is_empty());
        if scope.is_some_and(|s| s.len() > MAX_SCOPE_LEN || !s.split(' ').all(scope_token)) {
            return Err(MintError::BadScope);
        }
        let expires_in = request.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        if !(1..=MAX_EXPIRES_IN).contains(&expires_in) {
            return Err(MintError::BadExpiry);
        }
        let issued = now();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": request.subject,
            "aud": AUDIENCE,
            "iat": issued,
            "nbf": issued,
            "exp": issued + expires_in,
            "jti": ulid::Ulid::new().to_string(),
            "token_use": "access",
        });
        if let Some(scope) = scope {
            claims["scope"] = json!(scope);
        }
        Ok(Minted { access_token: self.key.sign(&claims), token_type: "Bearer", expires_in })
    }

    /// An access token for `subject` with `scope`, valid for the default hour.
    pub fn access_token(&self, subject: &str, scope: Option<&str>) -> Result<String, MintError> {
        Ok(self.mint(&TokenRequest::new(subject, scope))?.access_token)
    }

    /// The discovery document (OpenID Connect Discovery 1.0 §3, the fields an API Gateway
    /// JWT authorizer reads and those the specification requires of a provider).
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "grant_types_supported": ["urn:local:dev-token"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
        })
    }
}

/// An issuer's port, bound before its key exists: the URL is known at once (the stack is
/// provisioned with it) while the key is made (seconds, in a debug build).
pub struct BoundIssuer {
    listener: tokio::net::TcpListener,
    url: String,
}

impl BoundIssuer {
    /// A free loopback port.
    pub async fn bind() -> std::io::Result<BoundIssuer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok(BoundIssuer { listener, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves `key` until the issuer is stopped.
    pub fn serve(self, key: Arc<SigningKey>) -> Issuer {
        let tokens = Tokens::new(&self.url, key);
        let router = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/token", post(token))
            .with_state(tokens.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = self.listener;
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                tracing::error!(%error, "local issuer stopped");
            }
        });
        Issuer { tokens, stop: Some(stop), task: Some(task) }
    }
}

/// Makes a signing key off the async runtime's threads.
pub async fn generate_key() -> std::io::Result<Arc<SigningKey>> {
    tokio::task::spawn_blocking(SigningKey::generate).await.map(Arc::new).map_err(std::io::Error::other)
}

/// The issuer, serving on 127.0.0.1 until stopped (or dropped).
pub struct Issuer {
    tokens: Tokens,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Issuer {
    /// Makes a key and serves on a free loopback port.
    pub async fn start() -> std::io::Result<Issuer> {
        let bound = BoundIssuer::bind().await?;
        Ok(bound.serve(generate_key().await?))
    }

    /// Serves `key` on a free loopback port.
    pub async fn start_with(key: Arc<SigningKey>) -> std::io::Result<Issuer> {
        Ok(BoundIssuer::bind().await?.serve(key))
    }

    /// The issuer URL: the tokens' `iss`, the stack's `JwtIssuer`.
    pub fn url(&self) -> &str {
        self.tokens.issuer()
    }

    /// Mints in process what `POST /token` mints.
    pub fn tokens(&self) -> Tokens {
        self.tokens.clone()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let text = serde_json::to_string(body).expect("JSON values serialise");
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text).into_response()
}

async fn discovery(State(tokens): State<Tokens>) -> Response {
    json_response(StatusCode::OK, &tokens.discovery())
}

async fn jwks(State(tokens): State<Tokens>) -> Response {
    json_response(StatusCode::OK, &tokens.key().jwks())
}

/// RFC 6749 §5.1 and §5.2: JSON, and never cached.
fn token_response(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = json_response(status, body);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The form of a token request: each field at most once (RFC 6749 §3.2).
fn token_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, MintError> {
    let form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !form {
        return Err(MintError::BadRequest("the body must be application/x-www-form-urlencoded".into()));
    }
    let mut request = TokenRequest::default();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in form_urlencoded::parse(body) {
        if !seen.insert(name.clone()) {
            return Err(MintError::BadRequest(format!("{name} is given more than once")));
        }
        match name.as_ref() {
            "sub" => request.subject = value.into_owned(),
            "scope" => request.scope = Some(value.into_owned()),
            "expires_in" => request.expires_in = Some(value.parse().map_err(|_| MintError::BadExpiry)?),
            _ => {} // RFC 6749 §3.2: unrecognised parameters are ignored (grant_type, client_id...)
        }
    }
    Ok(request)
}

async fn token(State(tokens): State<Tokens>, headers: HeaderMap, body: Bytes) -> Response {
    match token_request(&headers, &body).and_then(|request| tokens.mint(&request)) {
        // Neither the token nor the subject is logged: a token is a credential.
        Ok(minted) => token_response(StatusCode::OK, &minted),
        Err(error) => token_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": error.code(), "error_description": error.to_string()}),
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};

    /// One key for the whole test binary: making one takes a while in a debug build.
    pub(crate) fn key() -> Arc<SigningKey> {
        static KEY: std::sync::OnceLock<Arc<SigningKey>> = std::sync::OnceLock::new();
        KEY.get_or_init(|| Arc::new(SigningKey::generate())).clone()
    }

    fn claims_of(token: &str, tokens: &Tokens) -> Value {
        let jwk = tokens.key().jwks().keys[0].clone();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[tokens.issuer()]);
        decode::<Value>(token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation).unwrap().claims
    }

    #[test]
    fn given_a_subject_and_a_scope_when_minted_then_the_access_token_carries_them_signed_rs256_with_the_kid() {
        let tokens = Tokens::new("http://127.0.0.1:1", key());
        let minted = tokens.mint(&TokenRequest::new("staff-sam", Some("openid shop/staff"))).unwrap();
        assert_eq!((minted.token_type, minted.expires_in), ("Bearer", DEFAULT_EXPIRES_IN));
        let header = decode_header(&minted.access_token).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::RS256, Some(tokens.key().kid())));
        let claims = claims_of(&minted.access_token, &tokens);
        assert_eq!(claims["iss"], "http://127.0.0.1:1");
        assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some("staff-sam"), Some(AUDIENCE)));
        assert_eq!(
            (claims["scope"].as_str(), claims["token_use"].as_str()),
            (Some("openid shop/staff"), Some("access"))
        );
        let (iat, nbf, exp) = (claims["iat"].as_u64().unwrap(), claims["nbf"].as_u64(), claims["exp"].as_u64());
        assert_eq!((nbf, exp), (Some(iat), Some(iat + DEFAULT_EXPIRES_IN)));
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 26));
    }

    #[test]
    fn given_no_scope_then_the_token_has_no_scope_claim_and_each_token_its_own_jti() {
        let tokens = Tokens::new("http://127.0.0.1:1", key());
        let (a, b) = (tokens.access_token("cust-ada", None).unwrap(), tokens.access_token("cust-ada", None).unwrap());
        let (a, b) = (claims_of(&a, &tokens), claims_of(&b, &tokens));
        assert!(a.get("scope").is_none());
        assert_ne!(a["jti"], b["jti"]);
    }

    #[test]
    fn given_an_unusable_subject_scope_or_lifetime_then_nothing_is_minted() {
        let tokens = Tokens::new("http://127.0.0.1:1", key());
        let refused = |subject: &str, scope: Option<&str>, expires_in: Option<u64>| {
            let request = TokenRequest { subject: subject.into(), scope: scope.map(Into::into), expires_in };
            tokens.mint(&request).unwrap_err()
        };
        assert_eq!(refused("", None, None), MintError::NoSubject);
        for subject in ["a b", "a#b", "a:b", "cust\u{202e}", &"x".repeat(129)] {
            assert_eq!(refused(subject, None, None), MintError::BadSubject, "{subject:?}");
        }
        for scope in ["a  b", " a", "a\"b", "a\\b", "é", &"s".repeat(MAX_SCOPE_LEN + 1)] {
            assert_eq!(refused("cust-ada", Some(scope), None), MintError::BadScope, "{scope:?}");
        }
        for expires_in in [0, MAX_EXPIRES_IN + 1] {
            assert_eq!(refused("cust-ada", None, Some(expires_in)), MintError::BadExpiry);
        }
    }

    #[test]
    fn the_jwks_publishes_the_public_key_under_its_thumbprint() {
        let key = key();
        let jwks = serde_json::to_value(key.jwks()).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
            (Some("RSA"), Some("RS256"), Some("sig"))
        );
        assert_eq!(jwk["kid"], key.kid());
        assert!(jwk.get("d").is_none() && jwk.get("p").is_none(), "no private part: {jwk}");
        // 2048 bits: a 256-byte modulus, 342 base64url characters unpadded.
        assert_eq!(jwk["n"].as_str().map(str::len), Some(342));
    }

    #[tokio::test]
    async fn given_a_running_issuer_then_discovery_points_at_its_keys_and_the_token_endpoint_mints() {
        let issuer = Issuer::start_with(key()).await.unwrap();
        let http = reqwest::Client::new();
        let discovery: Value = http
            .get(format!("{}/.well-known/openid-configuration", issuer.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], issuer.url());
        assert_eq!(discovery["token_endpoint"], format!("{}/token", issuer.url()));
        let jwks: Value = http.get(discovery["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        assert_eq!(jwks["keys"][0]["kid"], issuer.tokens().key().kid());

        let response = http
            .post(format!("{}/token", issuer.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("sub=cust-grace&scope=shop%2Fstaff&expires_in=60&grant_type=ignored")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let minted: Value = response.json().await.unwrap();
        assert_eq!((minted["token_type"].as_str(), minted["expires_in"].as_u64()), (Some("Bearer"), Some(60)));
        let claims = claims_of(minted["access_token"].as_str().unwrap(), &issuer.tokens());
        assert_eq!((claims["sub"].as_str(), claims["scope"].as_str()), (Some("cust-grace"), Some("shop/staff")));
        issuer.stop().await;
    }

    #[tokio::test]
    async fn given_a_bad_token_request_then_the_endpoint_answers_rfc_6749_errors() {
        let issuer = Issuer::start_with(key()).await.unwrap();
        let http = reqwest::Client::new();
        let ask = |content_type: &'static str, body: &'static str| {
            http.post(format!("{}/token", issuer.url())).header("content-type", content_type).body(body).send()
        };
        let form = "application/x-www-form-urlencoded";
        for (content_type, body, error) in [
            (form, "scope=shop%2Fstaff", "invalid_request"),
            (form, "sub=a%23b", "invalid_request"),
            (form, "sub=cust-ada&sub=staff-sam", "invalid_request"),
            (form, "sub=cust-ada&expires_in=soon", "invalid_request"),
            (form, "sub=cust-ada&scope=a%20%20b", "invalid_scope"),
            ("application/json", r#"{"sub":"cust-ada"}"#, "invalid_request"),
        ] {
            let response = ask(content_type, body).await.unwrap();
            assert_eq!(response.status(), 400, "{body}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["error"], error, "{body}: {answer}");
        }
        issuer.stop().await;
    }
}
