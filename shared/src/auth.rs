//! Who is calling, as API Gateway's JWT authorizer verified it: the functions never check a
//! token themselves (the authorizer did, before invoking them) and never take an identity
//! from the request. The caller is the token's subject; staff are the callers whose token
//! carries the staff scope. A request that reaches a function without verified claims (a
//! route deployed without the authorizer, a hand-made event) is refused, not trusted.

use crate::config::Env;
use crate::domain::CustomerId;
use crate::http::{Problem, Reply};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::collections::HashMap;

/// The template's `StaffScope` default, for a function whose environment does not name one.
pub const DEFAULT_STAFF_SCOPE: &str = "shop/staff";
/// Cognito subjects are 36-character UUIDs, Auth0's `provider|id`; 128 is room for any.
pub const MAX_SUBJECT_LEN: usize = 128;

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: the customer the request acts for.
    pub subject: CustomerId,
    /// Whether the token carries the staff scope.
    pub staff: bool,
}

impl Caller {
    /// Whether the caller may see what belongs to `owner`: their own, or anyone's if staff.
    pub fn may_see(&self, owner: &CustomerId) -> bool {
        self.staff || self.owns(owner)
    }

    /// Whether `owner` is the caller: only owners act on their own orders.
    pub fn owns(&self, owner: &CustomerId) -> bool {
        self.subject == *owner
    }
}

/// Why a request has no usable caller; both are answered 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("the request carries no verified token claims")]
    NoClaims,
    #[error("the token's subject is not a usable customer ID")]
    BadSubject,
}

/// A subject becomes a key part and a log field: 1 to 128 characters from a set no key
/// separator (`#`, `:`), control character or bidirectional override is in.
pub fn valid_subject(subject: &str) -> bool {
    (1..=MAX_SUBJECT_LEN).contains(&subject.len())
        && subject.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@|+-".contains(&b))
}

/// How a function recognises its callers: the verified claims, and which scope makes staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub staff_scope: String,
}

impl Default for Access {
    fn default() -> Self {
        Access { staff_scope: DEFAULT_STAFF_SCOPE.to_owned() }
    }
}

impl Access {
    /// `STAFF_SCOPE` from the environment (the template passes its `StaffScope`).
    pub fn from_env(env: &Env) -> Access {
        Access { staff_scope: env.get_or("STAFF_SCOPE", DEFAULT_STAFF_SCOPE) }
    }

    /// The caller from the claims the authorizer verified (`sub`, and `scope`: space-separated).
    pub fn caller_of(&self, claims: &HashMap<String, String>) -> Result<Caller, Unauthenticated> {
        let subject = claims.get("sub").ok_or(Unauthenticated::NoClaims)?;
        if !valid_subject(subject) {
            return Err(Unauthenticated::BadSubject);
        }
        let staff = claims.get("scope").is_some_and(|s| s.split(' ').any(|scope| scope == self.staff_scope));
        Ok(Caller { subject: CustomerId(subject.clone()), staff })
    }

    /// The request's caller, or the 401 to answer.
    pub fn caller(&self, req: &Request) -> Result<Caller, Reply> {
        let claims = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
            _ => None,
        };
        let result = claims.ok_or(Unauthenticated::NoClaims).and_then(|jwt| self.caller_of(&jwt.claims));
        result.map_err(|why| {
            // The subject itself is not logged: it may be anything a token issuer allows.
            tracing::warn!(reason = %why, "request refused: no usable caller");
            unauthenticated(&why)
        })
    }
}

/// 401: no verified caller.
pub fn unauthenticated(why: &Unauthenticated) -> Reply {
    Problem::new(401, "unauthenticated", "Unauthenticated", format!("Sign in and send the access token: {why}."))
        .reply()
}

/// 403: a caller who is not staff on a staff route (the authorizer's scope check is the first
/// line; this is the second, should a route ever be deployed without it).
pub fn staff_only() -> Reply {
    Problem::new(403, "staff-only", "Staff only", "This route needs a staff token.").reply()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn request_with(authorizer: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /orders/{id}", "rawPath": "/orders/1", "rawQueryString": "",
            "headers": {}, "isBase64Encoded": false,
            "requestContext": {"routeKey": "GET /orders/{id}", "stage": "$default", "timeEpoch": 0,
                "authorizer": authorizer,
                "http": {"method": "GET", "path": "/orders/1", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "x"}},
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn given_verified_claims_when_read_then_the_subject_is_the_customer() {
        let req = request_with(
            serde_json::json!({"jwt": {"claims": {"sub": "cust-ada", "scope": "openid"}, "scopes": null}}),
        );
        let caller = Access::default().caller(&req).unwrap();
        assert_eq!(caller, Caller { subject: CustomerId("cust-ada".into()), staff: false });
    }

    #[test]
    fn given_the_staff_scope_among_others_then_the_caller_is_staff() {
        let caller = Access::default().caller_of(&claims(&[("sub", "staff-sam"), ("scope", "openid shop/staff")]));
        assert!(caller.unwrap().staff);
    }

    #[test]
    fn a_scope_that_only_contains_the_staff_scope_as_text_is_not_it() {
        let caller = Access::default().caller_of(&claims(&[("sub", "x"), ("scope", "shop/staffing not-shop/staff")]));
        assert!(!caller.unwrap().staff);
    }

    #[test]
    fn the_staff_scope_is_the_one_the_environment_names() {
        let env = Env([("STAFF_SCOPE".to_owned(), "orders:fulfil".to_owned())].into());
        let access = Access::from_env(&env);
        assert!(access.caller_of(&claims(&[("sub", "x"), ("scope", "orders:fulfil")])).unwrap().staff);
        assert!(!access.caller_of(&claims(&[("sub", "x"), ("scope", "shop/staff")])).unwrap().staff);
    }

    #[test]
    fn given_no_authorizer_context_when_read_then_401() {
        let reply = Access::default().caller(&request_with(serde_json::json!(null))).unwrap_err();
        assert_eq!(reply.status, 401);
        let no_sub = request_with(serde_json::json!({"jwt": {"claims": {"scope": "shop/staff"}}}));
        assert_eq!(Access::default().caller(&no_sub).unwrap_err().status, 401);
    }

    #[test]
    fn a_subject_with_control_bidi_or_key_separator_characters_is_refused() {
        for subject in ["", "c\u{0}\u{202e}", "a#b", "a:b", "a b", &"x".repeat(MAX_SUBJECT_LEN + 1)] {
            let refused = Access::default().caller_of(&claims(&[("sub", subject)]));
            assert_eq!(refused, Err(Unauthenticated::BadSubject), "{subject:?}");
        }
        for subject in ["cust-ada", "auth0|5f7c8ec7", "0f8e3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "a.b@c.d"] {
            assert!(valid_subject(subject), "{subject:?}");
        }
    }

    #[test]
    fn staff_see_everyone_s_but_own_only_their_own() {
        let (ada, grace) = (CustomerId("cust-ada".into()), CustomerId("cust-grace".into()));
        let customer = Caller { subject: ada.clone(), staff: false };
        let staff = Caller { subject: CustomerId("staff-sam".into()), staff: true };
        assert!(customer.may_see(&ada) && !customer.may_see(&grace));
        assert!(staff.may_see(&grace) && !staff.owns(&grace));
    }
}
