"""The deploy workflow's smoke test (tools/smoke_test.py), against moto's Cognito, DynamoDB and
CloudFormation (in process) and a stand-in for the stack's API on 127.0.0.1 that answers as
README documents. The real API is only reached from the workflow, after a deploy.

    .venv/bin/python -m pytest tools/test_smoke_test.py
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smoke_test  # noqa: E402

PASSWORD = "Correct-Horse-9battery"
USER = smoke_test.DEFAULT_USER
STACK = "shop-smoke"


class FakeApi:
    """The routes the smoke test calls. `post_answers` scripts POST /orders: each entry is
    (status, headers, body) and the last one repeats."""

    def __init__(self):
        self.requests: list[dict] = []
        self.post_answers = [(201, {}, {"orderId": "01JORDER", "status": "PLACED", "total": 1250, "currency": "EUR"})]
        self.get_answer = (200, {}, {"orderId": "01JORDER", "status": "PLACED", "version": 2})
        self.cancel_answer = (200, {}, {"orderId": "01JORDER", "status": "CANCELLED"})
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, headers, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def record(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length)) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body})

            def do_POST(self):
                self.record()
                if self.path == "/orders":
                    answers = api.post_answers
                    self.answer(*(answers.pop(0) if len(answers) > 1 else answers[0]))
                elif self.path == "/orders/01JORDER/cancel":
                    self.answer(*api.cancel_answer)
                else:
                    self.answer(404, {}, {"message": "Not Found"})

            def do_GET(self):
                self.record()
                if self.path == "/orders/01JORDER":
                    self.answer(*api.get_answer)
                else:
                    self.answer(404, {}, {"message": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def calls(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path]


@pytest.fixture
def api():
    fake = FakeApi()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SMOKE_TEST_PASSWORD", PASSWORD)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def deploy_stack(session, api_url: str, outputs: dict | None = None) -> dict:
    """What `sam deploy` leaves that the smoke test reads: the user pool and its client (as
    template.yaml declares them), the two tables, and the stack's outputs."""
    cognito, dynamodb = session.client("cognito-idp"), session.client("dynamodb")
    pool = cognito.create_user_pool(
        PoolName=f"{STACK}-shop",
        UsernameAttributes=["email"],
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 12,
                "RequireLowercase": True,
                "RequireUppercase": True,
                "RequireNumbers": True,
                "RequireSymbols": False,
            }
        },
    )["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName="shop-web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    for table, key in (("products", "sku"), ("customers", "customerId")):
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        )
    values = {
        "ApiUrl": api_url + "/",
        "UserPoolId": pool,
        "UserPoolClientId": client,
        "ProductsTableName": "products",
        "CustomersTableName": "customers",
    }
    if outputs is not None:
        values = outputs
    template = {
        "Resources": {"OpsTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in values.items()},
    }
    session.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return values


def put_product(session, sku="MUG", available=100, currency="EUR"):
    session.client("dynamodb").put_item(
        TableName="products",
        Item={
            "sku": {"S": sku},
            "unitPrice": {"N": "1250"},
            "currency": {"S": currency},
            "available": {"N": str(available)},
            "reserved": {"N": "0"},
        },
    )


class Seeder:
    """Stands in for `shop-ops seed`: adds the product, as tools/seed.json has it."""

    def __init__(self, session, adds_product=True):
        self.session, self.adds_product, self.stacks = session, adds_product, []

    def __call__(self, stack):
        def seed():
            self.stacks.append(stack)
            if self.adds_product:
                put_product(self.session)

        return seed


def run(session, *argv, seeder=None):
    args = smoke_test.parse(["--stack", STACK, "--idempotency-key", "smoke-42-1", *argv])
    return smoke_test.run(args, session, seed=seeder or Seeder(session))


def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(smoke_test.time, "sleep", slept.append)
    return slept


# -- the whole run --------------------------------------------------------------------------


def test_given_a_new_stack_when_the_smoke_test_runs_then_it_creates_the_user_seeds_and_places_reads_and_cancels_one_order(aws, api):
    outputs = deploy_stack(aws, api.url)
    seeder = Seeder(aws)

    order = run(aws, seeder=seeder)

    assert order["orderId"] == "01JORDER"
    assert seeder.stacks == [STACK]
    [post] = api.calls("POST", "/orders")
    assert post["headers"]["idempotency-key"] == "smoke-42-1"
    assert post["headers"]["authorization"].startswith("Bearer ey")
    assert post["body"] == {"items": [{"sku": "MUG", "quantity": 1}], "paymentToken": "tok_visa", "currency": "EUR"}
    assert len(api.calls("GET", "/orders/01JORDER")) == 1
    [cancel] = api.calls("POST", "/orders/01JORDER/cancel")
    assert cancel["headers"]["idempotency-key"] == "smoke-42-1-cancel"
    # The user exists, with the customer record the e-mail consumer needs, keyed by its sub.
    user = aws.client("cognito-idp").admin_get_user(UserPoolId=outputs["UserPoolId"], Username=USER)
    sub = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
    customer = aws.client("dynamodb").get_item(TableName="customers", Key={"customerId": {"S": sub}})["Item"]
    assert customer["email"] == {"S": USER}


def test_given_the_user_and_the_product_exist_when_it_runs_again_then_it_reuses_the_user_and_seeds_nothing(aws, api, capsys):
    outputs = deploy_stack(aws, api.url)
    put_product(aws)
    run(aws)
    seeder = Seeder(aws)

    run(aws, seeder=seeder)

    assert seeder.stacks == []
    assert "reusing the smoke-test user" in capsys.readouterr().out
    users = aws.client("cognito-idp").list_users(UserPoolId=outputs["UserPoolId"])["Users"]
    assert len(users) == 1


def test_given_keep_order_when_it_runs_then_the_order_stays_placed(aws, api):
    deploy_stack(aws, api.url)

    run(aws, "--keep-order")

    assert api.calls("POST", "/orders/01JORDER/cancel") == []


def test_given_the_product_is_priced_in_gbp_when_it_orders_then_it_asks_for_gbp(aws, api):
    deploy_stack(aws, api.url)
    put_product(aws, sku="TEE", currency="GBP")

    run(aws, "--sku", "TEE")

    assert api.calls("POST", "/orders")[0]["body"]["currency"] == "GBP"


# -- the order: retried only as README says, with the same key -----------------------------


def test_given_the_api_answers_503_then_201_when_it_orders_then_it_retries_with_the_same_key(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    slept = no_sleep(monkeypatch)
    api.post_answers = [(503, {}, {"type": "dependency-unavailable"})] + api.post_answers

    run(aws)

    keys = [r["headers"]["idempotency-key"] for r in api.calls("POST", "/orders")]
    assert keys == ["smoke-42-1", "smoke-42-1"]
    assert len(slept) == 1


def test_given_a_request_still_in_progress_when_it_orders_then_it_waits_the_retry_after_and_retries(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    slept = no_sleep(monkeypatch)
    api.post_answers = [(409, {"retry-after": "3"}, {"type": "request-in-progress"})] + api.post_answers

    run(aws)

    assert len(api.calls("POST", "/orders")) == 2
    assert slept == [3.0]


def test_given_insufficient_stock_when_it_orders_then_it_fails_at_once(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    no_sleep(monkeypatch)
    api.post_answers = [(409, {}, {"type": "insufficient-stock", "skus": ["MUG"]})]

    with pytest.raises(smoke_test.SmokeTestFailed, match="answered 409, not 201.*insufficient-stock"):
        run(aws)

    assert len(api.calls("POST", "/orders")) == 1


def test_given_a_client_error_when_it_orders_then_it_fails_with_the_answer_and_no_retry(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    no_sleep(monkeypatch)
    api.post_answers = [(422, {}, {"type": "unknown-sku", "skus": ["MUG"]})]

    with pytest.raises(smoke_test.SmokeTestFailed, match="answered 422.*unknown-sku"):
        run(aws)

    assert len(api.calls("POST", "/orders")) == 1


def test_given_the_api_keeps_failing_when_it_orders_then_it_gives_up_after_the_last_attempt(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    no_sleep(monkeypatch)
    api.post_answers = [(502, {}, {"type": "payment-outcome-unknown"})]

    with pytest.raises(smoke_test.SmokeTestFailed, match="answered 502"):
        run(aws)

    assert len(api.calls("POST", "/orders")) == smoke_test.ATTEMPTS


def test_given_a_201_that_is_not_a_placed_order_when_it_orders_then_it_fails(aws, api):
    deploy_stack(aws, api.url)
    api.post_answers = [(201, {}, {"orderId": "01JORDER", "status": "PENDING_PAYMENT"})]

    with pytest.raises(smoke_test.SmokeTestFailed, match="without a placed order"):
        run(aws)


def test_given_the_order_reads_back_as_another_when_it_reads_then_it_fails(aws, api):
    deploy_stack(aws, api.url)
    api.get_answer = (200, {}, {"orderId": "01JOTHER", "status": "PLACED"})

    with pytest.raises(smoke_test.SmokeTestFailed, match="is not the placed order"):
        run(aws)


def test_given_the_order_cannot_be_read_when_it_reads_then_it_fails_with_the_status(aws, api):
    deploy_stack(aws, api.url)
    api.get_answer = (404, {}, {"type": "order-not-found"})

    with pytest.raises(smoke_test.SmokeTestFailed, match="answered 404, not 200"):
        run(aws)


def test_given_the_cancel_is_refused_when_it_cancels_then_it_fails(aws, api):
    deploy_stack(aws, api.url)
    api.cancel_answer = (409, {}, {"type": "order-state-conflict"})

    with pytest.raises(smoke_test.SmokeTestFailed, match="cancel answered 409"):
        run(aws)


def test_given_the_api_does_not_answer_when_it_orders_then_it_fails_naming_the_url(aws, api):
    deploy_stack(aws, "http://127.0.0.1:9")

    with pytest.raises(smoke_test.SmokeTestFailed, match="did not answer"):
        run(aws)


# -- what it needs, and the messages when it is missing ------------------------------------


def test_given_no_password_when_it_runs_then_it_names_the_secret_to_set(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    monkeypatch.delenv("SMOKE_TEST_PASSWORD")

    with pytest.raises(smoke_test.SmokeTestFailed, match="set SMOKE_TEST_PASSWORD"):
        run(aws)

    assert api.requests == []


def test_given_a_password_the_pool_refuses_when_it_runs_then_it_states_the_policy(aws, api, monkeypatch):
    deploy_stack(aws, api.url)
    monkeypatch.setenv("SMOKE_TEST_PASSWORD", "short")

    with pytest.raises(smoke_test.SmokeTestFailed, match="password policy"):
        run(aws)


def test_given_no_such_stack_when_it_runs_then_it_says_to_deploy_or_set_the_region(aws, api):
    with pytest.raises(smoke_test.SmokeTestFailed, match="cannot describe stack shop-smoke in us-east-1.*AWS_REGION"):
        run(aws)


def test_given_a_stack_with_another_identity_provider_when_it_runs_then_it_explains_why_it_cannot_sign_in(aws, api):
    without_cognito = {"ApiUrl": api.url, "ProductsTableName": "products", "CustomersTableName": "customers"}
    deploy_stack(aws, api.url, outputs=without_cognito)

    with pytest.raises(smoke_test.SmokeTestFailed, match="no output UserPoolId, UserPoolClientId.*JwtIssuer"):
        run(aws)


def test_given_seeding_adds_no_such_product_when_it_runs_then_it_says_where_to_add_it(aws, api):
    deploy_stack(aws, api.url)

    with pytest.raises(smoke_test.SmokeTestFailed, match="still missing after seeding.*SMOKE_TEST_SKU"):
        run(aws, "--sku", "NOPE", seeder=Seeder(aws, adds_product=False))

    assert api.requests == []


def test_given_the_product_is_sold_out_when_it_runs_then_it_says_to_restock_before_ordering(aws, api):
    deploy_stack(aws, api.url)
    put_product(aws, available=0)

    with pytest.raises(smoke_test.SmokeTestFailed, match="has 0 in stock.*restock"):
        run(aws)

    assert api.requests == []


def test_given_a_failure_when_run_from_the_command_line_then_it_exits_1_with_the_message(aws, monkeypatch, capsys):
    monkeypatch.delenv("SMOKE_TEST_PASSWORD")

    assert smoke_test.main(["--stack", STACK]) == 1

    assert "smoke test failed: set SMOKE_TEST_PASSWORD" in capsys.readouterr().err


def test_given_github_actions_when_it_signs_in_then_the_token_is_masked_and_the_run_summarised(aws, api, monkeypatch, tmp_path, capsys):
    deploy_stack(aws, api.url)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))

    run(aws)

    token = api.calls("POST", "/orders")[0]["headers"]["authorization"].removeprefix("Bearer ")
    assert f"::add-mask::{token}" in capsys.readouterr().out
    assert "order `01JORDER` placed (201), read back, cancelled" in (tmp_path / "summary.md").read_text()


# -- which stack: samconfig.toml's -----------------------------------------------------------


@pytest.mark.parametrize("config_env, stack", [("default", "shop-dev"), ("prod", "shop-prod")])
def test_given_a_samconfig_environment_when_no_stack_is_named_then_it_tests_that_environments_stack(config_env, stack):
    assert smoke_test.stack_name(config_env) == stack


def test_given_an_unknown_samconfig_environment_then_it_lists_the_ones_there_are():
    with pytest.raises(smoke_test.SmokeTestFailed, match="no environment 'staging' \\(it has default, prod\\)"):
        smoke_test.stack_name("staging")


def test_given_a_run_in_github_actions_then_each_run_attempt_has_its_own_key(monkeypatch):
    monkeypatch.setenv("GITHUB_RUN_ID", "981")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")

    assert smoke_test.default_key() == "smoke-981-2"
