#!/usr/bin/env python3
"""The local twin of the stack, derived from template.yaml.

template.yaml stays the single source of truth: this expands it offline with the SAM
translator (the same code `sam deploy` runs in AWS's transform), keeps what moto's
CloudFormation can create (bus, archive, tables, queues with redrive, rules with SQS targets,
alarms, topic), drops what runs as local processes instead (Lambda functions, their IAM
roles, the HTTP API), creates that as a stack in a moto server, and writes a stack file that
tells a local runner how to start each function: its binary, its environment with every Ref
and GetAtt resolved to the physical names moto created, and its triggers (SQS event source
mappings, HTTP routes, schedules); and what the HTTP API enforces before invoking anything
(stage throttling, its JWT authorizer, each route's authorizer and scopes). Conditions are
decided for the given parameters first, as CloudFormation decides them.

Usage (run with /work/main/.venv/bin/python):
    localstack.py provision --endpoint http://127.0.0.1:PORT --stack shop-dev --out .local/stack.json
    localstack.py seed --stack-file .local/stack.json --seed tools/seed.json
    localstack.py outputs --stack-file .local/stack.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
# moto's fixed account; the SDK needs some credentials, moto accepts any.
DUMMY_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
CODE_PLACEHOLDER = "s3://local-placeholder/code.zip"

# Resource types that are local processes, not moto resources: the functions run as binaries
# (cargo lambda / a local runner), so their roles, permissions, event source mappings and
# the HTTP API that fronts them have no use in moto (and moto cannot invoke a Rust binary).
LOCAL_ONLY_PREFIXES = ("AWS::Lambda::", "AWS::IAM::", "AWS::ApiGatewayV2::")
# Resource types moto cannot create and nothing local needs: the EventBridge schema registry
# only documents the events (the contracts/ tests check its content against the generated schemas).
NOT_EMULATED_PREFIXES = ("AWS::EventSchemas::",)

PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


# --------------------------------------------------------------------------------------------
# Template: load, expand, split into "what moto creates" and "what runs locally"
# --------------------------------------------------------------------------------------------

def load_template(path: Path = TEMPLATE) -> dict:
    """Parses a CloudFormation/SAM YAML template, short tags (!Ref, !GetAtt, !Sub ...) included."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(Path(path).read_text())


class _NoManagedPolicies:
    """The translator's managed-policy loader: the template names no AWS managed policies by
    name, and this is offline, so an empty map."""

    def load(self) -> dict:
        return {}


def expand(template: dict, parameters: dict[str, str] | None = None) -> dict:
    """The SAM transform, offline: the plain CloudFormation template `sam deploy` would create."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            # The translator insists on an S3 URI; the code never goes to moto anyway.
            resource.setdefault("Properties", {})["CodeUri"] = CODE_PLACEHOLDER
    # The translator derives pseudo parameters from a boto session's region.
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(template, dict(parameters or {}), _NoManagedPolicies())


def references(node: Any) -> set[str]:
    """Logical IDs a template fragment refers to (Ref, GetAtt, Sub variables)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                local = set(value[1].keys()) if isinstance(value, list) and len(value) > 1 else set()
                for var in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    name = var.split(".")[0]
                    if name not in local:
                        found.add(name)
                found |= references(value[1:] if isinstance(value, list) else [])
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def _depends_on(resource: dict) -> set[str]:
    deps = resource.get("DependsOn", [])
    return {deps} if isinstance(deps, str) else set(deps)


class RuleFailed(ValueError):
    """A template rule's assertion does not hold for the parameters (CloudFormation refuses
    such a stack before creating anything)."""


class ParameterInvalid(ValueError):
    """A parameter value the template's constraints refuse (CloudFormation refuses the stack)."""


def parameter_errors(template: dict, parameters: dict[str, str]) -> list[str]:
    """What CloudFormation would say of `parameters` against the template's declared
    constraints: an unknown name; AllowedValues; AllowedPattern (the whole value);
    MinLength/MaxLength of a String; a Number that is no number, or outside MinValue/MaxValue.
    moto checks none of these, so without this the local twin would run on values a deploy
    refuses."""
    declared = template.get("Parameters", {})
    errors = []
    for name, value in parameters.items():
        spec = declared.get(name)
        if spec is None:
            errors.append(f"{name}: not a parameter of the template")
            continue
        why = spec.get("ConstraintDescription")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            errors.append(f"{name}={value!r}: must be one of {spec['AllowedValues']}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                errors.append(f"{name}={value!r}: must be a number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                errors.append(f"{name}={value}: must be at least {spec['MinValue']}" + (f" ({why})" if why else ""))
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                errors.append(f"{name}={value}: must be at most {spec['MaxValue']}" + (f" ({why})" if why else ""))
        else:
            if "MinLength" in spec and len(value) < int(spec["MinLength"]):
                errors.append(f"{name}: at least {spec['MinLength']} characters")
            if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
                errors.append(f"{name}: at most {spec['MaxLength']} characters")
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                errors.append(f"{name}={value!r}: must match {spec['AllowedPattern']}" + (f" ({why})" if why else ""))
    return errors


def parameter_values(expanded: dict, parameters: dict[str, str] | None = None) -> dict[str, str]:
    """Every parameter's value: the given ones over the template's defaults."""
    values = {name: str(spec["Default"]) for name, spec in expanded.get("Parameters", {}).items() if "Default" in spec}
    values.update(parameters or {})
    return values


def static_value(node: Any, values: dict[str, str], conditions: dict) -> Any:
    """A condition or rule expression, which refers to parameters only (CloudFormation allows
    nothing else there): Ref, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition."""
    if isinstance(node, dict) and len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            if value in PSEUDO:
                return PSEUDO[value]
            if value not in values:
                raise KeyError(f"Ref {value}: a condition may refer to parameters only")
            return values[value]
        if key == "Fn::Equals":
            left, right = value
            return str(static_value(left, values, conditions)) == str(static_value(right, values, conditions))
        if key == "Fn::Not":
            return not static_value(value[0], values, conditions)
        if key == "Fn::And":
            return all(static_value(v, values, conditions) for v in value)
        if key == "Fn::Or":
            return any(static_value(v, values, conditions) for v in value)
        if key == "Condition":
            return bool(static_value(conditions[value], values, conditions))
    return node


_NO_VALUE = object()


def _taken_branches(node: Any, holds: dict[str, bool]) -> Any:
    """`node` with every Fn::If replaced by the branch its condition takes; a branch that is
    `Ref: AWS::NoValue` removes the property (or list item) altogether."""
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::If" in node:
            name, if_true, if_false = node["Fn::If"]
            return _taken_branches(if_true if holds[name] else if_false, holds)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        taken = {k: _taken_branches(v, holds) for k, v in node.items()}
        return {k: v for k, v in taken.items() if v is not _NO_VALUE}
    if isinstance(node, list):
        return [v for v in (_taken_branches(item, holds) for item in node) if v is not _NO_VALUE]
    return node


def specialise(expanded: dict, parameters: dict[str, str] | None = None) -> dict:
    """The expanded template as CloudFormation deploys it with `parameters`: its rules checked,
    its conditions decided, the resources and outputs whose condition is false left out, and
    each Fn::If replaced by the branch it takes. Without this, a resource of the branch not
    taken (the Cognito user pool, when the stack trusts another issuer) would still count as
    referred to, and drag what refers to it out of the local copy."""
    values = parameter_values(expanded, parameters)
    conditions = expanded.get("Conditions", {})
    for name, rule in expanded.get("Rules", {}).items():
        if "RuleCondition" in rule and not static_value(rule["RuleCondition"], values, conditions):
            continue
        for assertion in rule.get("Assertions", []):
            if not static_value(assertion["Assert"], values, conditions):
                raise RuleFailed(f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")
    holds = {name: bool(static_value(c, values, conditions)) for name, c in conditions.items()}
    out = copy.deepcopy(expanded)
    out.pop("Rules", None)
    for section in ("Resources", "Outputs"):
        kept = {k: v for k, v in out.get(section, {}).items() if holds.get(v.get("Condition"), True)}
        for item in kept.values():
            item.pop("Condition", None)
        if section in out:
            out[section] = _taken_branches(kept, holds)
    return out


def split(expanded: dict, parameters: dict[str, str] | None = None) -> tuple[dict, set[str]]:
    """The part of an expanded template moto creates, and the logical IDs left out: the
    local-only types and everything that refers to them (e.g. the schedule rule whose target
    is a function, the ApiUrl output), for the given parameters (`specialise`)."""
    expanded = specialise(expanded, parameters)
    resources = expanded.get("Resources", {})
    dropped = {
        lid for lid, r in resources.items() if r["Type"].startswith(LOCAL_ONLY_PREFIXES + NOT_EMULATED_PREFIXES)
    }
    changed = True
    while changed:
        changed = False
        for lid, resource in resources.items():
            if lid not in dropped and (references(resource) | _depends_on(resource)) & dropped:
                dropped.add(lid)
                changed = True
    kept = copy.deepcopy(expanded)
    kept["Resources"] = {lid: r for lid, r in kept["Resources"].items() if lid not in dropped}
    kept["Outputs"] = {k: o for k, o in kept.get("Outputs", {}).items() if not references(o) & dropped}
    kept.pop("Transform", None)
    _moto_compat(kept)
    return kept, dropped


def _moto_compat(template: dict) -> None:
    """Works around moto CloudFormation gaps, in the local copy only (template.yaml stays as
    AWS wants it)."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        # moto parses an Archive's EventPattern with json.loads: it must be a string there,
        # while CloudFormation takes (and cfn-lint wants) an object.
        if resource["Type"] == "AWS::Events::Archive" and isinstance(props.get("EventPattern"), dict):
            props["EventPattern"] = json.dumps(props["EventPattern"])


# --------------------------------------------------------------------------------------------
# Resolving Ref / GetAtt / Sub against a created stack
# --------------------------------------------------------------------------------------------

class StackResolver:
    """Evaluates intrinsic functions of the expanded template against the stack moto created."""

    def __init__(self, session, endpoint: str, stack: str, parameters: dict[str, str], expanded: dict):
        self.session, self.endpoint, self.stack = session, endpoint, stack
        self.expanded = expanded
        self.parameters = {
            name: str(spec["Default"]) for name, spec in expanded.get("Parameters", {}).items() if "Default" in spec
        }
        self.parameters.update(parameters)
        cfn = self.client("cloudformation")
        # moto lists the resources it skipped (QueuePolicy, Alarm) with empty IDs, and an
        # EventBus or Archive without a physical ID.
        self.physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
            if r.get("LogicalResourceId")
        }
        self._cache: dict[tuple[str, str], Any] = {}

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def type_of(self, logical: str) -> str:
        return self.expanded["Resources"][logical]["Type"]

    def physical_id(self, logical: str) -> str:
        physical = self.physical.get(logical)
        if physical:
            return physical
        props = self.expanded["Resources"][logical].get("Properties", {})
        if self.type_of(logical) == "AWS::Events::EventBus" and "Name" in props:
            # moto leaves a bus's physical ID empty; its name is the one the template gives it.
            return self.resolve(props["Name"])
        raise KeyError(f"no physical ID for {logical} in stack {self.stack}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.expanded.get("Conditions", {})[name]))

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::StackName":
            return self.stack
        if name in self.parameters:
            return self.parameters[name]
        if name not in self.expanded["Resources"]:
            raise KeyError(f"Ref {name}: not a parameter nor a resource of stack {self.stack}")
        if self.type_of(name) == "AWS::SQS::Queue":
            return self.get_att(name, "QueueUrl")
        return self.physical_id(name)

    def get_att(self, logical: str, attribute: str) -> Any:
        key = (logical, attribute)
        if key not in self._cache:
            self._cache[key] = self._get_att(logical, attribute)
        return self._cache[key]

    def _get_att(self, logical: str, attribute: str) -> Any:
        kind = self.type_of(logical)
        physical = self.physical_id(logical)
        if kind == "AWS::SQS::Queue":
            sqs = self.client("sqs")
            url = physical if physical.startswith("http") else sqs.get_queue_url(QueueName=physical)["QueueUrl"]
            if attribute == "QueueUrl":
                return url
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            return {"Arn": arn, "QueueName": arn.rsplit(":", 1)[1]}[attribute]
        if kind == "AWS::DynamoDB::Table":
            table = self.client("dynamodb").describe_table(TableName=physical)["Table"]
            return {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")}[attribute]
        if kind == "AWS::Events::EventBus":
            bus = self.client("events").describe_event_bus(Name=physical)
            return {"Name": bus["Name"], "Arn": bus["Arn"]}[attribute]
        if kind == "AWS::Events::Rule":
            bus = self.resolve(self.expanded["Resources"][logical]["Properties"].get("EventBusName", "default"))
            rule = self.client("events").describe_rule(Name=physical.split("|")[-1], EventBusName=bus)
            return {"Arn": rule["Arn"]}[attribute]
        if kind == "AWS::SNS::Topic" and attribute == "TopicArn":
            return physical
        raise NotImplementedError(f"GetAtt {logical}.{attribute} ({kind})")

    def sub(self, text: str, local: dict[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            var = match.group(1)
            if var.startswith("!"):
                return "${" + var[1:] + "}"
            if var in local:
                return str(self.resolve(local[var]))
            if "." in var and not var.startswith("AWS::"):
                logical, attribute = var.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(var))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                logical, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                if isinstance(value, list):
                    return self.sub(value[0], value[1] if len(value) > 1 else {})
                return self.sub(value, {})
            if key == "Fn::Join":
                separator, parts = value
                return separator.join(str(self.resolve(p)) for p in parts)
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                # The rule alarms' RuleName: the last part of the rule's ARN.
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Equals":
                left, right = value
                return self.resolve(left) == self.resolve(right)
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::If":
                name, if_true, if_false = value
                return self.resolve(if_true if self.condition(name) else if_false)
        if isinstance(node, dict):
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node


# --------------------------------------------------------------------------------------------
# What moto's CloudFormation skips, applied through the service APIs
# --------------------------------------------------------------------------------------------

ALARM_PARAMETERS = (
    "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions", "MetricName",
    "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
    "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId",
)


def apply_skipped(cfn_template: dict, resolver: StackResolver) -> list[str]:
    """moto's CloudFormation reports AWS::SQS::QueuePolicy, AWS::CloudWatch::Alarm and
    AWS::SNS::Subscription as created but creates nothing; create them through the service
    APIs so the twin has them too. Returns the logical IDs applied."""
    applied = []
    for lid, resource in cfn_template["Resources"].items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        props = resolver.resolve(resource.get("Properties", {}))
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            policy = json.dumps(props["PolicyDocument"])
            for url in props["Queues"]:
                resolver.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
            applied.append(lid)
        elif resource["Type"] == "AWS::CloudWatch::Alarm":
            params = {k: props[k] for k in ALARM_PARAMETERS if k in props}
            for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
                if key in params:
                    params[key] = int(params[key])
            if "Threshold" in params:
                params["Threshold"] = float(params["Threshold"])
            name = props.get("AlarmName") or f"{resolver.stack}-{lid}"
            resolver.client("cloudwatch").put_metric_alarm(AlarmName=name, **params)
            applied.append(lid)
        elif resource["Type"] == "AWS::SNS::Subscription":
            resolver.client("sns").subscribe(
                TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
            )
            applied.append(lid)
    return applied


# --------------------------------------------------------------------------------------------
# Functions: what a local runner needs to start each one
# --------------------------------------------------------------------------------------------

def _function_ref(node: Any) -> str | None:
    """The logical ID of a function named by Ref / GetAtt Arn / a Sub with ${F.Arn}."""
    if isinstance(node, dict):
        if "Ref" in node:
            return node["Ref"]
        if "Fn::GetAtt" in node:
            value = node["Fn::GetAtt"]
            return value[0] if isinstance(value, list) else value.split(".")[0]
        if "Fn::Sub" in node:
            text = node["Fn::Sub"][0] if isinstance(node["Fn::Sub"], list) else node["Fn::Sub"]
            match = re.search(r"\$\{([A-Za-z0-9]+)\.Arn\}", text)
            return match.group(1) if match else None
    return None


def _stream_source(props: dict, table: str, resolver: StackResolver) -> dict:
    """A DynamoDB stream event source mapping, with Lambda's defaults where the template is silent."""
    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    failure_queue = _function_ref(on_failure) if on_failure else None
    return {
        "streamArn": resolver.get_att(table, "StreamArn"),
        "tableName": resolver.physical_id(table),
        "startingPosition": props.get("StartingPosition", "LATEST"),
        "batchSize": props.get("BatchSize", 100),
        "maximumBatchingWindowInSeconds": props.get("MaximumBatchingWindowInSeconds", 0),
        # -1: retried until the record expires from the stream.
        "maximumRetryAttempts": props.get("MaximumRetryAttempts", -1),
        "bisectBatchOnFunctionError": props.get("BisectBatchOnFunctionError", False),
        "functionResponseTypes": props.get("FunctionResponseTypes", []),
        "onFailureQueueUrl": resolver.get_att(failure_queue, "QueueUrl") if failure_queue else None,
        "onFailureQueueArn": resolver.get_att(failure_queue, "Arn") if failure_queue else None,
    }


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "x-amazon-apigateway-any-method")


def _method_name(method: str) -> str:
    return "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()


def _resolved(resolver: StackResolver, node: Any) -> Any:
    """`node` resolved, or None when it names what the local twin does not create (the
    Cognito user pool's issuer, for a stack provisioned without JwtIssuer)."""
    try:
        return resolver.resolve(node)
    except (KeyError, NotImplementedError):
        return None


def describe_api(expanded: dict, resolver: StackResolver) -> dict:
    """What the HTTP API enforces before any function runs: the stage's throttling, the API's
    authorizers (`components.securitySchemes` of the OpenAPI body SAM generates, with
    `x-amazon-apigateway-authorizer`), and each route's authorization (its operation's
    `security`: the authorizer and its scopes, or NONE)."""
    api: dict[str, Any] = {}
    authorizers: dict[str, dict] = {}
    routes: dict[str, dict] = {}
    for resource in expanded["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGatewayV2::Stage":
            settings = props.get("DefaultRouteSettings", {})
            limits = {"ThrottlingRateLimit": "throttlingRateLimit", "ThrottlingBurstLimit": "throttlingBurstLimit"}
            api.update({ours: float(resolver.resolve(settings[theirs])) for theirs, ours in limits.items()
                        if theirs in settings})
        elif resource["Type"] == "AWS::ApiGatewayV2::Api":
            body = props.get("Body", {})
            for name, scheme in body.get("components", {}).get("securitySchemes", {}).items():
                authorizer = scheme.get("x-amazon-apigateway-authorizer")
                if not authorizer:
                    continue
                sources = str(resolver.resolve(authorizer.get("identitySource", "")))
                entry: dict[str, Any] = {
                    "type": str(authorizer.get("type", "")).lower(),
                    "identitySource": [s.strip() for s in sources.split(",") if s.strip()],
                }
                if entry["type"] == "jwt":
                    jwt = authorizer.get("jwtConfiguration", {})
                    entry["issuer"] = _resolved(resolver, jwt.get("issuer"))
                    audience = _resolved(resolver, jwt.get("audience", []))
                    entry["audience"] = [str(a) for a in audience or [] if a is not None and str(a)]
                authorizers[name] = entry
            for path, methods in body.get("paths", {}).items():
                for method, operation in methods.items():
                    if method not in HTTP_METHODS:
                        continue
                    security = operation.get("security", body.get("security")) or [{}]
                    requirement = security[0] or {"NONE": []}
                    (scheme, scopes), = requirement.items()
                    routes[f"{_method_name(method)} {path}"] = {
                        "authorizer": None if scheme == "NONE" else scheme,
                        "authorizationScopes": [str(resolver.resolve(s)) for s in scopes],
                    }
    api["authorizers"] = authorizers
    api["routes"] = dict(sorted(routes.items()))
    return api


def describe_functions(expanded: dict, resolver: StackResolver) -> dict[str, dict]:
    resources = expanded["Resources"]
    functions: dict[str, dict] = {}
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue  # not in this stack (e.g. the Cognito trigger when another issuer is used)
        props = resource["Properties"]
        logging = props.get("LoggingConfig", {})
        functions[lid] = {
            "binary": resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary"),
            "environment": {
                name: str(resolver.resolve(value))
                for name, value in props.get("Environment", {}).get("Variables", {}).items()
            },
            "timeout": props.get("Timeout", 3),
            "memorySize": props.get("MemorySize", 128),
            "logging": {k: resolver.resolve(v) for k, v in logging.items()},
            "sqs": [],
            "http": [],
            "schedules": [],
            "rules": [],
            "streams": [],
        }

    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            target = _function_ref(props.get("FunctionName"))
            source = props.get("EventSourceArn", {})
            queue = _function_ref(source)
            if target in functions and resources.get(queue, {}).get("Type") == "AWS::DynamoDB::Table":
                functions[target]["streams"].append(_stream_source(props, queue, resolver))
            if target in functions and resources.get(queue, {}).get("Type") == "AWS::SQS::Queue":
                functions[target]["sqs"].append({
                    "queueUrl": resolver.get_att(queue, "QueueUrl"),
                    "queueArn": resolver.get_att(queue, "Arn"),
                    "batchSize": props.get("BatchSize", 10),
                    "maximumBatchingWindowInSeconds": props.get("MaximumBatchingWindowInSeconds", 0),
                    "functionResponseTypes": props.get("FunctionResponseTypes", []),
                    "maximumConcurrency": props.get("ScalingConfig", {}).get("MaximumConcurrency"),
                })
        elif resource["Type"] == "AWS::ApiGatewayV2::Api":
            for path, methods in props.get("Body", {}).get("paths", {}).items():
                for method, operation in methods.items():
                    integration = operation.get("x-amazon-apigateway-integration", {})
                    target = _function_ref(integration.get("uri"))
                    if target in functions:
                        functions[target]["http"].append({"method": _method_name(method), "path": path})
        elif resource["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in props:
            for target in props.get("Targets", []):
                name = _function_ref(target.get("Arn"))
                if name in functions:
                    functions[name]["schedules"].append(props["ScheduleExpression"])
    # The EventBridge rules feeding each function's queues: what events reach it.
    queue_of = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            queue_of[_function_ref(props.get("EventSourceArn", {}))] = _function_ref(props.get("FunctionName"))
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule" and "EventPattern" in props:
            for target in props.get("Targets", []):
                function = queue_of.get(_function_ref(target.get("Arn")))
                if function in functions:
                    functions[function]["rules"].append(props["EventPattern"])
    for info in functions.values():
        info["http"].sort(key=lambda r: (r["path"], r["method"]))
    return functions


# --------------------------------------------------------------------------------------------
# Provision / seed / outputs
# --------------------------------------------------------------------------------------------

def session():
    import boto3

    return boto3.session.Session(region_name=REGION, **DUMMY_CREDENTIALS)


def _wait_for_stack(cfn, stack: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = description["StackStatus"]
        if status == "CREATE_COMPLETE":
            return description
        if status.endswith("FAILED") or status.startswith("ROLLBACK") or status.startswith("DELETE"):
            events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                       if e.get("ResourceStatusReason")]
            raise RuntimeError(f"stack {stack} ended in {status}: {reasons}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack} still {status} after {timeout}s")
        time.sleep(0.5)


def _delete_stack(cfn, stack: str) -> None:
    try:
        cfn.delete_stack(StackName=stack)
    except cfn.exceptions.ClientError:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError:
            return
        if status == "DELETE_COMPLETE":
            return
        time.sleep(0.5)
    raise TimeoutError(f"stack {stack} was not deleted within 60s")


def provision(endpoint: str, stack: str, out: Path | None = None, parameters: dict[str, str] | None = None,
              template_path: Path = TEMPLATE, api_url: str | None = None, replace: bool = False,
              local_only: dict[str, str] | None = None) -> dict:
    """Creates the stack in moto and returns (and writes, if `out`) the stack file.

    `parameters` are checked against the template's constraints, as CloudFormation checks
    them. `local_only` are values a deploy would refuse that the local twin takes anyway, on
    purpose and named as such (the demo's second-scale visibility timeout and grace period,
    the benchmark's lifted throttle): they are recorded in the stack file as `localOnly`."""
    template = load_template(template_path)
    errors = parameter_errors(template, dict(parameters or {}))
    if errors:
        raise ParameterInvalid("; ".join(errors))
    unknown = [name for name in (local_only or {}) if name not in template.get("Parameters", {})]
    if unknown:
        raise ParameterInvalid(f"{', '.join(unknown)}: not a parameter of the template")
    parameters = {**(parameters or {}), **(local_only or {})}
    expanded = expand(template, parameters)
    cfn_template, _dropped = split(expanded, parameters)
    aws = session()
    cfn = aws.client("cloudformation", endpoint_url=endpoint)
    if replace:
        _delete_stack(cfn, stack)
    # create_stack, not a change set / deploy: moto leaves a deployed stack's outputs empty.
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    description = _wait_for_stack(cfn, stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    if api_url:
        # The HTTP API is not in moto: whatever serves the functions locally stands in for it.
        outputs["ApiUrl"] = api_url

    resolver = StackResolver(aws, endpoint, stack, parameters, expanded)
    apply_skipped(cfn_template, resolver)
    # The e-mail consumer sends from this identity; SES (and moto) refuse unverified senders.
    sender = resolver.parameters.get("SenderEmail")
    if sender:
        resolver.client("ses").verify_email_identity(EmailAddress=sender)

    stack_file = {
        "stackName": stack,
        "endpoint": endpoint,
        "region": REGION,
        "outputs": dict(sorted(outputs.items())),
        "functions": describe_functions(expanded, resolver),
        "api": describe_api(expanded, resolver),
        "localOnly": dict(sorted((local_only or {}).items())),
    }
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(stack_file, indent=2) + "\n")
    return stack_file


def _item(values: dict) -> dict:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in values.items()}


def seed(stack_file: dict, seed_data: dict, endpoint: str | None = None) -> dict[str, int]:
    """Puts the seed products and customers into the stack's tables."""
    dynamodb = session().client("dynamodb", endpoint_url=endpoint or stack_file["endpoint"])
    products = stack_file["outputs"]["ProductsTableName"]
    customers = stack_file["outputs"]["CustomersTableName"]
    for p in seed_data.get("products", []):
        dynamodb.put_item(TableName=products, Item=_item({
            "sku": p["sku"],
            "name": p["name"],
            "unitPrice": int(p["unitPrice"]),
            "currency": p["currency"],
            "available": int(p["available"]),
            "reserved": int(p.get("reserved", 0)),
            "lowStockThreshold": int(p.get("lowStockThreshold", 0)),
        }))
    for c in seed_data.get("customers", []):
        dynamodb.put_item(TableName=customers, Item=_item({
            "customerId": c["customerId"], "email": c["email"], "name": c["name"],
        }))
    return {"products": len(seed_data.get("products", [])), "customers": len(seed_data.get("customers", []))}


# --------------------------------------------------------------------------------------------
# A moto server for tests and local runs
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int | None = None, log: Path | None = None, timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Starts `moto_server` on 127.0.0.1 and waits until it answers. The caller stops it with
    `stop_moto(process)` (by its PID, never by name)."""
    port = port or free_port()
    executable = Path(sys.executable).parent / "moto_server"
    sink = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return process, endpoint
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            if time.monotonic() > deadline:
                stop_moto(process)
                raise TimeoutError(f"moto_server did not answer on {endpoint} within {timeout}s")
            time.sleep(0.2)


def stop_moto(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _parameters(pairs: Iterable[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--param expects KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("provision", help="create the template's stack in a moto server")
    p.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--stack", required=True, help="stack name")
    p.add_argument("--out", required=True, type=Path, help="stack file to write")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="template parameter")
    p.add_argument("--local-only-param", action="append", default=[], metavar="K=V",
                   help="a value AWS would refuse, taken by the local twin only (printed as such)")
    p.add_argument("--template", type=Path, default=TEMPLATE)
    p.add_argument("--api-url", help="URL of the local HTTP front, recorded as the ApiUrl output")
    p.add_argument("--replace", action="store_true", help="delete a stack of that name first (its data goes too)")

    s = commands.add_parser("seed", help="put seed products and customers into the stack's tables")
    s.add_argument("--endpoint", help="defaults to the stack file's endpoint")
    s.add_argument("--stack-file", required=True, type=Path)
    s.add_argument("--seed", type=Path, default=Path(__file__).with_name("seed.json"))

    o = commands.add_parser("outputs", help="print a stack file's outputs")
    o.add_argument("--stack-file", required=True, type=Path)
    o.add_argument("--map", action="store_true", help="a {key: value} object instead of sam's list shape")

    args = parser.parse_args(argv)
    if args.command == "provision":
        try:
            local_only = _parameters(args.local_only_param)
            for name, value in local_only.items():
                print(f"local only: {name}={value} (a deploy would refuse it)", file=sys.stderr)
            result = provision(args.endpoint, args.stack, args.out, _parameters(args.param), args.template,
                               args.api_url, args.replace, local_only)
        except (RuleFailed, ParameterInvalid) as error:
            raise SystemExit(f"the template refuses these parameters: {error}")
        except Exception as error:  # noqa: BLE001 - one readable line for the CLI
            if type(error).__name__ == "AlreadyExistsException":
                raise SystemExit(f"stack {args.stack} already exists at {args.endpoint}: pass --replace or another --stack")
            raise
        print(f"stack {args.stack}: {len(result['outputs'])} outputs, {len(result['functions'])} functions -> {args.out}")
    elif args.command == "seed":
        counts = seed(json.loads(args.stack_file.read_text()), json.loads(args.seed.read_text()), args.endpoint)
        print(f"seeded {counts['products']} products and {counts['customers']} customers")
    elif args.command == "outputs":
        outputs = json.loads(args.stack_file.read_text())["outputs"]
        if args.map:
            print(json.dumps(outputs, indent=2))
        else:
            print(json.dumps([{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
