//! Cognito's pre-token-generation trigger (event version V2_0): a member of the staff group
//! gets the staff scope in their access token; nobody else gets anything.
//!
//! Why a trigger: API Gateway's JWT authorizer checks a route's scopes against the token's
//! `scope` claim and cannot look at `cognito:groups`, so group membership has to become a
//! scope where the token is made. Membership is read at every sign-in and token refresh, so
//! removing someone from the group takes their staff access away within one access-token
//! lifetime (60 minutes, `ShopUserPoolClient`).

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreTokenGenV2;
use serde_json::{json, Value};
use shared::config::Env;

/// The group and the scope it grants (`STAFF_GROUP`, `STAFF_SCOPE` from the template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRule {
    pub group: String,
    pub scope: String,
}

impl StaffRule {
    pub fn from_env(env: &Env) -> StaffRule {
        StaffRule {
            group: env.get_or("STAFF_GROUP", "staff"),
            scope: env.get_or("STAFF_SCOPE", shared::auth::DEFAULT_STAFF_SCOPE),
        }
    }

    /// The scopes to add for a user in `groups`.
    pub fn scopes_for(&self, groups: &[String]) -> Vec<String> {
        if groups.contains(&self.group) {
            vec![self.scope.clone()]
        } else {
            Vec::new()
        }
    }
}

/// The trigger's answer: the event Cognito sent, with `response` saying what to add.
///
/// Only `accessTokenGeneration.scopesToAdd` is set, and only for staff: every other override
/// (groups, claims, the ID token) is left out, because Cognito applies an override that is
/// present even when it is empty (an empty `groupsToOverride` would strip the user's groups).
pub fn answer(rule: &StaffRule, mut event: Value) -> Result<Value, serde_json::Error> {
    let parsed: CognitoEventUserPoolsPreTokenGenV2 = serde_json::from_value(event.clone())?;
    let scopes = rule.scopes_for(&parsed.request.group_configuration.groups_to_override);
    if !scopes.is_empty() {
        tracing::info!(scopes = ?scopes, "staff scope added to the access token");
        event["response"] =
            json!({"claimsAndScopeOverrideDetails": {"accessTokenGeneration": {"scopesToAdd": scopes}}});
    }
    Ok(event)
}
