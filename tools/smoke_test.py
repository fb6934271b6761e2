"""Smoke test of a deployed stack: one order through the real API, as a signed-in customer.

Run by .github/workflows/deploy.yml after `sam deploy`, and by hand against any stack that uses
its own Cognito user pool (AWS credentials and region from the environment, as for `sam`):

    SMOKE_TEST_PASSWORD='<12+ chars, upper, lower, digit>' .venv/bin/python tools/smoke_test.py
    SMOKE_TEST_PASSWORD=... .venv/bin/python tools/smoke_test.py --config-env prod

Steps, each of which fails with what to do about it:
1. the stack's outputs (the stack name from samconfig.toml's environment, or --stack);
2. the smoke-test user in the user pool, created once and reused (password set from
   SMOKE_TEST_PASSWORD every run, so rotating the secret needs nothing else), and its customer
   record, so the e-mail consumer has an address: by default an SES mailbox-simulator address,
   which SES accepts even in its sandbox and delivers to no one;
3. an access token (USER_PASSWORD_AUTH, as README's "Authentication and access" shows);
4. the product to order: if the stack has no such product, the catalogue is seeded with
   `shop-ops seed` (tools/seed.json; seeding never overwrites the stock of an existing product);
5. POST /orders with an Idempotency-Key: 201 expected. An answer the API documents as "retry
   with the same key" (502, 503, 409 with Retry-After, 429) is retried with the same key, which
   never charges twice;
6. GET /orders/{id}: the same order, PLACED;
7. POST /orders/{id}/cancel, so that repeated smoke tests give their stock back (--keep-order
   leaves the order placed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"

# The SES mailbox simulator accepts mail (also from an account in the SES sandbox) and reports
# it delivered; the label keeps the smoke-test customer apart from any other.
DEFAULT_USER = "success+shop-smoke-test@simulator.amazonses.com"
DEFAULT_SKU = "MUG"
OUTPUTS = ("ApiUrl", "UserPoolId", "UserPoolClientId", "ProductsTableName", "CustomersTableName")
# The answers README documents as "retry with the same key".
RETRIABLE = {429, 502, 503, 504}
ATTEMPTS = 4


class SmokeTestFailed(Exception):
    """What went wrong and what to do about it; the message is printed as is."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise SmokeTestFailed(
                f"the API answered {self.status} with a body that is not JSON: {self.body[:200]!r}"
            ) from e


def stack_name(config_env: str, samconfig: Path = SAMCONFIG) -> str:
    """The stack_name samconfig.toml gives the environment, as `sam deploy --config-env` reads it."""
    config = tomllib.loads(samconfig.read_text())
    env = config.get(config_env)
    if env is None:
        known = ", ".join(k for k in config if k != "version")
        raise SmokeTestFailed(
            f"{samconfig.name} has no environment {config_env!r} (it has {known}); "
            "pass --config-env with one of those, or --stack"
        )
    for command in ("deploy", "global"):
        name = env.get(command, {}).get("parameters", {}).get("stack_name")
        if name:
            return name
    raise SmokeTestFailed(f"{samconfig.name} names no stack_name for {config_env!r}; pass --stack")


def stack_outputs(cloudformation, stack: str) -> dict[str, str]:
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except cloudformation.exceptions.ClientError as e:
        raise SmokeTestFailed(
            f"cannot describe stack {stack} in {cloudformation.meta.region_name}: {e}. "
            "Deploy it first, or set AWS_REGION to the region it is in"
        ) from e
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [key for key in OUTPUTS if key not in outputs]
    if missing:
        why = (
            ". The smoke test signs in through the stack's own Cognito user pool: a stack deployed "
            "with JwtIssuer (another identity provider) cannot be smoke-tested this way"
            if "UserPoolId" in missing
            else ": deploy the current template.yaml"
        )
        raise SmokeTestFailed(f"stack {stack} has no output {', '.join(missing)}{why}")
    return outputs


def ensure_user(cognito, pool: str, username: str, password: str) -> str:
    """Creates the smoke-test user unless it exists, sets its password; returns its `sub`."""
    try:
        cognito.admin_get_user(UserPoolId=pool, Username=username)
        print(f"reusing the smoke-test user {username}")
    except cognito.exceptions.UserNotFoundException:
        print(f"creating the smoke-test user {username}")
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=username,
            # No invitation: the password comes from the secret, not from a temporary one mailed.
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}],
        )
    try:
        cognito.admin_set_user_password(UserPoolId=pool, Username=username, Password=password, Permanent=True)
    except cognito.exceptions.InvalidPasswordException as e:
        raise SmokeTestFailed(
            "SMOKE_TEST_PASSWORD does not meet the user pool's password policy (at least 12 "
            f"characters with upper case, lower case and a digit): {e}"
        ) from e
    user = cognito.admin_get_user(UserPoolId=pool, Username=username)
    sub = next((a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub"), None)
    if not sub:
        raise SmokeTestFailed(f"Cognito returned user {username} without a sub attribute")
    return sub


def ensure_customer(dynamodb, table: str, customer_id: str, email: str) -> None:
    """The customer record the e-mail consumer reads (README: accounts come with one)."""
    dynamodb.put_item(
        TableName=table,
        Item={"customerId": {"S": customer_id}, "email": {"S": email}, "name": {"S": "Smoke test"}},
    )


def find_product(dynamodb, table: str, sku: str) -> dict | None:
    return dynamodb.get_item(TableName=table, Key={"sku": {"S": sku}}, ConsistentRead=True).get("Item")


def ensure_product(dynamodb, table: str, sku: str, quantity: int, seed: Callable[[], None]) -> str:
    """Seeds the catalogue if the product is missing; returns the product's currency."""
    item = find_product(dynamodb, table, sku)
    if item is None:
        print(f"product {sku} is not in the catalogue: seeding it")
        seed()
        item = find_product(dynamodb, table, sku)
        if item is None:
            raise SmokeTestFailed(
                f"product {sku} is still missing after seeding: add it to tools/seed.json, or set "
                "SMOKE_TEST_SKU to a product the stack sells"
            )
    available = int(item.get("available", {}).get("N", "0"))
    if available < quantity:
        raise SmokeTestFailed(
            f"product {sku} has {available} in stock, the smoke test orders {quantity}: restock it "
            "(shop-ops seed --reset-stock, or your own stock tools) or set SMOKE_TEST_SKU to another"
        )
    return item["currency"]["S"]


def ops_seed(stack: str) -> Callable[[], None]:
    def seed() -> None:
        command = ["cargo", "run", "--locked", "--quiet", "-p", "ops", "--", "--stack", stack, "seed"]
        print("$ " + " ".join(command), flush=True)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            raise SmokeTestFailed("shop-ops seed failed (its message is above); the stack's catalogue is unchanged")

    return seed


def access_token(cognito, client: str, username: str, password: str) -> str:
    try:
        result = cognito.initiate_auth(
            ClientId=client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except cognito.exceptions.ClientError as e:
        raise SmokeTestFailed(f"cannot sign in as {username}: {e}") from e
    if "AuthenticationResult" not in result:
        challenge = result.get("ChallengeName")
        raise SmokeTestFailed(f"signing in as {username} asked for a challenge ({challenge}), not a token")
    token = result["AuthenticationResult"]["AccessToken"]
    if os.environ.get("GITHUB_ACTIONS") == "true":
        # Keeps the token out of the log should anything print it.
        print(f"::add-mask::{token}", flush=True)
    return token


def call(
    method: str, url: str, token: str, body: dict | None = None, key: str | None = None, correlation: str | None = None
) -> Answer:
    headers = {"authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if key is not None:
        headers["idempotency-key"] = key
    if correlation is not None:
        headers["x-correlation-id"] = correlation
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return Answer(response.status, headers, response.read().decode())
    except urllib.error.HTTPError as e:
        return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode())
    except (urllib.error.URLError, TimeoutError) as e:
        raise SmokeTestFailed(f"{method} {url} did not answer: {e}") from e


def retriable(answer: Answer) -> bool:
    # 409 is retriable only as "a request with the same key is still in progress", which
    # carries Retry-After; insufficient stock and the other conflicts are not.
    return answer.status in RETRIABLE or (answer.status == 409 and "retry-after" in answer.headers)


def retry_after(answer: Answer, default: float) -> float:
    try:
        return max(float(answer.headers["retry-after"]), 0.0)
    except (KeyError, ValueError):
        # Absent, or an HTTP date: the API sends seconds, so a date is a proxy's; back off anyway.
        return default


def place_order(api: str, token: str, key: str, sku: str, quantity: int, currency: str) -> dict:
    body = {"items": [{"sku": sku, "quantity": quantity}], "paymentToken": "tok_visa", "currency": currency}
    for attempt in range(1, ATTEMPTS + 1):
        answer = call("POST", f"{api}/orders", token, body, key=key, correlation=f"smoke-{key}")
        if answer.status == 201:
            order = answer.json()
            if order.get("status") != "PLACED" or not order.get("orderId"):
                raise SmokeTestFailed(f"POST /orders answered 201 without a placed order: {answer.body}")
            replayed = " (replayed)" if answer.headers.get("idempotent-replayed") == "true" else ""
            total = f"{order.get('total')} {order.get('currency')}"
            print(f"POST /orders: 201{replayed}, order {order['orderId']}, total {total}")
            return order
        if not retriable(answer) or attempt == ATTEMPTS:
            raise SmokeTestFailed(f"POST /orders answered {answer.status}, not 201: {answer.body}")
        delay = min(retry_after(answer, default=2.0 * attempt), 10.0)
        print(f"POST /orders answered {answer.status}; retrying with the same Idempotency-Key in {delay:g} s")
        time.sleep(delay)
    raise AssertionError("unreachable")


def read_order(api: str, token: str, order_id: str) -> dict:
    answer = call("GET", f"{api}/orders/{order_id}", token)
    if answer.status != 200:
        raise SmokeTestFailed(f"GET /orders/{order_id} answered {answer.status}, not 200: {answer.body}")
    order = answer.json()
    if order.get("orderId") != order_id or order.get("status") != "PLACED":
        raise SmokeTestFailed(f"GET /orders/{order_id} is not the placed order: {answer.body}")
    print(f"GET /orders/{order_id}: 200, {order['status']}, version {order.get('version')}")
    return order


def cancel_order(api: str, token: str, order_id: str, key: str) -> dict:
    answer = call("POST", f"{api}/orders/{order_id}/cancel", token, {}, key=f"{key}-cancel", correlation=f"smoke-{key}")
    if answer.status != 200 or answer.json().get("status") != "CANCELLED":
        raise SmokeTestFailed(
            f"POST /orders/{order_id}/cancel answered {answer.status}, not 200 CANCELLED: {answer.body}"
        )
    print(f"POST /orders/{order_id}/cancel: 200, CANCELLED (the stock goes back)")
    return answer.json()


def default_key() -> str:
    # One key per workflow run attempt: a re-run places a new order, a retry within the run
    # replays the same one.
    run, attempt = os.environ.get("GITHUB_RUN_ID"), os.environ.get("GITHUB_RUN_ATTEMPT", "1")
    return f"smoke-{run}-{attempt}" if run else f"smoke-{uuid.uuid4()}"


def summary(line: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


def run(args: argparse.Namespace, session, seed: Callable[[str], Callable[[], None]] = ops_seed) -> dict:
    password = os.environ.get("SMOKE_TEST_PASSWORD", "")
    if not password:
        raise SmokeTestFailed(
            "set SMOKE_TEST_PASSWORD (in GitHub: the environment's secret of that name) to the smoke-test "
            "user's password: at least 12 characters with upper case, lower case and a digit"
        )
    stack = args.stack or stack_name(args.config_env)
    cognito, dynamodb = session.client("cognito-idp"), session.client("dynamodb")
    outputs = stack_outputs(session.client("cloudformation"), stack)
    api = outputs["ApiUrl"].rstrip("/")
    print(f"smoke test of stack {stack}: {api}")
    sub = ensure_user(cognito, outputs["UserPoolId"], args.user, password)
    ensure_customer(dynamodb, outputs["CustomersTableName"], sub, args.user)
    token = access_token(cognito, outputs["UserPoolClientId"], args.user, password)
    currency = ensure_product(dynamodb, outputs["ProductsTableName"], args.sku, args.quantity, seed(stack))
    order = place_order(api, token, args.idempotency_key, args.sku, args.quantity, currency)
    read_order(api, token, order["orderId"])
    if not args.keep_order:
        cancel_order(api, token, order["orderId"], args.idempotency_key)
    done = "placed (201), read back" + ("" if args.keep_order else ", cancelled")
    summary(f"Smoke test of `{stack}`: order `{order['orderId']}` {done}")
    return order


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Place one order through a deployed stack's API.")
    parser.add_argument(
        "--config-env", default="default", help="the samconfig.toml environment whose stack to test (default: dev's)"
    )
    parser.add_argument("--stack", help="the stack's name, instead of samconfig.toml's")
    user = os.environ.get("SMOKE_TEST_USER") or DEFAULT_USER
    parser.add_argument("--user", default=user, help="the smoke-test user's e-mail (SMOKE_TEST_USER)")
    sku = os.environ.get("SMOKE_TEST_SKU") or DEFAULT_SKU
    parser.add_argument("--sku", default=sku, help="the product to order (SMOKE_TEST_SKU; default MUG)")
    parser.add_argument("--quantity", type=int, default=1)
    parser.add_argument("--idempotency-key", default=default_key())
    parser.add_argument("--keep-order", action="store_true", help="leave the order placed instead of cancelling it")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    import boto3

    try:
        run(parse(argv), boto3.session.Session())
    except SmokeTestFailed as e:
        print(f"smoke test failed: {e}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
