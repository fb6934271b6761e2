//! The pre-token-generation trigger, from the sample event Cognito sends (events/).

use serde_json::{json, Value};
use staff_scope::{answer, StaffRule};

fn sample() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/staff-scope-pre-token.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rule() -> StaffRule {
    StaffRule { group: "staff".into(), scope: "shop/staff".into() }
}

#[test]
fn given_a_member_of_the_staff_group_when_a_token_is_made_then_its_access_token_gets_the_staff_scope() {
    let answered = answer(&rule(), sample()).unwrap();
    let added = &answered["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["scopesToAdd"];
    assert_eq!(added, &json!(["shop/staff"]));
}

#[test]
fn given_a_staff_member_then_nothing_else_is_overridden_so_their_groups_stay() {
    let answered = answer(&rule(), sample()).unwrap();
    let details = answered["response"]["claimsAndScopeOverrideDetails"].as_object().unwrap();
    assert_eq!(details.keys().collect::<Vec<_>>(), ["accessTokenGeneration"], "no groupOverrideDetails, no ID token");
    assert_eq!(answered["request"], sample()["request"], "the rest of the event goes back as it came");
}

#[test]
fn given_a_customer_in_no_group_or_another_group_then_the_token_is_left_as_it_is() {
    for groups in [json!([]), json!(["staffing"]), json!(["customers"])] {
        let mut event = sample();
        event["request"]["groupConfiguration"]["groupsToOverride"] = groups.clone();
        assert_eq!(answer(&rule(), event.clone()).unwrap(), event, "{groups}");
    }
}

#[test]
fn given_a_malformed_event_then_the_trigger_fails_and_cognito_issues_no_token() {
    let mut event = sample();
    event["request"]["groupConfiguration"]["groupsToOverride"] = json!("staff");
    assert!(answer(&rule(), event).is_err());
}
