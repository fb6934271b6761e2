"""Least privilege, checked: each function's role allows exactly the AWS calls its code makes.

template.yaml is expanded with the SAM translator (as tools/localstack.py does, and as `sam
deploy` does in AWS), and the Allow statements of the IAM role each function runs with are
reduced to (action, resource) pairs, every Ref / GetAtt / Sub resolved to the logical ID it
names:

    !GetAtt OrdersTable.Arn                     -> "OrdersTable"
    !Sub "${OutboxTable.Arn}/index/pending"     -> "OutboxTable/index/pending"
    !GetAtt OrdersTable.StreamArn               -> "OrdersTable.StreamArn"
    !GetAtt EmailDeadLetterQueue.Arn            -> "EmailDeadLetterQueue"

and compared with MANIFEST below: for every function, the calls its code makes, each with the
code that makes it. So the test fails when a role gains an action its code does not call, and
when code gains a call its role does not allow. moto enforces no IAM, so without this a role
that is too narrow passes every local test and fails only in AWS: keep MANIFEST exact.

How the code's calls map to IAM actions (DynamoDB authorises per action, not per API):
- TransactWriteItems is no action of its own: each Put / Update / Delete / ConditionCheck in it
  is authorised as PutItem / UpdateItem / DeleteItem / ConditionCheckItem on its table;
- BatchWriteItem and BatchGetItem are actions of their own (not PutItem / GetItem);
- a Query on an index needs the index's ARN (`<table>/index/<name>`), not the table's;
- options change nothing: GetItem with ConsistentRead is GetItem, UpdateItem with ReturnValues
  is UpdateItem, a conditional PutItem returning the old item on failure is PutItem;
- SES v2 SendEmail (any content type) is ses:SendEmail;
- an event source mapping polls with the function's role: for an SQS queue, sqs:ReceiveMessage,
  sqs:DeleteMessage and sqs:GetQueueAttributes on the queue (Lambda Developer Guide, "Using
  Lambda with Amazon SQS", Execution role permissions; no ChangeMessageVisibility, and no
  kms:Decrypt for a queue encrypted with SSE-SQS). The consumers' mappings are declared
  explicitly (`<Function>OrderEvents`), not as SAM `SQS` events, whose managed policy
  AWSLambdaSQSQueueExecutionRole allows those actions on every queue of the account.

When the code changes, change the role in template.yaml and MANIFEST together.

    .venv/bin/python -m pytest tools/test_iam.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localstack  # noqa: E402

ROOT = localstack.ROOT

# The AWS managed policy SAM attaches to every function's role. It allows its actions on
# Resource "*"; it is SAM's, not ours, and named here so that no other managed policy slips in.
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
"""CloudWatch Logs: CreateLogGroup, CreateLogStream, PutLogEvents (every function)."""
SQS_POLLER = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
"""What SAM would add for an `SQS` event source: the Lambda poller's ReceiveMessage,
DeleteMessage and GetQueueAttributes (and the logs actions again), on any queue of the account.
No role may have it: each consumer's mapping is explicit and its role allows its own queue."""

# What Lambda's poller does on the queue of an SQS event source mapping, with the function's role.
POLL_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")

SES_IDENTITIES = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"

# Shared code, named once.
IDEMPOTENCY = "shared/src/adapters/dynamodb/idempotency.rs"
ORDERS = "shared/src/adapters/dynamodb/orders.rs"
OUTBOX = "shared/src/adapters/dynamodb/outbox.rs"
LEDGER = "shared/src/adapters/dynamodb/sandbox_ledger.rs"
PROCESSED = "shared/src/adapters/dynamodb/processed.rs"
RECORDS = "shared/src/adapters/dynamodb/order_records.rs"
DEAD_LETTERS = "shared/src/adapters/sqs.rs: SqsDeadLetters::send, from shared/src/consumer.rs (permanent, poison)"
PUBLISH = "shared/src/adapters/eventbridge.rs: EventBridgePublisher::put, through shared/src/publishing.rs"


def idempotency() -> dict[tuple[str, str], str]:
    """The Idempotency-Key records of the HTTP commands (functions/checkout/src/idempotency.rs)."""
    return {
        ("dynamodb:PutItem", "IdempotencyTable"):
            f"{IDEMPOTENCY}: claim, a conditional put (the old item returned on failure)",
        ("dynamodb:UpdateItem", "IdempotencyTable"): f"{IDEMPOTENCY}: take_over of a lapsed lease, complete",
        ("dynamodb:DeleteItem", "IdempotencyTable"): f"{IDEMPOTENCY}: release of a failed attempt's key",
    }


def poller(concern: str) -> dict[tuple[str, str], str]:
    """Lambda's poller of a consumer's queue, for its mapping `<Concern>FunctionOrderEvents`
    (no code of ours makes these calls; the role must allow them on this queue only)."""
    return {
        (action, f"{concern}Queue"): f"Lambda's SQS poller ({concern}FunctionOrderEvents)"
        for action in POLL_ACTIONS
    }


# Function -> {(action, resource): the code that makes the call}.
MANIFEST: dict[str, dict[tuple[str, str], str]] = {
    # functions/checkout/src/main.rs -> checkout::from_env (lib.rs): the saga's ports and the
    # idempotency store.
    "CheckoutFunction": {
        **idempotency(),  # POST /orders, POST /orders/{id}/cancel
        ("dynamodb:Query", "OrdersTable"):
            f"{ORDERS}: history (load, GET /orders/{{id}}, /events), strongly consistent",
        ("dynamodb:PutItem", "OrdersTable"):
            f"{ORDERS}: commit's TransactWriteItems Put of the event, and of the open-order marker (saga starts)",
        ("dynamodb:DeleteItem", "OrdersTable"):
            f"{ORDERS}: commit's TransactWriteItems Delete of the open-order marker (open_marker, saga ends)",
        ("dynamodb:BatchGetItem", "ProductsTable"):
            "shared/src/adapters/dynamodb/catalogue.rs: products -> batch_get_skus (prices)",
        ("dynamodb:UpdateItem", "ProductsTable"):
            f"{ORDERS}: commit's TransactWriteItems Update reserving / releasing stock (stock_update)",
        ("dynamodb:PutItem", "OutboxTable"):
            f"{ORDERS}: commit's TransactWriteItems Put of the outbox entry (outbox_put)",
        ("dynamodb:BatchWriteItem", "OutboxTable"): f"{OUTBOX}: clear -> batch_write (deletes), after journal::publish",
        ("dynamodb:PutItem", "SandboxPaymentsTable"):
            f"{LEDGER}: record, the sandbox gateway's charge / void / refund decision",
        ("events:PutEvents", "OrderEventsBus"): f"{PUBLISH}: order.placed, order.cancelled, payment.refunded",
    },
    # functions/checkout/src/bin/fulfilment.rs -> Fulfilment::from_env: ship and deliver only
    # (Shipped and Delivered neither start nor end a saga: no marker, no stock).
    "FulfilmentFunction": {
        **idempotency(),  # POST /orders/{id}/shipments, POST /orders/{id}/delivery
        ("dynamodb:Query", "OrdersTable"): f"{ORDERS}: history (load before a command)",
        ("dynamodb:PutItem", "OrdersTable"): f"{ORDERS}: commit's TransactWriteItems Put of Shipped / Delivered",
        ("dynamodb:PutItem", "OutboxTable"): f"{ORDERS}: commit's TransactWriteItems Put of the outbox entry",
        ("dynamodb:BatchWriteItem", "OutboxTable"): f"{OUTBOX}: clear -> batch_write (deletes)",
        ("events:PutEvents", "OrderEventsBus"): f"{PUBLISH}: order.shipped, order.delivered",
    },
    # functions/sweeper/src/lib.rs: the checkout's ports (checkout::ports_from_env) used by
    # Saga::settle and refund::finish; never the catalogue.
    "SweeperFunction": {
        ("dynamodb:Query", "OrdersTable/index/OpenOrders"):
            f"{ORDERS}: open_before -> ShardedIndex::oldest_before (OPEN_ORDERS)",
        ("dynamodb:Query", "OrdersTable"): f"{ORDERS}: history of each open order",
        ("dynamodb:PutItem", "OrdersTable"):
            f"{ORDERS}: commit's TransactWriteItems Put of PaymentCaptured / Cancelled / Refunded",
        ("dynamodb:DeleteItem", "OrdersTable"):
            f"{ORDERS}: commit's TransactWriteItems Delete of the open-order marker (saga ends)",
        ("dynamodb:UpdateItem", "ProductsTable"):
            f"{ORDERS}: commit's TransactWriteItems Update releasing stock (Saga::cancel)",
        ("dynamodb:PutItem", "OutboxTable"): f"{ORDERS}: commit's TransactWriteItems Put of the outbox entry",
        ("dynamodb:BatchWriteItem", "OutboxTable"): f"{OUTBOX}: clear -> batch_write (deletes)",
        ("dynamodb:PutItem", "SandboxPaymentsTable"): f"{LEDGER}: record (void, refund, asking what was charged)",
        ("events:PutEvents", "OrderEventsBus"): f"{PUBLISH}: order.placed, payment.refunded",
    },
    # functions/outbox-relay/src/lib.rs: Relay (DynamoOutbox, EventBridgePublisher).
    "OutboxRelayFunction": {
        ("dynamodb:Query", "OutboxTable/index/pending"): f"{OUTBOX}: pending -> ShardedIndex::oldest_before (PENDING)",
        ("dynamodb:BatchWriteItem", "OutboxTable"): f"{OUTBOX}: clear -> batch_write (deletes)",
        ("events:PutEvents", "OrderEventsBus"): f"{PUBLISH}: every stranded entry",
    },
    # functions/recommendations/src/bin/recommendations-api.rs -> DynamoBoughtWith.
    "RecommendationsApiFunction": {
        ("dynamodb:Query", "RecommendationsTable"):
            "functions/recommendations/src/dynamo.rs: DynamoBoughtWith::bought_with",
    },
    # functions/order-views/src/bin/order-projector.rs -> Projector (DynamoViews, DynamoShop),
    # and the event source mapping OrderProjectorStream, which runs with the function's role.
    "OrderProjectorFunction": {
        ("dynamodb:Query", "OrdersTable"): f"{ORDERS}: history, to catch up over a gap (projector.rs)",
        ("dynamodb:GetItem", "OrderViewsTable"):
            "functions/order-views/src/dynamo.rs: DynamoViews::get, strongly consistent",
        ("dynamodb:PutItem", "OrderViewsTable"):
            "functions/order-views/src/dynamo.rs: DynamoViews::put_if, conditional on the version",
        ("dynamodb:DescribeStream", "OrdersTable.StreamArn"): "Lambda's stream poller (OrderProjectorStream)",
        ("dynamodb:GetRecords", "OrdersTable.StreamArn"): "Lambda's stream poller (OrderProjectorStream)",
        ("dynamodb:GetShardIterator", "OrdersTable.StreamArn"): "Lambda's stream poller (OrderProjectorStream)",
        ("dynamodb:ListStreams", "*"): "Lambda's stream poller (OrderProjectorStream); see WILDCARD_RESOURCES",
        ("sqs:SendMessage", "OrderProjectorFailureQueue"): "Lambda's on-failure destination of OrderProjectorStream",
    },
    # functions/order-views/src/bin/order-views-api.rs -> DynamoViews as CustomerViews.
    "OrderViewsApiFunction": {
        ("dynamodb:Query", "OrderViewsTable/index/ByCustomer"):
            "functions/order-views/src/dynamo.rs: DynamoViews::page (BY_CUSTOMER)",
    },
    # The consumers: Lambda's poller of the consumer's own queue, and
    # shared::consumer::serve (dead letters) around each crate's Consumer.
    "EmailFunction": {
        **poller("Email"),
        ("sqs:SendMessage", "EmailDeadLetterQueue"): DEAD_LETTERS,
        ("dynamodb:GetItem", "ProcessedEventsTable"):
            f"{RECORDS}: load, strongly consistent (out_of_order::once_in_order)",
        ("dynamodb:PutItem", "ProcessedEventsTable"):
            f"{RECORDS}: DynamoOrderRecords::save, conditional on the revision (lease, stage, release)",
        ("dynamodb:GetItem", "CustomersTable"): "functions/email/src/dynamo.rs: DynamoCustomers::find",
        ("ses:SendEmail", SES_IDENTITIES):
            "functions/email/src/ses.rs: SesMailer::send, SES v2 SendEmail with simple content",
    },
    "InventoryFunction": {
        **poller("Inventory"),
        ("sqs:SendMessage", "InventoryDeadLetterQueue"): DEAD_LETTERS,
        ("dynamodb:GetItem", "ProcessedEventsTable"):
            f"{RECORDS}: load, via functions/inventory/src/dynamo.rs DynamoStock::record",
        ("dynamodb:PutItem", "ProcessedEventsTable"):
            f"{RECORDS}: record_put, first action of DynamoStock::apply's TransactWriteItems",
        ("dynamodb:BatchGetItem", "ProductsTable"):
            "functions/inventory/src/dynamo.rs: DynamoStock::levels -> batch_get_skus (consistent)",
        ("dynamodb:UpdateItem", "ProductsTable"):
            "functions/inventory/src/dynamo.rs: movement, TransactWriteItems Update in DynamoStock::apply",
        ("events:PutEvents", "OrderEventsBus"):
            f"{PUBLISH}: inventory.low-stock (functions/inventory/src/lib.rs, warn_of_low_stock)",
    },
    "AnalyticsFunction": {
        **poller("Analytics"),
        ("sqs:SendMessage", "AnalyticsDeadLetterQueue"): DEAD_LETTERS,
        ("dynamodb:PutItem", "ProcessedEventsTable"):
            f"{PROCESSED}: marker_put, first action of transact_once (functions/analytics/src/dynamo.rs)",
        ("dynamodb:UpdateItem", "AnalyticsTable"):
            "functions/analytics/src/dynamo.rs: DynamoCounters::add, TransactWriteItems Updates (ADD)",
    },
    "LoyaltyFunction": {
        **poller("Loyalty"),
        ("sqs:SendMessage", "LoyaltyDeadLetterQueue"): DEAD_LETTERS,
        ("dynamodb:GetItem", "ProcessedEventsTable"):
            f"{RECORDS}: load, via functions/loyalty/src/dynamo.rs DynamoLedger::record",
        ("dynamodb:PutItem", "ProcessedEventsTable"):
            f"{RECORDS}: record_put, first action of DynamoLedger::apply's TransactWriteItems",
        ("dynamodb:UpdateItem", "LoyaltyTable"):
            "functions/loyalty/src/dynamo.rs: credit / reverse, TransactWriteItems Update of the balance",
        ("dynamodb:PutItem", "LoyaltyTable"):
            "functions/loyalty/src/dynamo.rs: credit, TransactWriteItems Put of the ledger line",
        ("dynamodb:DeleteItem", "LoyaltyTable"):
            "functions/loyalty/src/dynamo.rs: reverse, TransactWriteItems Delete of the ledger line",
    },
    "RecommendationsFunction": {
        **poller("Recommendations"),
        ("sqs:SendMessage", "RecommendationsDeadLetterQueue"): DEAD_LETTERS,
        ("dynamodb:PutItem", "ProcessedEventsTable"):
            f"{PROCESSED}: marker_put, first action of transact_once (functions/recommendations/src/dynamo.rs)",
        ("dynamodb:UpdateItem", "RecommendationsTable"):
            "functions/recommendations/src/dynamo.rs: DynamoCoPurchases::increment, TransactWriteItems Updates (ADD)",
    },
    # Cognito's pre-token-generation trigger (Condition: UseCognito): it only answers Cognito
    # with the claims to add and calls no AWS API.
    "StaffScopeFunction": {},
}

# The SQS-fed consumers: each polls its own queue only, and touches its own markers only.
CONSUMERS = {
    "EmailFunction": "email",
    "InventoryFunction": "inventory",
    "AnalyticsFunction": "analytics",
    "LoyaltyFunction": "loyalty",
    "RecommendationsFunction": "recommendations",
}


def leading_keys(consumer: str) -> dict:
    """The partition key of every item the request touches starts with `<consumer>#`: its
    markers `<consumer>#<eventId>` and its order records `<consumer>#ORDER#<orderId>`."""
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{consumer}#*"]}}


# (function, resource) -> the condition on every grant of that function on that resource.
# Every other grant carries no condition.
CONDITIONS: dict[tuple[str, str], dict] = {
    **{(function, "ProcessedEventsTable"): leading_keys(name) for function, name in CONSUMERS.items()},
    ("EmailFunction", SES_IDENTITIES): {"StringEquals": {"ses:FromAddress": "!Ref SenderEmail"}},
}

# The only grants on a resource with a wildcard, and why.
WILDCARD_RESOURCES: dict[tuple[str, str, str], str] = {
    ("OrderProjectorFunction", "dynamodb:ListStreams", "*"): (
        "ListStreams names no resource, so IAM can grant it on '*' only; Lambda's DynamoDB stream "
        "event source requires it (with DescribeStream, GetRecords, GetShardIterator, which are on "
        "the one stream). It lists stream ARNs, never their records."
    ),
    ("EmailFunction", "ses:SendEmail", SES_IDENTITIES): (
        "SES authorises a send against the identity that verifies the sender, which is the address "
        "or its domain, and in the sandbox against each recipient's identity too: an ARN of the "
        "sender's address alone fails in both cases. The ses:FromAddress condition (CONDITIONS) "
        "pins the From address to SenderEmail."
    ),
}

# The managed policies SAM attaches to each role: BASIC only (never SQS_POLLER).
MANAGED = {function: [BASIC] for function in MANIFEST}


# ----------------------------------------------------------------------------------------------
# Reading the expanded template
# ----------------------------------------------------------------------------------------------

def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def resolve(node: Any) -> str:
    """A resource (or condition value) as a comparable string: logical IDs for Ref / GetAtt /
    Sub of resources, pseudo parameters left as `${AWS::...}`."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            return f"!Ref {value}"
        if key == "Fn::GetAtt":
            logical, attribute = value if isinstance(value, list) else value.split(".", 1)
            return logical if attribute == "Arn" else f"{logical}.{attribute}"
        if key == "Fn::Sub":
            text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})

            def substitute(match: re.Match) -> str:
                name = match.group(1)
                if name in variables:
                    return resolve(variables[name])
                if name.startswith("AWS::"):
                    return match.group(0)
                logical, _, attribute = name.partition(".")
                if not attribute:
                    return f"${{!Ref {logical}}}"
                return logical if attribute == "Arn" else f"{logical}.{attribute}"

            return re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)
    raise AssertionError(f"cannot resolve {json.dumps(node)}: give the resource as !GetAtt X.Arn or !Sub")


def resolve_condition(condition: Any) -> Any:
    if isinstance(condition, dict):
        if len(condition) == 1 and next(iter(condition)) in ("Ref", "Fn::GetAtt", "Fn::Sub"):
            return resolve(condition)
        return {key: resolve_condition(value) for key, value in condition.items()}
    if isinstance(condition, list):
        return [resolve_condition(value) for value in condition]
    return condition


def functions(template: dict) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def role_of(expanded: dict, function: str) -> dict:
    """The AWS::IAM::Role the function runs with (its Role property), as SAM generated it."""
    role = expanded["Resources"][function]["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function} names a role outside the template: {role}"
    logical = resolve(role)
    assert expanded["Resources"][logical]["Type"] == "AWS::IAM::Role", logical
    return expanded["Resources"][logical]


def statements(role: dict) -> list[dict]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return found


def grants(expanded: dict, function: str) -> dict[tuple[str, str], list[Any]]:
    """(action, resource) -> the conditions of the statements that allow it (None: none)."""
    found: dict[tuple[str, str], list[Any]] = {}
    for statement in statements(role_of(expanded, function)):
        assert statement["Effect"] == "Allow", f"{function}: only Allow statements are expected: {statement}"
        assert "NotAction" not in statement and "NotResource" not in statement, f"{function}: {statement}"
        condition = resolve_condition(statement.get("Condition"))
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                found.setdefault((action, resolve(resource)), []).append(condition)
    return found


# ----------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------

def test_every_function_is_in_the_manifest(template):
    assert set(functions(template)) == set(MANIFEST), (
        "every AWS::Serverless::Function needs a MANIFEST entry (the AWS calls its code makes), and "
        "every entry a function"
    )


@pytest.mark.parametrize("function", sorted(MANIFEST))
def test_each_role_allows_exactly_the_calls_its_code_makes(expanded, function):
    granted = set(grants(expanded, function))
    expected = set(MANIFEST[function])
    unused = sorted(granted - expected)
    missing = sorted(expected - granted)
    assert not unused, f"{function} is allowed calls its code does not make: {unused}"
    assert not missing, f"{function}'s code makes calls its role does not allow: {missing}"


@pytest.mark.parametrize("function", sorted(MANIFEST))
def test_managed_policies_are_only_the_ones_sam_adds(expanded, function):
    assert role_of(expanded, function)["Properties"].get("ManagedPolicyArns", []) == MANAGED[function]


def test_no_role_gets_statements_from_elsewhere(expanded):
    """Statements attached to a function's role from another resource would escape these checks."""
    roles = {resolve(expanded["Resources"][function]["Properties"]["Role"]) for function in MANIFEST}
    for lid, resource in expanded["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            assert not localstack.references(resource) & roles, f"{lid} attaches statements to a function's role"


def test_no_action_is_a_wildcard(expanded):
    for lid, resource in expanded["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in statements(resource):
            for action in as_list(statement.get("Action", [])):
                assert "*" not in action, f"{lid} allows the wildcard action {action!r}"


def test_no_resource_is_a_wildcard_but_the_listed_ones(expanded):
    found = {
        (function, action, resource)
        for function in MANIFEST
        for action, resource in grants(expanded, function)
        if "*" in resource
    }
    assert found == set(WILDCARD_RESOURCES), (
        f"grants on a wildcard resource: {sorted(found)}; allowed, with their reasons: {sorted(WILDCARD_RESOURCES)}"
    )


@pytest.mark.parametrize("function", sorted(MANIFEST))
def test_conditions_are_exactly_the_listed_ones(expanded, function):
    for (action, resource), conditions in grants(expanded, function).items():
        expected = CONDITIONS.get((function, resource))
        # Every statement that allows the pair carries it: one without would allow it unconditionally.
        assert conditions == [expected] * len(conditions), f"{function} {action} on {resource}: {conditions}"


@pytest.mark.parametrize("function", sorted(CONSUMERS))
def test_each_consumer_touches_only_its_own_markers(expanded, function):
    on_markers = {a: c for (a, r), c in grants(expanded, function).items() if r == "ProcessedEventsTable"}
    writes = {a for a in on_markers if a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")}
    assert writes, f"{function} writes its markers"
    for action, conditions in on_markers.items():
        assert conditions == [leading_keys(CONSUMERS[function])], (function, action, conditions)
    # Nothing that reads or writes without naming a key (the condition would not hold it).
    assert not set(on_markers) & {"dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem"}


def queue_of(function: str) -> str:
    """The consumer's own queue: `EmailFunction` -> `EmailQueue`."""
    return function.removesuffix("Function") + "Queue"


def mappings_of(expanded: dict, function: str) -> dict[str, dict]:
    return {
        lid: resource for lid, resource in expanded["Resources"].items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and localstack._function_ref(resource["Properties"]["FunctionName"]) == function
    }


@pytest.mark.parametrize("function", sorted(CONSUMERS))
def test_each_consumer_polls_only_its_own_queue(template, expanded, function):
    queue = queue_of(function)
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    # Its one event source is an explicit mapping of its own queue, not a SAM `SQS` event (SAM
    # would attach SQS_POLLER, on every queue), created once the role allows the poller.
    events = template["Resources"][function]["Properties"].get("Events", {})
    assert not [name for name, event in events.items() if event["Type"] == "SQS"], (
        f"{function} declares a SAM SQS event: SAM adds AWSLambdaSQSQueueExecutionRole (any queue)"
    )
    (lid, mapping), = mappings_of(expanded, function).items()
    assert resolve(mapping["Properties"]["EventSourceArn"]) == queue, (lid, mapping["Properties"]["EventSourceArn"])
    role = resolve(expanded["Resources"][function]["Properties"]["Role"])
    assert role in localstack._depends_on(mapping), f"{lid} must wait for {role} (Lambda checks it on creation)"
    # Its role lets the poller receive, delete and read the attributes of that queue, and no other.
    polled = {(a, r) for (a, r) in grants(expanded, function) if a in POLL_ACTIONS}
    assert polled == {(action, queue) for action in POLL_ACTIONS}, polled
    assert SQS_POLLER not in role_of(expanded, function)["Properties"].get("ManagedPolicyArns", [])


def test_no_role_may_poll_a_queue_but_its_consumers_own(expanded):
    polled = {
        (function, action, resource)
        for function in MANIFEST
        for action, resource in grants(expanded, function)
        if action in POLL_ACTIONS or action in ("sqs:*", "sqs:ChangeMessageVisibility")
    }
    expected = {(c, action, queue_of(c)) for c in CONSUMERS for action in POLL_ACTIONS}
    assert polled == expected, f"pollers beyond each consumer's own queue: {sorted(polled - expected)}"
    for lid, resource in expanded["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            assert SQS_POLLER not in resource["Properties"].get("ManagedPolicyArns", []), lid


def test_the_marker_prefixes_are_the_names_the_consumers_use_at_runtime(template):
    """The prefix in each condition is the consumer's `Consumer::NAME`, which starts both of its
    keys in ProcessedEventsTable, and those keys are the table's partition key."""
    for function, name in CONSUMERS.items():
        crate = ROOT / "functions" / name / "src" / "lib.rs"
        declared = re.findall(r'const NAME: &\'static str = "([^"]+)";', crate.read_text())
        assert declared == [name], f"{crate}: Consumer::NAME is {declared}, the condition of {function} says {name}"
    ports = (ROOT / "shared/src/ports.rs").read_text()
    assert 'format!("{}#{}", self.consumer, self.event_id)' in ports, "Marker::key is <consumer>#<eventId>"
    out_of_order = (ROOT / "shared/src/out_of_order.rs").read_text()
    assert 'format!("{consumer}#ORDER#{order_id}")' in out_of_order, "record_key is <consumer>#ORDER#<orderId>"
    table = template["Resources"]["ProcessedEventsTable"]["Properties"]
    assert [k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH"] == ["id"]
    assert '.item("id", s(marker.key()))' in (ROOT / PROCESSED).read_text()
    records = (ROOT / RECORDS).read_text()
    assert '.item("id", s(record.key()))' in records and '.key("id", s(record_key(consumer, order_id)))' in records


def test_the_email_function_sends_only_from_the_configured_sender(expanded):
    ses = {(a, r): c for (a, r), c in grants(expanded, "EmailFunction").items() if a.startswith("ses:")}
    # SES v2 SendEmail covers every content type; nothing calls SendRawEmail.
    assert ses == {("ses:SendEmail", SES_IDENTITIES): [{"StringEquals": {"ses:FromAddress": "!Ref SenderEmail"}}]}
    assert "ses:SendRawEmail" not in json.dumps(expanded["Resources"]["EmailFunctionRole"])
    # The only SES call, from the configured sender (SENDER_EMAIL = !Ref SenderEmail).
    source = "".join(path.read_text() for path in sorted((ROOT / "functions/email/src").rglob("*.rs")))
    assert set(re.findall(r"\.(send_\w+)\(\)", source)) == {"send_email"}
    assert ".from_email_address(&self.from)" in source and 'from: env.get("SENDER_EMAIL")?' in source


def test_every_resource_named_exists_with_its_index(template):
    """A misspelt table or index would be an AccessDenied in AWS only (moto checks no IAM)."""
    resources = template["Resources"]
    for function, calls in MANIFEST.items():
        for action, resource in calls:
            if resource == "*" or resource.startswith("arn:"):
                continue
            logical, _, index = resource.partition("/index/")
            logical = logical.split(".")[0]
            assert logical in resources, f"{function}: {resource} is not in template.yaml"
            kind = resources[logical]["Type"]
            service = action.split(":")[0]
            assert kind == {"dynamodb": "AWS::DynamoDB::Table", "sqs": "AWS::SQS::Queue",
                            "events": "AWS::Events::EventBus"}[service], (function, action, resource, kind)
            if index:
                indexes = [i["IndexName"] for i in resources[logical]["Properties"].get("GlobalSecondaryIndexes", [])]
                assert index in indexes, f"{function}: {logical} has no index {index}"
                path, declaration = INDEXES_IN_CODE[resource]
                assert declaration in (ROOT / path).read_text(), f"{path} queries {resource} as {declaration}"


# The index names the code queries, where it names them.
INDEXES_IN_CODE = {
    "OrdersTable/index/OpenOrders": (ORDERS, 'name: "OpenOrders"'),
    "OutboxTable/index/pending": (OUTBOX, 'name: "pending"'),
    "OrderViewsTable/index/ByCustomer": ("functions/order-views/src/dynamo.rs", 'BY_CUSTOMER: &str = "ByCustomer"'),
}
