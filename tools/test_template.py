"""Operations, checked on template.yaml: every queue, dead-letter queue, rule and function has its
alarm and its dashboard widget, every alarm pages the ops topic with a runbook, the dashboard
shows only metrics that exist, the parameters admit only values that deploy, the tables that
are the source of truth outlive the stack, and the five consumers are wired identically.

The template is read as tools/localstack.py reads it (short tags parsed by the SAM translator's
YAML loader) and, where SAM's output matters (the functions it creates), expanded the same way.
Each check is a function returning the problems it finds, so that a test can also show that
it catches a template wired wrong (a consumer copied without its alarms, a misspelt metric, a
stage too long for the archive's name).

Consumers are explicit blocks in template.yaml rather than a Fn::ForEach (see the comment at
the top of its consumers' section): `consumer_shape_problems` is what keeps them identical.

    .venv/bin/python -m pytest tools/test_template.py
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localstack  # noqa: E402

# --------------------------------------------------------------------------------------------
# The metrics that exist
# --------------------------------------------------------------------------------------------

CONSUMER_SERVICES = ("email", "inventory", "analytics", "loyalty", "recommendations")
HARNESS_METRICS = {"EventsProcessed", "EventsDuplicate", "EventsPoison", "EventsFailed", "EventAgeMilliseconds"}

# Namespace Shop, by `service`: the catalogue the functions emit (shared::telemetry, issue 11).
SHOP: dict[str, set[str]] = {
    "checkout": {"OrdersPlaced", "OrdersRejected", "IdempotentReplays", "SagaStepMilliseconds", "PutEventsFailed"},
    **{service: HARNESS_METRICS for service in (*CONSUMER_SERVICES, "order-projector")},
    "outbox-relay": {"OutboxRelayed", "OutboxRetried", "OutboxStuck", "OldestOutboxEntryAgeSeconds"},
    "sweeper": {"OrdersSettledPlaced", "OrdersSettledExpired", "OrdersSettledOther", "OrdersSettleFailed",
                "OrdersRefunded", "OldestOpenOrderAgeSeconds"},
}
# The dimensions a Shop metric has besides `service`, and the values they take.
REJECTION_REASONS = {"unknown-sku", "currency-not-offered", "unpriceable", "insufficient-stock", "payment-declined",
                     "order-expired"}
SHOP_EXTRA_DIMENSIONS: dict[str, dict[str, set[str]]] = {
    "OrdersRejected": {"reason": REJECTION_REASONS},
    "SagaStepMilliseconds": {"step": {"price", "reserve", "charge", "commit", "publish"}},
    "EventsFailed": {"errorKind": {"transient", "conflict", "permanent", "rejected"}},
}

# AWS namespaces: the metrics used here, and the one dimension set each is published with (for
# AWS/Events, the set of a rule on a custom bus; for AWS/ApiGateway, an HTTP API's API level).
AWS: dict[str, tuple[set[str], set[str]]] = {
    "AWS/ApiGateway": ({"Count", "4xx", "5xx", "Latency", "IntegrationLatency", "DataProcessed"}, {"ApiId"}),
    "AWS/Lambda": ({"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions", "IteratorAge"},
                   {"FunctionName"}),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent", "NumberOfMessagesReceived",
                 "NumberOfMessagesDeleted"}, {"QueueName"}),
    "AWS/Events": ({"MatchedEvents", "Invocations", "FailedInvocations", "InvocationsSentToDlq",
                    "InvocationsFailedToBeSentToDlq"}, {"EventBusName", "RuleName"}),
}
# What each AWS dimension names: (resource types it may name, the attribute naming it).
DIMENSION_TARGETS = {
    "ApiId": ({"AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"}, None),
    "FunctionName": ({"AWS::Serverless::Function", "AWS::Lambda::Function"}, None),
    "QueueName": ({"AWS::SQS::Queue"}, "QueueName"),
    "EventBusName": ({"AWS::Events::EventBus"}, "Name"),
    "RuleName": ({"AWS::Events::Rule"}, "Name"),
}

# A rule's deliveries that did not reach its target: failed for good, sent to the target's DLQ,
# and lost because even that failed.
RULE_DELIVERY_METRICS = {"FailedInvocations", "InvocationsSentToDlq", "InvocationsFailedToBeSentToDlq"}

MISSING_DATA = {"breaching", "notBreaching", "ignore", "missing"}
# Alarms whose metric is reported on every run of a scheduled function: no data means it stopped.
BREACH_WHEN_SILENT = {"OutboxStuckAlarm", "StuckOrdersAlarm"}

# Tables: the source of truth (retained) and what can be rebuilt or is transient (not). Every
# table must be in one of the two, so that a new table forces the decision (template.yaml,
# the comment above the tables, says why each is where it is).
SOURCE_OF_TRUTH = {"OrdersTable", "ProductsTable", "CustomersTable", "LoyaltyTable", "SandboxPaymentsTable",
                   "IdempotencyTable", "ProcessedEventsTable"}
REBUILDABLE = {"OrderViewsTable", "AnalyticsTable", "RecommendationsTable", "OutboxTable"}

# Names built from Stage: the limit and the characters of the service that holds them.
NAME_LIMITS: dict[tuple[str, str], tuple[int, str]] = {
    ("AWS::Events::EventBus", "Name"): (256, r"[/\.\-_A-Za-z0-9]+"),
    ("AWS::Events::Archive", "ArchiveName"): (48, r"[\.\-_A-Za-z0-9]+"),
    ("AWS::CloudWatch::Dashboard", "DashboardName"): (255, r"[A-Za-z0-9_\-]+"),
    ("AWS::SNS::Topic", "DisplayName"): (100, r"[^\x00-\x1f]+"),
    ("AWS::EventSchemas::Registry", "RegistryName"): (64, r"[\.\-_A-Za-z0-9@]+"),
}
# Texts that mention the stage, not names (an alarm description's length is checked with the runbooks).
NOT_NAMES = {("AWS::CloudWatch::Dashboard", "DashboardBody"), ("AWS::CloudWatch::Alarm", "AlarmDescription")}

SQS_MAX_VISIBILITY_TIMEOUT = 43200
# The pieces of a consumer's block, after its name prefix (Email -> EmailQueue, ...).
CONSUMER_BLOCK = ("Function", "FunctionOrderEvents", "Queue", "DeadLetterQueue", "Rule", "QueuePolicy",
                  "DeadLetterAlarm", "QueueAgeAlarm", "FunctionErrorsAlarm", "RuleDeliveryAlarm")


# --------------------------------------------------------------------------------------------
# Reading the template
# --------------------------------------------------------------------------------------------

def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def target(node: Any) -> tuple[str, str | None] | None:
    """What an intrinsic names, as (logical ID, attribute): Ref -> (X, None), GetAtt X.Y -> (X, Y),
    the rule-name idiom Select(2, Split("/", GetAtt Rule.Arn)) -> (Rule, "Name"), and for an
    Fn::If the branch with a resource in it."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    (key, value), = node.items()
    if key == "Ref":
        return value, None
    if key == "Fn::GetAtt":
        logical, attribute = value if isinstance(value, list) else value.split(".", 1)
        return logical, attribute
    if key == "Fn::Select":
        split = value[1].get("Fn::Split") if str(value[0]) == "2" and isinstance(value[1], dict) else None
        named = target(split[1]) if split and split[0] == "/" else None
        return (named[0], "Name") if named and named[1] == "Arn" else None
    if key == "Fn::If":
        return target(value[1]) or target(value[2])
    return None


# --------------------------------------------------------------------------------------------
# Alarms
# --------------------------------------------------------------------------------------------

def alarm_metrics(props: dict) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(namespace, metric, {dimension: value node}, statistic) of every metric an alarm reads."""
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        return [(props["Namespace"], props["MetricName"], dims, props.get("Statistic"))]
    found = []
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dims, query["MetricStat"].get("Stat")))
    return found


def alarms_on(template: dict, namespace: str, metric: str, dimension: str) -> dict[tuple[str, str | None], list[str]]:
    """(logical ID, attribute) a dimension names -> the alarms reading `metric` by it."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for lid, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        for ns, name, dims, _stat in alarm_metrics(alarm["Properties"]):
            if (ns, name) == (namespace, metric) and dimension in dims and target(dims[dimension]):
                found.setdefault(target(dims[dimension]), []).append(lid)
    return found


def queue_roles(template: dict) -> tuple[set[str], set[str]]:
    """The dead-letter queues (a redrive target, a rule target's DLQ, a stream mapping's on-failure
    destination) and the consumers' queues (the source of an SQS event source mapping)."""
    dlqs, sources = set(), set()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            dlqs.add(target(props["RedrivePolicy"]["deadLetterTargetArn"])[0])
        if resource["Type"] == "AWS::Events::Rule":
            for t in props.get("Targets", []):
                if "DeadLetterConfig" in t:
                    dlqs.add(target(t["DeadLetterConfig"]["Arn"])[0])
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            source = target(props["EventSourceArn"])[0]
            if template["Resources"][source]["Type"] == "AWS::SQS::Queue":
                sources.add(source)
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if on_failure:
                dlqs.add(target(on_failure)[0])
    return dlqs, sources


def queue_rules(template: dict) -> dict[str, list[dict]]:
    """Rules that deliver to a queue of the stack -> their targets."""
    queues = of_type(template, "AWS::SQS::Queue")
    return {lid: [t for t in rule["Properties"].get("Targets", []) if target(t["Arn"])[0] in queues]
            for lid, rule in of_type(template, "AWS::Events::Rule").items()
            if any(target(t["Arn"]) and target(t["Arn"])[0] in queues for t in rule["Properties"].get("Targets", []))}


def functions(expanded: dict) -> dict[str, dict]:
    return of_type(expanded, "AWS::Lambda::Function")


def missing_alarms(template: dict, expanded: dict) -> list[str]:
    """What has no alarm: every DLQ (first message), every consumer queue (age of its oldest
    message over ConsumerAgeAlarmSeconds), every function (errors), every rule delivering to a
    queue (failed or dead-lettered deliveries); and any queue that is neither."""
    problems = []
    dlqs, sources = queue_roles(template)
    for queue in sorted(set(of_type(template, "AWS::SQS::Queue")) - dlqs - sources):
        problems.append(f"{queue} is neither a dead-letter queue nor a consumer's queue: decide its alarm")
    depth = alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    for dlq in sorted(dlqs):
        good = [a for a in depth.get((dlq, "QueueName"), [])
                if template["Resources"][a]["Properties"].get("Threshold") == 0
                and template["Resources"][a]["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"]
        if not good:
            problems.append(f"{dlq}: no alarm on its first message (ApproximateNumberOfMessagesVisible > 0)")
    age = alarms_on(template, "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName")
    for queue in sorted(sources):
        good = [a for a in age.get((queue, "QueueName"), [])
                if template["Resources"][a]["Properties"].get("Threshold") == {"Ref": "ConsumerAgeAlarmSeconds"}]
        if not good:
            problems.append(f"{queue}: no ApproximateAgeOfOldestMessage alarm over ConsumerAgeAlarmSeconds")
    errors = alarms_on(template, "AWS/Lambda", "Errors", "FunctionName")
    for function, resource in sorted(functions(expanded).items()):
        alarms = errors.get((function, None), [])
        if not alarms:
            problems.append(f"{function}: no Errors alarm")
        for alarm in alarms:
            if template["Resources"][alarm].get("Condition") != resource.get("Condition"):
                problems.append(f"{alarm}: its Condition differs from {function}'s")
    for rule in sorted(queue_rules(template)):
        unwatched = sorted(m for m in RULE_DELIVERY_METRICS if not rule_alarmed(template, rule, m))
        if unwatched:
            problems.append(f"{rule}: no alarm on {unwatched}")
    return problems


def rule_alarmed(template: dict, rule: str, metric: str) -> bool:
    """An alarm reads `metric` of `rule` on its bus, by both dimensions a custom bus's rule has."""
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        for ns, name, dims, _stat in alarm_metrics(alarm["Properties"]):
            if (ns, name) == ("AWS/Events", metric) and set(dims) == {"EventBusName", "RuleName"} \
                    and target(dims["RuleName"]) == (rule, "Name"):
                bus = target(template["Resources"][rule]["Properties"]["EventBusName"])
                if target(dims["EventBusName"]) == (bus[0], "Name"):
                    return True
    return False


# --------------------------------------------------------------------------------------------
# The dashboard
# --------------------------------------------------------------------------------------------

def dashboard(template: dict) -> tuple[str, dict, dict]:
    """(logical ID, the parsed body with every Sub variable replaced by a token, the variables)."""
    (lid, resource), = of_type(template, "AWS::CloudWatch::Dashboard").items()
    return (lid, *parse_body(template, resource["Properties"]["DashboardBody"]))


def parse_body(template: dict, sub: Any) -> tuple[dict, dict]:
    """A !Sub'd JSON body as JSON: `${Param}` becomes the parameter's default (numbers stay
    numbers), `${AWS::Region}` a region, and every other variable a token "${...}" kept as a
    string, which `body_target` maps back to what it names."""
    text, variables = (sub["Fn::Sub"] + [{}])[:2] if isinstance(sub["Fn::Sub"], list) else (sub["Fn::Sub"], {})
    parameters = template.get("Parameters", {})

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name in parameters and name not in variables:
            return str(parameters[name]["Default"])
        if name.startswith("AWS::"):
            return localstack.PSEUDO.get(name) or "pseudo"
        return "<<" + name + ">>"

    return json.loads(re.sub(r"\$\{([^}!]+)\}", substitute, text)), variables


def body_target(template: dict, variables: dict, value: Any) -> tuple[str, str | None] | None:
    """What a dashboard dimension value names: "<<X>>" a Ref, "<<X.Attr>>" a GetAtt, "<<Var>>"
    whatever the Sub variable's value names."""
    match = re.fullmatch(r"<<([^>]+)>>", str(value))
    if not match:
        return None
    name = match.group(1)
    if name in variables:
        return target(variables[name])
    logical, _, attribute = name.partition(".")
    return (logical, attribute or None) if logical in template["Resources"] else None


def metric_widgets(body: dict) -> Iterator[dict]:
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            yield widget


def widget_metrics(widget: dict) -> Iterator[tuple[str, str, dict[str, Any], dict]]:
    """(namespace, metric, {dimension: value}, options) of each metric row of a metric widget
    (expression rows skipped). The "." shorthand (repeat the row above) is not used here, so
    every row can be read on its own."""
    for row in widget["properties"]["metrics"]:
        if isinstance(row[0], dict):
            continue
        options = row[-1] if isinstance(row[-1], dict) else {}
        plain = row[:-1] if options else row
        assert "." not in plain, f"{widget['properties']['title']}: spell metric rows out, no '.' shorthand"
        namespace, metric, *pairs = plain
        yield namespace, metric, dict(zip(pairs[::2], pairs[1::2])), options


def unknown_metrics(template: dict, body: dict, variables: dict) -> list[str]:
    """Dashboard metrics that no function emits and AWS does not publish, or read by dimensions
    they are not published with, or naming a resource of the wrong kind."""
    problems = []
    for widget in metric_widgets(body):
        title = widget["properties"]["title"]
        for namespace, metric, dims, _options in widget_metrics(widget):
            problems += metric_problems(template, f"{title}: {namespace}/{metric}", namespace, metric,
                                        {d: body_target(template, variables, v) or v for d, v in dims.items()})
    return problems


def metric_problems(template: dict, where: str, namespace: str, metric: str, dims: dict[str, Any]) -> list[str]:
    """`dims` maps a dimension to a literal value or to the (logical ID, attribute) it names."""
    if namespace == "Shop":
        service = dims.get("service")
        if service not in SHOP:
            return [f"{where}: no service {service!r} emits Shop metrics"]
        if metric not in SHOP[service]:
            return [f"{where}: service {service} emits no {metric}"]
        extra = SHOP_EXTRA_DIMENSIONS.get(metric, {})
        problems = []
        for dimension, value in dims.items():
            if dimension == "service":
                continue
            if dimension not in extra:
                problems.append(f"{where}: no dimension {dimension}")
            elif value not in extra[dimension]:
                problems.append(f"{where}: {dimension} is never {value!r}")
        return problems
    if namespace not in AWS:
        return [f"{where}: namespace {namespace} is neither Shop nor one this stack's services publish to"]
    names, dimension_set = AWS[namespace]
    if metric not in names:
        return [f"{where}: {namespace} has no metric {metric}"]
    if set(dims) != dimension_set:
        return [f"{where}: published by {sorted(dimension_set)}, read by {sorted(dims)}"]
    problems = []
    for dimension, value in dims.items():
        kinds, attribute = DIMENSION_TARGETS[dimension]
        named = value if isinstance(value, tuple) else None
        if not named or named[0] not in template["Resources"] \
                or template["Resources"][named[0]]["Type"] not in kinds or named[1] != attribute:
            problems.append(f"{where}: {dimension} must name a {sorted(kinds)} by {attribute or 'Ref'}, not {value!r}")
    return problems


def shown(template: dict, body: dict, variables: dict, namespace: str, dimension: str) -> dict[tuple, set]:
    """(logical ID, attribute) -> {(metric, statistic)} shown for it in the dashboard."""
    found: dict[tuple, set] = {}
    for widget in metric_widgets(body):
        default_stat = widget["properties"].get("stat", "Average")
        for ns, metric, dims, options in widget_metrics(widget):
            if ns == namespace and dimension in dims:
                named = body_target(template, variables, dims[dimension])
                if named:
                    found.setdefault(named, set()).add((metric, options.get("stat", default_stat)))
    return found


def missing_widgets(template: dict, expanded: dict) -> list[str]:
    """What the dashboard does not show: every queue and DLQ (depth), every consumer queue (age
    of its oldest message), every function (errors, throttles, duration p50 and p99), every rule
    delivering to a queue (its deliveries), every consumer's harness metrics."""
    _lid, body, variables = dashboard(template)
    problems = []
    queues = shown(template, body, variables, "AWS/SQS", "QueueName")
    dlqs, sources = queue_roles(template)
    for queue in sorted(of_type(template, "AWS::SQS::Queue")):
        metrics = {m for m, _s in queues.get((queue, "QueueName"), set())}
        if "ApproximateNumberOfMessagesVisible" not in metrics:
            problems.append(f"{queue}: no widget of its depth")
        if queue in sources and "ApproximateAgeOfOldestMessage" not in metrics:
            problems.append(f"{queue}: no widget of its oldest message's age")
    lambdas = shown(template, body, variables, "AWS/Lambda", "FunctionName")
    wanted = {("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "p50"), ("Duration", "p99")}
    for function in sorted(functions(expanded)):
        lacking = wanted - lambdas.get((function, None), set())
        if lacking:
            problems.append(f"{function}: no widget of {sorted(lacking)}")
    rules = shown(template, body, variables, "AWS/Events", "RuleName")
    for rule in sorted(queue_rules(template)):
        metrics = {m for m, _s in rules.get((rule, "Name"), set())}
        if not RULE_DELIVERY_METRICS <= metrics:
            problems.append(f"{rule}: no widget of its failed and dead-lettered deliveries")
    services = {}
    for widget in metric_widgets(body):
        for ns, metric, dims, _options in widget_metrics(widget):
            if ns == "Shop":
                services.setdefault(dims.get("service"), set()).add(metric)
    for consumer in consumers(template).values():
        lacking = HARNESS_METRICS - services.get(consumer["service"], set())
        if lacking:
            problems.append(f"consumer {consumer['service']}: no widget of {sorted(lacking)}")
    return problems


# --------------------------------------------------------------------------------------------
# Consumers
# --------------------------------------------------------------------------------------------

def consumers(template: dict) -> dict[str, dict]:
    """Every SQS-fed function, by its name prefix (EmailFunction -> Email), with its service name
    (the binary, which is also its `service` dimension)."""
    found = {}
    for lid, mapping in of_type(template, "AWS::Lambda::EventSourceMapping").items():
        source = target(mapping["Properties"]["EventSourceArn"])[0]
        if template["Resources"][source]["Type"] != "AWS::SQS::Queue":
            continue
        function = target(mapping["Properties"]["FunctionName"])[0]
        prefix = function.removesuffix("Function")
        binary = template["Resources"][function].get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        found[prefix] = {"function": function, "mapping": lid, "queue": source, "service": binary}
    return found


def normalised_block(template: dict, prefix: str, service: str) -> dict[str, Any]:
    """A consumer's block with its name replaced by placeholders, minus what may differ between
    consumers: the function's description, its own environment and statements (its business:
    tables, SES, the bus), and the rule's pattern and description."""
    resources = template["Resources"]
    block = {}
    for suffix in CONSUMER_BLOCK:
        resource = copy.deepcopy(resources.get(prefix + suffix))
        if resource is None:
            block[suffix] = None
            continue
        props = resource.get("Properties", {})
        if suffix == "Function":
            props.pop("Description", None)
            variables = props.get("Environment", {}).get("Variables", {})
            props["Environment"] = {"Variables": {k: v for k, v in variables.items()
                                                  if k in ("PROCESSED_EVENTS_TABLE", "DEAD_LETTER_QUEUE_URL")}}
            for policy in props.get("Policies", []):
                policy["Statement"] = [s for s in policy["Statement"]
                                       if s.get("Sid") in ("PollOwnQueue", "SendDeadLetters")]
        if suffix == "Rule":
            props.pop("EventPattern", None)
            props.pop("Description", None)
        text = json.dumps(resource, sort_keys=True)
        text = re.sub(rf"\b{prefix}(?=[A-Z]|\b)", "<Consumer>", text)
        text = re.sub(rf"\b{service}\b", "<consumer>", text)
        block[suffix] = json.loads(text)
    return block


def consumer_shape_problems(template: dict) -> list[str]:
    """Differences between the consumers' blocks (each compared with the first), pieces missing,
    and consumers not named as the block expects (Function, Queue from one prefix)."""
    found = consumers(template)
    problems = []
    for prefix, consumer in found.items():
        if consumer["queue"] != prefix + "Queue" or consumer["mapping"] != prefix + "FunctionOrderEvents":
            problems.append(f"{consumer['function']}: its queue and mapping must be {prefix}Queue and "
                            f"{prefix}FunctionOrderEvents")
        if consumer["service"] != prefix.lower():
            problems.append(f"{consumer['function']}: its binary (the service dimension) must be {prefix.lower()}")
        for suffix in CONSUMER_BLOCK:
            if prefix + suffix not in template["Resources"]:
                problems.append(f"consumer {prefix}: no {prefix}{suffix}")
    if not found:
        return problems + ["no consumers found"]
    first, *others = sorted(found)
    reference = normalised_block(template, first, found[first]["service"])
    for prefix in others:
        block = normalised_block(template, prefix, found[prefix]["service"])
        for suffix in CONSUMER_BLOCK:
            if block[suffix] != reference[suffix] and block[suffix] is not None and reference[suffix] is not None:
                problems.append(f"{prefix}{suffix} is wired differently from {first}{suffix}")
    return problems


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

def longest_allowed(spec: dict) -> str:
    """The longest value a String parameter's MaxLength allows, of the characters its
    AllowedPattern accepts (letters, digits, '-' and '_' mixed, to try each)."""
    value = ("A" + "z9-_" * 64)[: spec["MaxLength"]]
    assert re.fullmatch(spec["AllowedPattern"], value), f"{value!r} should match {spec['AllowedPattern']}"
    return value


def stage_name_problems(template: dict, stage: str) -> list[str]:
    """Every name a resource builds from Stage, with `stage`, checked against its service's limit."""
    problems = []
    for lid, resource in template["Resources"].items():
        for prop, value in resource.get("Properties", {}).items():
            if not (isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str)):
                continue
            if "${Stage}" not in value["Fn::Sub"] or (resource["Type"], prop) in NOT_NAMES:
                continue
            if (resource["Type"], prop) not in NAME_LIMITS:
                problems.append(f"{lid}.{prop} is built from Stage but has no known limit here")
                continue
            limit, characters = NAME_LIMITS[(resource["Type"], prop)]
            name = value["Fn::Sub"].replace("${Stage}", stage)
            if len(name) > limit:
                problems.append(f"{lid}.{prop} {name!r} is {len(name)} characters, over {limit}")
            if not re.fullmatch(characters, name):
                problems.append(f"{lid}.{prop} {name!r} has characters outside {characters}")
    return problems


def satisfies(spec: dict, value: str) -> bool:
    """Whether CloudFormation accepts `value` for a parameter (AllowedPattern is a whole-value match)."""
    if spec["Type"] == "Number":
        number = float(value)
        return spec.get("MinValue", number) <= number <= spec.get("MaxValue", number)
    return (len(value) <= spec.get("MaxLength", len(value)) and len(value) >= spec.get("MinLength", 0)
            and value in spec.get("AllowedValues", [value])
            and ("AllowedPattern" not in spec or re.fullmatch(spec["AllowedPattern"], value) is not None))


def timeout_of(template: dict, function: str) -> int:
    return template["Resources"][function]["Properties"].get("Timeout", template["Globals"]["Function"]["Timeout"])


# ============================================================================================
# Tests: alarms
# ============================================================================================

def test_every_dlq_queue_function_and_queue_rule_has_its_alarm(template, expanded):
    assert missing_alarms(template, expanded) == []


def test_every_alarm_notifies_the_ops_topic_when_it_fires_and_when_it_clears(template):
    for lid, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "OpsTopic"}], lid
        assert props["OKActions"] == [{"Ref": "OpsTopic"}], lid


def description(template: dict, alarm: str, stage: str = "dev") -> str:
    """An alarm's description as CloudWatch gets it (a !Sub names the stage's dashboard)."""
    text = template["Resources"][alarm]["Properties"]["AlarmDescription"]
    text = text["Fn::Sub"] if isinstance(text, dict) else text
    assert isinstance(text, str) and not set(re.findall(r"\$\{([^}]+)\}", text)) - {"Stage"}, alarm
    return text.replace("${Stage}", stage)


def test_every_alarm_description_is_a_runbook_line_what_it_means_where_to_look_what_to_do(template):
    longest = longest_allowed(template["Parameters"]["Stage"])
    for lid in of_type(template, "AWS::CloudWatch::Alarm"):
        text = description(template, lid, longest)
        assert len(text) <= 1024, f"{lid}: CloudWatch takes 1024 characters, this is {len(text)}"
        what, look, do = (text.find(part) for part in ("What: ", "Look: ", "Do: "))
        assert what == 0 and what < look < do, f"{lid}: 'What: ... Look: ... Do: ...', got {text!r}"


def test_every_consumer_alarm_names_the_ops_cli_for_its_dead_letters(template):
    for prefix, consumer in consumers(template).items():
        description_ = description(template, f"{prefix}DeadLetterAlarm")
        assert f"shop-ops dlq show {consumer['service']}" in description_
        assert f"shop-ops dlq redrive {consumer['service']}" in description_


def test_every_alarm_says_how_missing_data_counts_and_only_silent_reporters_breach(template):
    for lid, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        treat = alarm["Properties"].get("TreatMissingData")
        assert treat in MISSING_DATA, f"{lid}: TreatMissingData must be explicit"
        assert (treat == "breaching") == (lid in BREACH_WHEN_SILENT), lid


def test_every_alarm_reads_metrics_that_exist_by_the_dimensions_they_are_published_with(template):
    problems = []
    for lid, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        for namespace, metric, dims, _stat in alarm_metrics(alarm["Properties"]):
            named = {d: target(v) or v for d, v in dims.items()}
            problems += metric_problems(template, f"{lid}: {namespace}/{metric}", namespace, metric, named)
    assert problems == []


def test_the_api_alarm_is_the_share_of_requests_answered_5xx_not_a_count(template):
    props = template["Resources"]["ApiServerErrorRateAlarm"]["Properties"]
    queries = {q["Id"]: q for q in props["Metrics"]}
    assert queries["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    assert queries["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    (returned,) = [q for q in props["Metrics"] if q.get("ReturnData", True)]
    assert "errors" in returned["Expression"] and "/ requests" in returned["Expression"]
    assert 0 < props["Threshold"] < 100


def test_the_alarms_provision_locally_through_put_metric_alarm_parameters(template):
    """apply_skipped passes only ALARM_PARAMETERS on (metric math included): an alarm property
    outside them would be silently dropped in the local twin."""
    for lid, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        assert set(alarm["Properties"]) <= set(localstack.ALARM_PARAMETERS), lid


# ============================================================================================
# Tests: the dashboard
# ============================================================================================

def test_the_dashboard_body_is_json_once_its_sub_variables_are_substituted(template):
    _lid, body, variables = dashboard(template)
    assert body["widgets"]
    text = template["Resources"]["ShopDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    used = set(re.findall(r"\$\{([^}!.]+)", text))
    assert set(variables) <= used, f"variables never used: {set(variables) - used}"


def test_the_dashboard_shows_only_metrics_that_exist(template):
    _lid, body, variables = dashboard(template)
    assert unknown_metrics(template, body, variables) == []


def test_every_queue_dlq_rule_function_and_consumer_has_its_dashboard_widget(template, expanded):
    assert missing_widgets(template, expanded) == []


def test_the_dashboard_widgets_fit_the_grid_without_overlapping(template):
    _lid, body, _variables = dashboard(template)
    taken: dict[tuple[int, int], str] = {}
    for widget in body["widgets"]:
        name = widget["properties"].get("title") or widget["properties"].get("markdown", "")[:30]
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24, name
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in taken, f"{name} overlaps {taken[(x, y)]}"
                taken[(x, y)] = name


def test_the_dashboard_lays_each_consumer_out_in_event_order_left_to_right(template):
    _lid, body, variables = dashboard(template)
    for prefix, consumer in consumers(template).items():
        stages = {"rule": (prefix + "Rule", "Name"), "queue": (consumer["queue"], "QueueName"),
                  "function": (consumer["function"], None), "dlq": (prefix + "DeadLetterQueue", "QueueName")}
        x_of = {}
        for widget in metric_widgets(body):
            for _ns, metric, dims, _options in widget_metrics(widget):
                for dim, value in dims.items():
                    named = body_target(template, variables, value)
                    for stage, wanted in stages.items():
                        if named == wanted and not (stage == "function" and metric == "IteratorAge"):
                            x_of.setdefault(stage, widget["x"])
                if dims.get("service") == consumer["service"]:
                    x_of.setdefault("events", widget["x"])
        order = ["rule", "queue", "events", "function", "dlq"]
        assert [x_of[s] for s in order] == sorted(x_of[s] for s in order), (prefix, x_of)


def test_the_dashboards_threshold_lines_are_the_alarms_thresholds(template):
    _lid, body, _variables = dashboard(template)
    lines = {a["label"]: a["value"] for w in metric_widgets(body)
             for a in w["properties"].get("annotations", {}).get("horizontal", [])}
    resources = template["Resources"]
    assert lines["outbox alarm"] == resources["OutboxStuckAlarm"]["Properties"]["Threshold"]
    assert lines["stuck orders alarm"] == resources["StuckOrdersAlarm"]["Properties"]["Threshold"]
    assert lines["age alarm"] == template["Parameters"]["ConsumerAgeAlarmSeconds"]["Default"]
    text = resources["ShopDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    assert '"value": ${ConsumerAgeAlarmSeconds}' in text, "the queue age line follows the parameter"


# ============================================================================================
# Tests: consumers wired identically
# ============================================================================================

def test_the_five_consumers_are_wired_identically_modulo_their_name(template):
    assert sorted(c["service"] for c in consumers(template).values()) == sorted(CONSUMER_SERVICES)
    assert consumer_shape_problems(template) == []


# ============================================================================================
# Tests: parameters admit only values that deploy
# ============================================================================================

def test_the_longest_stage_allowed_keeps_every_name_built_from_it_within_its_limit(template):
    stage = longest_allowed(template["Parameters"]["Stage"])
    assert stage_name_problems(template, stage) == []
    archive = template["Resources"]["OrderEventsArchive"]["Properties"]["ArchiveName"]["Fn::Sub"]
    assert len(archive.replace("${Stage}", stage)) <= 48


@pytest.mark.parametrize("stage", ["dev", "prod", "pr-123", "team_a", "Staging2"])
def test_the_stage_pattern_accepts_the_usual_stage_names(template, stage):
    assert satisfies(template["Parameters"]["Stage"], stage)


@pytest.mark.parametrize("stage", ["", "my stage", "a/b", "dev.1", "-dev", "x" * 29])
def test_the_stage_pattern_refuses_what_some_name_built_from_it_cannot_hold(template, stage):
    assert not satisfies(template["Parameters"]["Stage"], stage)


def test_every_parameter_is_constrained_and_its_default_passes_its_own_constraints(template):
    for name, spec in template["Parameters"].items():
        if spec["Type"] == "Number":
            assert "MinValue" in spec and "MaxValue" in spec, f"{name}: a range"
        else:
            assert "AllowedValues" in spec or "AllowedPattern" in spec, f"{name}: a pattern or values"
        assert satisfies(spec, str(spec["Default"])), f"{name}: default {spec['Default']!r} fails its constraints"


@pytest.mark.parametrize("name,value", [("SenderEmail", "not-an-address"), ("AlarmEmail", "ops at example"),
                                        ("LogLevel", "VERBOSE"), ("ApiThrottlingRateLimit", "0"),
                                        ("ApiThrottlingBurstLimit", "5001")])
def test_a_parameter_value_that_would_not_deploy_is_refused(template, name, value):
    assert not satisfies(template["Parameters"][name], value)


def test_the_visibility_timeout_admits_only_what_lambda_and_sqs_accept(template):
    spec = template["Parameters"]["ConsumerVisibilityTimeout"]
    longest = max(timeout_of(template, c["function"]) for c in consumers(template).values())
    # Lambda refuses an SQS event source mapping whose queue hides a message for less than the
    # function's timeout; SQS hides it for 12 hours at most.
    assert spec["MinValue"] >= longest
    assert spec["MaxValue"] == SQS_MAX_VISIBILITY_TIMEOUT
    for c in consumers(template).values():
        queue = template["Resources"][c["queue"]]["Properties"]
        assert queue["VisibilityTimeout"] == {"Ref": "ConsumerVisibilityTimeout"}


def test_the_sweeper_grace_period_stays_above_the_checkout_timeout_and_below_the_stuck_orders_alarm(template):
    spec = template["Parameters"]["SweeperGraceSeconds"]
    assert spec["MinValue"] > timeout_of(template, "CheckoutFunction")
    assert spec["MaxValue"] < template["Resources"]["StuckOrdersAlarm"]["Properties"]["Threshold"]


def test_the_default_age_alarm_leaves_a_failing_message_time_to_reach_its_dlq(template):
    receives = template["Resources"]["EmailQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    visibility = template["Parameters"]["ConsumerVisibilityTimeout"]["Default"]
    assert template["Parameters"]["ConsumerAgeAlarmSeconds"]["Default"] > receives * visibility


# ============================================================================================
# Tests: what outlives the stack
# ============================================================================================

def test_every_table_is_decided_source_of_truth_or_rebuildable(template):
    assert set(of_type(template, "AWS::DynamoDB::Table")) == SOURCE_OF_TRUTH | REBUILDABLE
    assert not SOURCE_OF_TRUTH & REBUILDABLE


def test_the_source_of_truth_tables_and_the_user_pool_survive_deletion_and_replacement(template):
    for lid in sorted(SOURCE_OF_TRUTH | {"ShopUserPool"}):
        resource = template["Resources"][lid]
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain"), lid


def test_the_rebuildable_tables_go_with_the_stack(template):
    for lid in sorted(REBUILDABLE):
        assert "DeletionPolicy" not in template["Resources"][lid], lid


def test_sam_keeps_the_retain_policies_in_what_it_deploys(expanded):
    for lid in sorted(SOURCE_OF_TRUTH):
        assert expanded["Resources"][lid]["DeletionPolicy"] == "Retain", lid


# ============================================================================================
# Tests: the checks catch a template wired wrong
# ============================================================================================

def with_consumer_copied(template: dict, prefix: str, new: str, leave_out: tuple[str, ...] = ()) -> dict:
    """The template with a new consumer copied from `prefix`'s block (renamed), without `leave_out`."""
    wrong = copy.deepcopy(template)
    for suffix in CONSUMER_BLOCK:
        if suffix in leave_out:
            continue
        text = json.dumps(template["Resources"][prefix + suffix])
        text = re.sub(rf"\b{prefix}(?=[A-Z]|\b)", new, text).replace(prefix.lower(), new.lower())
        wrong["Resources"][new + suffix] = json.loads(text)
    return wrong


def test_given_a_new_consumer_without_its_alarms_then_the_alarm_check_names_what_is_missing(template):
    wrong = with_consumer_copied(template, "Email", "Refunds", leave_out=("DeadLetterAlarm", "QueueAgeAlarm",
                                                                          "FunctionErrorsAlarm"))
    wrong_expanded = localstack.expand(wrong)
    problems = missing_alarms(wrong, wrong_expanded)
    assert any(p.startswith("RefundsDeadLetterQueue:") for p in problems)
    assert any(p.startswith("RefundsQueue:") for p in problems)
    assert any(p.startswith("RefundsFunction:") for p in problems)
    assert "consumer Refunds: no RefundsQueueAgeAlarm" in consumer_shape_problems(wrong)


def test_given_a_new_consumer_without_a_dashboard_row_then_the_widget_check_names_it(template):
    wrong = with_consumer_copied(template, "Email", "Refunds")
    problems = missing_widgets(wrong, localstack.expand(wrong))
    assert "RefundsQueue: no widget of its depth" in problems
    assert any(p.startswith("RefundsFunction: no widget") for p in problems)
    assert "consumer refunds: no widget of " + str(sorted(HARNESS_METRICS)) in problems


def test_given_a_consumer_wired_differently_then_the_shape_check_names_the_piece(template):
    wrong = copy.deepcopy(template)
    wrong["Resources"]["LoyaltyFunctionOrderEvents"]["Properties"]["BatchSize"] = 1
    assert consumer_shape_problems(wrong) == [
        "LoyaltyFunctionOrderEvents is wired differently from AnalyticsFunctionOrderEvents"]


def test_given_a_misspelt_metric_or_dimension_then_the_dashboard_check_names_it(template):
    _lid, body, variables = dashboard(template)
    wrong = copy.deepcopy(body)
    rows = next(metric_widgets(wrong))["properties"]["metrics"]
    rows.append(["Shop", "OrdersPlacd", "service", "checkout"])
    rows.append(["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "<<EmailFunction>>"])
    problems = unknown_metrics(template, wrong, variables)
    assert any("service checkout emits no OrdersPlacd" in p for p in problems)
    assert any("QueueName must name" in p for p in problems)


def test_given_a_stage_one_character_longer_then_the_archive_name_exceeds_its_limit(template):
    stage = longest_allowed(template["Parameters"]["Stage"]) + "x"
    (problem,) = stage_name_problems(template, stage)
    assert problem.startswith("OrderEventsArchive.ArchiveName") and "over 48" in problem


# ============================================================================================
# Tests: the local twin (moto) provisions the alarms
# ============================================================================================

# As the local runner provisions the stack: its own issuer instead of a Cognito user pool.
LOCAL_AUTH = {"JwtIssuer": "http://127.0.0.1:9/local-issuer", "JwtAudience": "shop-local"}


@pytest.fixture(scope="module")
def local_twin(tmp_path_factory):
    """A moto server with the stack provisioned as tools/localstack.py does (stopped by PID)."""
    process, endpoint = localstack.start_moto(log=tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        localstack.provision(endpoint, "shop-ops", None, {"Stage": "ops", **LOCAL_AUTH})
        yield endpoint
    finally:
        localstack.stop_moto(process)


def names_local_process(template: dict, alarm: dict) -> bool:
    """Whether an alarm reads a metric of a function or of the HTTP API, which run as local
    processes and are not in moto (tools/localstack.py leaves out whatever refers to them)."""
    kinds = DIMENSION_TARGETS["FunctionName"][0] | DIMENSION_TARGETS["ApiId"][0]
    return any(template["Resources"][logical]["Type"] in kinds
               for logical in localstack.references(alarm["Properties"]) if logical in template["Resources"])


def test_the_local_twin_has_every_alarm_but_those_of_functions_and_the_api(template, local_twin):
    cloudwatch = localstack.session().client("cloudwatch", endpoint_url=local_twin)
    created = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    expected = {f"shop-ops-{lid}" for lid, alarm in alarms.items()
                if not names_local_process(template, alarm) and alarm.get("Condition") is None}
    assert created == expected
    assert {"shop-ops-EmailRuleDeliveryAlarm", "shop-ops-EmailQueueAgeAlarm", "shop-ops-OutboxStuckAlarm"} <= created


def test_the_local_twin_resolves_a_rule_alarms_metric_math_to_the_rules_name(local_twin):
    aws = localstack.session()
    cloudwatch = aws.client("cloudwatch", endpoint_url=local_twin)
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["shop-ops-LoyaltyRuleDeliveryAlarm"])["MetricAlarms"]
    rules = aws.client("events", endpoint_url=local_twin).list_rules(EventBusName="shop-ops-orders")["Rules"]
    (loyalty,) = [r["Name"] for r in rules if "LoyaltyRule" in r["Name"]]
    stats = [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]
    assert {m["MetricName"] for m in stats} == RULE_DELIVERY_METRICS
    for metric in stats:
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
            "EventBusName": "shop-ops-orders", "RuleName": loyalty}
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "SUM([failed, toDlq, lost])"


def test_the_local_twin_leaves_the_dashboard_out_with_the_functions_it_shows(template):
    """moto's CloudFormation could create AWS::CloudWatch::Dashboard, but the dashboard shows
    the functions and the HTTP API, which the twin runs as processes: like every resource that
    refers to them, it is left out (the local page of the runner stands in for it)."""
    _kept, dropped = localstack.split(localstack.expand(template, LOCAL_AUTH), LOCAL_AUTH)
    assert "ShopDashboard" in dropped
