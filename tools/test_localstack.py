"""The local twin of the stack, end to end against a real moto server.

Starts moto_server on a free loopback port (stopped by its PID at the end), provisions the
stack from template.yaml with tools/localstack.py, seeds it, and checks the wiring the Rust
consumers rely on: order.placed reaches all five queues, Loyalty's content filter drops a free
order, and three failed receives move a message to the dead-letter queue.

    .venv/bin/python -m pytest tools/test_localstack.py
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localstack  # noqa: E402

CONCERNS = ["Email", "Inventory", "Analytics", "Loyalty", "Recommendations"]
# As the local runner provisions the stack: its own issuer instead of a Cognito user pool (no
# server needs to answer there for provisioning).
ISSUER = "http://127.0.0.1:9/local-issuer"
LOCAL_AUTH = {"JwtIssuer": ISSUER, "JwtAudience": "shop-local"}
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
EVENTS = localstack.ROOT / "events"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    process, endpoint = localstack.start_moto(log=tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield endpoint
    finally:
        localstack.stop_moto(process)  # by PID: process.send_signal / kill on this Popen only
        assert process.poll() is not None


@pytest.fixture(scope="module")
def stack(moto, tmp_path_factory):
    out = tmp_path_factory.mktemp("stack") / "stack.json"
    localstack.provision(moto, "shop-test", out, {"Stage": "test", "AlarmEmail": "ops@example.com", **LOCAL_AUTH})
    stack_file = json.loads(out.read_text())
    localstack.seed(stack_file, json.loads((localstack.ROOT / "tools" / "seed.json").read_text()))
    return stack_file


@pytest.fixture(scope="module")
def aws(moto):
    session = localstack.session()
    return {name: session.client(name, endpoint_url=moto) for name in ("sqs", "events", "dynamodb", "cloudwatch", "ses", "sns")}


@pytest.fixture(autouse=True)
def empty_queues(request):
    """Each moto test starts with every consumer queue and DLQ empty."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack, aws = request.getfixturevalue("stack"), request.getfixturevalue("aws")
    for concern in CONCERNS:
        for key in (f"{concern}QueueUrl", f"{concern}DeadLetterQueueUrl"):
            # Drained, not purged: moto (like SQS) allows one PurgeQueue per queue per minute.
            url = stack["outputs"][key]
            while messages := aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                for message in messages:
                    aws["sqs"].delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    yield


def new_ulid() -> str:
    """A ULID-shaped ID: 48-bit milliseconds + 80 random bits in Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(alphabet[(value >> shift) & 31] for shift in range(125, -1, -5))


def order_placed(total: int, version: int = 2) -> dict:
    """An order.placed detail: v2 as the checkout publishes it now (every amount with its
    currency), or v1 as it did before (bare minor units, one currency), still delivered."""
    lines = [("MUG", 2, 1250), ("TEE", 1, 2000)]
    if version == 2:
        def money(amount: int) -> dict:
            return {"amount": amount, "currency": "EUR"}

        data = {
            "customerId": "cust-ada",
            "lines": [{"sku": sku, "quantity": q, "unitPrice": money(price)} for sku, q, price in lines],
            "total": money(total),
        }
    else:
        data = {
            "customerId": "cust-ada",
            "lines": [{"sku": sku, "quantity": q, "unitPrice": price} for sku, q, price in lines],
            "total": total,
            "currency": "EUR",
        }
    return {
        "eventId": new_ulid(),
        "type": "order.placed",
        "version": version,
        "occurredAt": "2026-01-01T12:00:00Z",
        "correlationId": f"test-{uuid.uuid4()}",
        "orderId": new_ulid(),
        "data": data,
    }


def put(aws, stack, detail: dict) -> None:
    answer = aws["events"].put_events(Entries=[{
        "EventBusName": stack["outputs"]["EventBusName"],
        "Source": "shop.checkout",
        "DetailType": "order.placed",
        "Detail": json.dumps(detail),
    }])
    assert answer["FailedEntryCount"] == 0, answer


def received(aws, queue_url: str, fail: bool = False) -> list[dict]:
    """Receives what is in a queue. A consumer that succeeded deletes its messages; one that
    `fail`s leaves them, visible again at once (visibility timeout 0), as a retry would see them."""
    kwargs = {"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "AttributeNames": ["All"]}
    if fail:
        kwargs["VisibilityTimeout"] = 0
    messages = aws["sqs"].receive_message(**kwargs).get("Messages", [])
    if not fail:
        for message in messages:
            aws["sqs"].delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


# ----------------------------------------------------------------------------------------------
# The stack file
# ----------------------------------------------------------------------------------------------

def test_the_stack_file_resolves_every_function_environment_to_physical_names(stack):
    outputs, functions = stack["outputs"], stack["functions"]
    expected_outputs = {
        "EventBusName", "EventBusArn", "ProductsTableName", "OrdersTableName", "OutboxTableName",
        "IdempotencyTableName", "ProcessedEventsTableName", "CustomersTableName", "LoyaltyTableName",
        "AnalyticsTableName", "RecommendationsTableName", "SandboxPaymentsTableName", "OpsTopicArn",
        *(f"{c}QueueUrl" for c in CONCERNS), *(f"{c}DeadLetterQueueUrl" for c in CONCERNS),
    }
    assert expected_outputs <= set(outputs)
    assert outputs["EventBusName"] == "shop-test-orders"
    assert {f: i["binary"] for f, i in functions.items()} == {
        "CheckoutFunction": "checkout", "OutboxRelayFunction": "outbox-relay",
        "RecommendationsApiFunction": "recommendations-api", "EmailFunction": "email",
        "InventoryFunction": "inventory", "AnalyticsFunction": "analytics", "LoyaltyFunction": "loyalty",
        "RecommendationsFunction": "recommendations", "SweeperFunction": "sweeper",
        "FulfilmentFunction": "fulfilment", "OrderProjectorFunction": "order-projector",
        "OrderViewsApiFunction": "order-views-api",
    }
    assert "StaffScopeFunction" not in functions, "the Cognito trigger is not in a stack with another issuer"
    checkout = functions["CheckoutFunction"]
    assert checkout["environment"] == {
        "PRODUCTS_TABLE": outputs["ProductsTableName"], "ORDERS_TABLE": outputs["OrdersTableName"],
        "OUTBOX_TABLE": outputs["OutboxTableName"], "IDEMPOTENCY_TABLE": outputs["IdempotencyTableName"],
        "EVENT_BUS_NAME": "shop-test-orders", "PAYMENT_GATEWAY": "sandbox",
        "SANDBOX_PAYMENTS_TABLE": outputs["SandboxPaymentsTableName"], "STAFF_SCOPE": "shop/staff",
    }
    assert checkout["http"] == [
        {"method": "POST", "path": "/orders"}, {"method": "GET", "path": "/orders/{id}"},
        {"method": "POST", "path": "/orders/{id}/cancel"}, {"method": "GET", "path": "/orders/{id}/events"},
    ]
    assert functions["FulfilmentFunction"]["http"] == [
        {"method": "POST", "path": "/orders/{id}/delivery"}, {"method": "POST", "path": "/orders/{id}/shipments"},
    ]
    assert functions["OrderViewsApiFunction"]["http"] == [{"method": "GET", "path": "/customers/{customerId}/orders"}]
    assert functions["OrderViewsApiFunction"]["environment"] == {
        "ORDER_VIEWS_TABLE": outputs["OrderViewsTableName"], "STAFF_SCOPE": "shop/staff"}
    # Every API function knows which scope makes staff: the one the staff routes require.
    for name in ("CheckoutFunction", "FulfilmentFunction", "OrderViewsApiFunction"):
        assert functions[name]["environment"]["STAFF_SCOPE"] == "shop/staff", name
    (stream,) = functions["OrderProjectorFunction"]["streams"]
    assert stream["streamArn"] == outputs["OrdersTableStreamArn"] and stream["tableName"] == outputs["OrdersTableName"]
    assert (stream["startingPosition"], stream["maximumRetryAttempts"], stream["bisectBatchOnFunctionError"]) == (
        "TRIM_HORIZON", 3, True)
    assert stream["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["onFailureQueueUrl"] == outputs["OrderProjectorFailureQueueUrl"]
    assert (stack["api"]["throttlingRateLimit"], stack["api"]["throttlingBurstLimit"]) == (100.0, 200.0)
    assert functions["OutboxRelayFunction"]["schedules"] == ["rate(1 minute)"]
    sweeper = functions["SweeperFunction"]
    assert sweeper["schedules"] == ["rate(1 minute)"]
    assert sweeper["environment"]["SWEEPER_GRACE_SECONDS"] == "300"
    assert sweeper["environment"]["SANDBOX_PAYMENTS_TABLE"] == outputs["SandboxPaymentsTableName"]
    assert functions["EmailFunction"]["environment"]["SENDER_EMAIL"] == "receipts@shop.example"
    for concern in CONCERNS:
        (source,) = functions[f"{concern}Function"]["sqs"]
        assert source["queueUrl"] == outputs[f"{concern}QueueUrl"]
        assert source["queueArn"].endswith(":" + outputs[f"{concern}QueueUrl"].rsplit("/", 1)[1])
        assert (source["batchSize"], source["maximumBatchingWindowInSeconds"], source["maximumConcurrency"]) == (10, 1, 5)
        assert source["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert functions[f"{concern}Function"]["environment"]["PROCESSED_EVENTS_TABLE"] == outputs["ProcessedEventsTableName"]
    for name, info in functions.items():
        assert all(isinstance(v, str) and v for v in info["environment"].values()), info["environment"]
        # The sweeper gets longer to drain a backlog; everything else the Globals' 10 s.
        assert (info["timeout"], info["memorySize"]) == (60 if name == "SweeperFunction" else 10, 256)


def test_the_api_describes_its_jwt_authorizer_and_each_routes_authorization(stack):
    api = stack["api"]
    assert api["authorizers"] == {"ShopJwt": {
        "type": "jwt", "identitySource": ["$request.header.Authorization"], "issuer": ISSUER, "audience": ["shop-local"],
    }}
    customer = {"authorizer": "ShopJwt", "authorizationScopes": []}
    staff = {"authorizer": "ShopJwt", "authorizationScopes": ["shop/staff"]}
    assert api["routes"] == {
        "POST /orders": customer, "GET /orders/{id}": customer, "GET /orders/{id}/events": customer,
        "POST /orders/{id}/cancel": customer, "GET /customers/{customerId}/orders": customer,
        "POST /orders/{id}/shipments": staff, "POST /orders/{id}/delivery": staff,
        "GET /products/{sku}/recommendations": {"authorizer": None, "authorizationScopes": []},
    }
    # Every route a function serves is described, and nothing else.
    served = {f"{r['method']} {r['path']}" for f in stack["functions"].values() for r in f["http"]}
    assert served == set(api["routes"])


def test_the_outputs_name_the_issuer_and_the_staff_scope_and_no_user_pool(stack):
    outputs = stack["outputs"]
    assert (outputs["JwtIssuerUrl"], outputs["StaffScope"]) == (ISSUER, "shop/staff")
    assert not {"UserPoolId", "UserPoolClientId"} & set(outputs)


def test_the_sweeper_finds_open_orders_through_a_keys_only_index_and_its_alarm_exists(stack, aws):
    orders = aws["dynamodb"].describe_table(TableName=stack["outputs"]["OrdersTableName"])["Table"]
    (index,) = [i for i in orders.get("GlobalSecondaryIndexes", []) if i["IndexName"] == "OpenOrders"]
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [("openShard", "HASH"), ("openedAt", "RANGE")]
    assert index["Projection"]["ProjectionType"] == "KEYS_ONLY"
    ledger = aws["dynamodb"].describe_table(TableName=stack["outputs"]["SandboxPaymentsTableName"])["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in ledger["KeySchema"]] == [("paymentKey", "HASH")]
    alarms = {a["AlarmName"]: a for a in aws["cloudwatch"].describe_alarms()["MetricAlarms"]}
    alarm = alarms["shop-test-StuckOrdersAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("Shop", "OldestOpenOrderAgeSeconds", 900)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "sweeper"}]


def test_seed_data_and_the_sender_identity_are_in_place(stack, aws):
    mug = aws["dynamodb"].get_item(TableName=stack["outputs"]["ProductsTableName"], Key={"sku": {"S": "MUG"}})["Item"]
    assert mug["unitPrice"] == {"N": "1250"} and mug["available"] == {"N": "100"} and mug["reserved"] == {"N": "0"}
    ada = aws["dynamodb"].get_item(TableName=stack["outputs"]["CustomersTableName"], Key={"customerId": {"S": "cust-ada"}})
    assert ada["Item"]["email"] == {"S": "ada@example.com"}
    assert "receipts@shop.example" in aws["ses"].list_identities()["Identities"]


def test_what_moto_cloudformation_skips_is_applied_through_the_apis(stack, aws):
    alarms = {a["AlarmName"]: a for a in aws["cloudwatch"].describe_alarms()["MetricAlarms"]}
    for concern in CONCERNS:
        alarm = alarms[f"shop-test-{concern}DeadLetterAlarm"]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
        assert alarm["AlarmActions"] == [stack["outputs"]["OpsTopicArn"]]
        policy = aws["sqs"].get_queue_attributes(QueueUrl=stack["outputs"][f"{concern}QueueUrl"], AttributeNames=["Policy"])
        statement = json.loads(policy["Attributes"]["Policy"])["Statement"][0]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert f"{concern}Rule" in statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    subscriptions = aws["sns"].list_subscriptions_by_topic(TopicArn=stack["outputs"]["OpsTopicArn"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "ops@example.com")]


# ----------------------------------------------------------------------------------------------
# The wiring
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [2, 1])
def test_order_placed_reaches_every_consumer_queue(stack, aws, version):
    detail = order_placed(total=4500, version=version)
    put(aws, stack, detail)
    for concern in CONCERNS:
        messages = received(aws, stack["outputs"][f"{concern}QueueUrl"])
        assert len(messages) == 1, f"{concern} got {len(messages)} messages"
        body = json.loads(messages[0]["Body"])
        assert (body["source"], body["detail-type"]) == ("shop.checkout", "order.placed")
        assert body["detail"] == detail


@pytest.mark.parametrize("version", [2, 1])
def test_a_free_order_is_filtered_out_of_loyalty_only(stack, aws, version):
    detail = order_placed(total=0, version=version)
    put(aws, stack, detail)
    assert received(aws, stack["outputs"]["LoyaltyQueueUrl"]) == []
    for concern in ("Email", "Inventory", "Analytics", "Recommendations"):
        messages = received(aws, stack["outputs"][f"{concern}QueueUrl"])
        assert [json.loads(m["Body"])["detail"]["eventId"] for m in messages] == [detail["eventId"]], concern


def test_three_failed_receives_move_the_message_to_the_dead_letter_queue(stack, aws):
    detail = order_placed(total=4500)
    put(aws, stack, detail)
    queue, dlq = stack["outputs"]["InventoryQueueUrl"], stack["outputs"]["InventoryDeadLetterQueueUrl"]
    for attempt in (1, 2, 3):
        (message,) = received(aws, queue, fail=True)
        assert message["Attributes"]["ApproximateReceiveCount"] == str(attempt)
    assert received(aws, queue, fail=True) == []  # maxReceiveCount 3 reached: moved on this receive
    (dead,) = received(aws, dlq)
    assert json.loads(dead["Body"])["detail"] == detail


# ----------------------------------------------------------------------------------------------
# Sample events (no moto needed)
# ----------------------------------------------------------------------------------------------

def test_sample_events_are_well_formed():
    files = sorted(EVENTS.glob("*.json"))
    assert len(files) >= 24
    for path in files:
        event = json.loads(path.read_text())
        if event.get("version") == "2.0":
            assert event["requestContext"]["stage"] == "$default" and event["isBase64Encoded"] is False
            assert event["routeKey"] == event["requestContext"]["routeKey"]
            if "body" in event:
                json.loads(event["body"])
                assert event["headers"]["idempotency-key"]
        for record in event.get("Records", []):
            if record["eventSource"] == "aws:dynamodb":
                image = record["dynamodb"]["NewImage"]
                assert record["eventName"] == "INSERT" and ULID.match(image["orderId"]["S"]), path.name
                assert json.loads(image["event"]["S"])["at"] == image["at"]["S"], path.name
                continue
            assert record["eventSource"] == "aws:sqs"
            try:
                detail = json.loads(record["body"])["detail"]
            except ValueError:
                continue  # the poison record
            assert ULID.match(detail["eventId"]) and ULID.match(detail["orderId"]), path.name
    assert ULID.match(json.loads((EVENTS / "checkout-get-order.json").read_text())["pathParameters"]["id"])


def test_the_local_copy_drops_functions_and_what_depends_on_them():
    expanded = localstack.expand(localstack.load_template())
    kept, dropped = localstack.split(expanded)
    assert not [r for r in kept["Resources"].values() if r["Type"].startswith(localstack.LOCAL_ONLY_PREFIXES)]
    assert "OutboxRelayFunctionEveryMinute" in dropped  # a schedule rule whose target is a function
    assert "ApiUrl" not in kept["Outputs"] and "EventBusName" in kept["Outputs"]


def test_the_local_copy_leaves_the_schema_registry_to_aws():
    """moto cannot create the EventBridge schema registry, and nothing local reads it."""
    kept, dropped = localstack.split(localstack.expand(localstack.load_template()))
    assert {"EventSchemaRegistry", "OrderPlacedV1Schema"} <= dropped
    assert not [r for r in kept["Resources"].values() if r["Type"].startswith("AWS::EventSchemas::")]


def _role_statements(expanded: dict, function: str) -> list[dict]:
    """The IAM statements of a function's role, as the SAM translator generates them."""
    role = function + "Role"
    statements = []
    for policy in expanded["Resources"][role]["Properties"].get("Policies", []):
        statements.extend(policy["PolicyDocument"]["Statement"])
    return statements


def test_the_order_list_can_query_only_the_views_index():
    # CQRS: the query side must not read the event store; its role says so, not just its code.
    expanded = localstack.expand(localstack.load_template())
    statements = _role_statements(expanded, "OrderViewsApiFunction")
    assert [s["Action"] for s in statements] == [["dynamodb:Query"]]
    assert statements[0]["Resource"] == {"Fn::Sub": "${OrderViewsTable.Arn}/index/ByCustomer"}
    basic = ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    assert expanded["Resources"]["OrderViewsApiFunctionRole"]["Properties"]["ManagedPolicyArns"] == basic


def test_only_the_projector_writes_the_views_and_it_reads_the_event_store_only_to_catch_up():
    expanded = localstack.expand(localstack.load_template())
    writers = []
    for name, resource in expanded["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                writes = [a for a in actions if a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                                      "dynamodb:BatchWriteItem", "dynamodb:*")]
                if writes and "OrderViewsTable" in json.dumps(statement["Resource"]):
                    writers.append(name)
    assert writers == ["OrderProjectorFunctionRole"]
    statements = {s["Sid"]: s for s in _role_statements(expanded, "OrderProjectorFunction") if "Sid" in s}
    assert statements["CatchUpFromTheEventStore"]["Action"] == ["dynamodb:Query"]
    # This stream only: not SAM's AWSLambdaDynamoDBExecutionRole, which reads every stream.
    assert statements["ReadTheOrdersStream"]["Resource"] == {"Fn::GetAtt": ["OrdersTable", "StreamArn"]}
    basic = ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    assert expanded["Resources"]["OrderProjectorFunctionRole"]["Properties"]["ManagedPolicyArns"] == basic


def test_the_projector_gives_up_on_a_batch_only_after_retries_onto_an_alarmed_queue():
    expanded = localstack.expand(localstack.load_template())
    (mapping,) = [r["Properties"] for r in expanded["Resources"].values()
                  if r["Type"] == "AWS::Lambda::EventSourceMapping"
                  and localstack._function_ref(r["Properties"]["EventSourceArn"]) == "OrdersTable"]
    assert (mapping["MaximumRetryAttempts"], mapping["BisectBatchOnFunctionError"]) == (3, True)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = localstack._function_ref(mapping["DestinationConfig"]["OnFailure"]["Destination"])
    alarm = expanded["Resources"]["OrderProjectorFailureAlarm"]["Properties"]
    assert localstack._function_ref(alarm["Dimensions"][0]["Value"]) == queue


# ----------------------------------------------------------------------------------------------
# Conditions: the stack with another issuer, or with its own Cognito user pool (no moto needed)
# ----------------------------------------------------------------------------------------------

class OfflineResolver(localstack.StackResolver):
    """Resolves against made-up physical names of what the local copy creates, without a moto
    server: enough for the parts of the stack file that only name things."""

    def __init__(self, expanded: dict, parameters: dict[str, str]):
        kept, _dropped = localstack.split(expanded, parameters)
        self.session, self.endpoint, self.stack = None, None, "offline"
        self.expanded = expanded
        self.parameters = localstack.parameter_values(expanded, parameters)
        self.physical = {lid: f"{lid}-physical" for lid in kept["Resources"]}
        self._cache = {}

    def _get_att(self, logical: str, attribute: str):
        return f"{self.physical_id(logical)}.{attribute}"


def test_given_another_issuer_the_local_copy_has_no_user_pool_and_takes_each_if_branch():
    expanded = localstack.expand(localstack.load_template(), LOCAL_AUTH)
    specialised = localstack.specialise(expanded, LOCAL_AUTH)
    assert not [lid for lid, r in specialised["Resources"].items() if r["Type"].startswith("AWS::Cognito::")]
    assert "StaffScopeFunction" not in specialised["Resources"] and "UserPoolId" not in specialised["Outputs"]
    assert specialised["Outputs"]["JwtIssuerUrl"]["Value"] == {"Ref": "JwtIssuer"}
    assert "Fn::If" not in json.dumps(specialised) and "Rules" not in specialised
    kept, _dropped = localstack.split(expanded, LOCAL_AUTH)
    assert "JwtIssuerUrl" in kept["Outputs"], "the issuer's output no longer refers to the user pool"


def test_given_an_issuer_without_an_audience_then_the_templates_rule_refuses_the_stack():
    expanded = localstack.expand(localstack.load_template())
    with pytest.raises(localstack.RuleFailed, match="JwtAudience is required"):
        localstack.split(expanded, {"JwtIssuer": ISSUER})


def test_given_another_issuer_the_cognito_trigger_is_no_function_to_run():
    expanded = localstack.expand(localstack.load_template(), LOCAL_AUTH)
    functions = localstack.describe_functions(expanded, OfflineResolver(expanded, LOCAL_AUTH))
    assert "StaffScopeFunction" not in functions and "CheckoutFunction" in functions


def test_given_the_stacks_own_user_pool_the_trigger_is_described_and_the_issuer_is_not_local():
    expanded = localstack.expand(localstack.load_template())
    resolver = OfflineResolver(expanded, {})
    functions = localstack.describe_functions(expanded, resolver)
    assert functions["StaffScopeFunction"]["binary"] == "staff-scope"
    assert functions["StaffScopeFunction"]["environment"]["STAFF_SCOPE"] == "shop/staff"
    # The pool is not created locally (its trigger is a function): no issuer to verify against.
    authorizer = localstack.describe_api(expanded, resolver)["authorizers"]["ShopJwt"]
    assert (authorizer["issuer"], authorizer["audience"]) == (None, [])


def test_given_the_templates_defaults_then_no_parameter_is_refused():
    template = localstack.load_template()
    defaults = {n: str(s["Default"]) for n, s in template["Parameters"].items() if "Default" in s}
    assert localstack.parameter_errors(template, defaults) == []


def test_given_values_a_deploy_refuses_then_each_is_named_with_why():
    template = localstack.load_template()
    errors = localstack.parameter_errors(template, {
        "ConsumerVisibilityTimeout": "2",
        "Stage": "x" * 29,
        "LogLevel": "TRACE",
        "SweeperGraceSeconds": "soon",
        "NoSuchParameter": "1",
    })
    named = sorted(e.split("=")[0].split(":")[0] for e in errors)
    assert named == ["ConsumerVisibilityTimeout", "LogLevel", "NoSuchParameter", "Stage", "SweeperGraceSeconds"]


def test_given_a_refused_value_then_provisioning_stops_before_creating_anything(moto, tmp_path):
    with pytest.raises(localstack.ParameterInvalid, match="ConsumerVisibilityTimeout"):
        localstack.provision(moto, "refused", tmp_path / "s.json", {"ConsumerVisibilityTimeout": "2"})
    assert not (tmp_path / "s.json").exists()


def test_given_a_local_only_value_then_the_stack_takes_it_and_says_so(moto, tmp_path):
    stack_file = localstack.provision(moto, "localonly", tmp_path / "s.json", LOCAL_AUTH,
                                      local_only={"ConsumerVisibilityTimeout": "2"})
    assert stack_file["localOnly"] == {"ConsumerVisibilityTimeout": "2"}
    sqs = localstack.session().client("sqs", endpoint_url=moto)
    queue = stack_file["outputs"]["EmailQueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "2"}
