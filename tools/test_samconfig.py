"""How the project ships: samconfig.toml against the pinned SAM CLI and template.yaml, and the
GitHub Actions workflows against what README's "Continuous integration" promises of them.
actionlint (tools/lint.sh) checks the workflows' syntax, expressions and action inputs; these
tests check what actionlint cannot know: which SAM options exist, which capabilities the
template needs, and that the deploy uses no stored AWS keys.

    .venv/bin/python -m pytest tools/test_samconfig.py
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localstack  # noqa: E402

ROOT = localstack.ROOT
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
ENVIRONMENTS = [name for name in SAMCONFIG if name != "version"]
WORKFLOWS = ROOT / ".github" / "workflows"

# The SAM CLI command behind each section of samconfig.toml.
COMMANDS = {
    "deploy": "samcli.commands.deploy.command",
    "build": "samcli.commands.build.command",
    "delete": "samcli.commands.delete.command",
    "validate": "samcli.commands.validate.validate",
}
# IAM resources whose explicit name makes CloudFormation ask for CAPABILITY_NAMED_IAM.
NAMED_IAM = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


def options_of(command: str) -> set[str]:
    cli = importlib.import_module(COMMANDS[command]).cli
    return {p.name for p in cli.params if p.name}


def deploy(env: str) -> dict:
    return SAMCONFIG[env]["deploy"]["parameters"]


def overrides(env: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(deploy(env)["parameter_overrides"]))


@pytest.fixture(scope="module")
def expanded() -> dict:
    return localstack.expand(localstack.load_template())


def load_workflow(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as true.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


# -- samconfig.toml ---------------------------------------------------------------------------


def test_samconfig_is_the_format_sam_cli_reads_with_a_dev_and_a_prod_environment():
    assert SAMCONFIG["version"] == 0.1
    assert ENVIRONMENTS == ["default", "prod"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_samconfig_key_is_an_option_of_its_command_in_the_pinned_sam_cli(env):
    for command, section in SAMCONFIG[env].items():
        keys = set(section["parameters"])
        if command == "global":
            # Global parameters go to every command that takes them: at least deploy and delete.
            for target in ("deploy", "delete"):
                unknown = keys - options_of(target)
                assert not unknown, f"[{env}.global] {unknown} unknown to sam {target}"
        else:
            unknown = keys - options_of(command)
            assert not unknown, f"[{env}.{command}] {unknown} unknown to sam {command}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_deploys_its_own_stack_under_its_own_artifact_prefix(env):
    stack = SAMCONFIG[env]["global"]["parameters"]["stack_name"]
    assert deploy(env)["s3_prefix"] == stack
    assert deploy(env)["resolve_s3"] is True
    others = [SAMCONFIG[e]["global"]["parameters"]["stack_name"] for e in ENVIRONMENTS if e != env]
    assert stack not in others


def test_given_prod_then_a_change_set_is_confirmed_and_given_dev_it_is_not():
    assert deploy("prod")["confirm_changeset"] is True
    assert deploy("default")["confirm_changeset"] is False


@pytest.mark.parametrize("env, stage", [("default", "dev"), ("prod", "prod")])
def test_each_environment_overrides_only_template_parameters_with_values_they_allow(env, stage):
    parameters = localstack.load_template()["Parameters"]
    assert overrides(env)["Stage"] == stage
    for name, value in overrides(env).items():
        assert name in parameters, f"{name} is not a parameter of template.yaml"
        declared = parameters[name]
        if "AllowedValues" in declared:
            assert value in declared["AllowedValues"]
        if "AllowedPattern" in declared:
            pattern = declared["AllowedPattern"]
            assert re.fullmatch(pattern, value), f"{name}={value} breaks {pattern}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_capabilities_are_the_ones_the_template_needs(env, expanded):
    capabilities = set(deploy(env)["capabilities"].split())
    iam = {lid: r for lid, r in expanded["Resources"].items() if r["Type"].startswith("AWS::IAM::")}
    named = [lid for lid, r in iam.items() if NAMED_IAM.get(r["Type"]) in r.get("Properties", {})]
    # Every function's role is generated by SAM without a name: CAPABILITY_IAM, and
    # CAPABILITY_NAMED_IAM only once a named IAM resource appears.
    assert iam, "the expanded template has no IAM resource: drop CAPABILITY_IAM"
    assert "CAPABILITY_IAM" in capabilities
    assert ("CAPABILITY_NAMED_IAM" in capabilities) == bool(named), f"named IAM resources: {named}"
    # The AWS::Serverless transform is a macro: CAPABILITY_AUTO_EXPAND.
    assert localstack.load_template()["Transform"]
    assert "CAPABILITY_AUTO_EXPAND" in capabilities


def test_no_environment_turns_on_every_beta_feature():
    # rust-cargolambda is no longer beta in the pinned SAM CLI; beta_features would switch on
    # the other experimental build behaviours too (samconfig.toml says which).
    for env in ENVIRONMENTS:
        for command, section in SAMCONFIG[env].items():
            assert "beta_features" not in section["parameters"], f"[{env}.{command}]"


# -- the workflows ----------------------------------------------------------------------------


def test_the_test_workflow_runs_make_test_on_every_push_and_pull_request_and_when_deploy_calls_it():
    workflow = load_workflow("test.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(workflow["on"])
    assert workflow["on"]["push"] is None and workflow["on"]["pull_request"] is None, "no branch filter"
    runs = [s.get("run", "") for s in steps(workflow["jobs"]["test"])]
    assert any(run.strip().splitlines()[-1:] == ["make test"] for run in runs), "a step ends with make test"


def test_the_test_workflow_checks_event_schemas_against_the_branch_before_the_change():
    step = next(s for s in steps(load_workflow("test.yml")["jobs"]["test"]) if "make test" in s.get("run", ""))
    base = step["env"]["CONTRACTS_BASE"]
    assert "github.base_ref" in base and "github.event.before" in base, base
    checkout = next(s for s in steps(load_workflow("test.yml")["jobs"]["test"]) if "checkout" in s.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0, "the baseline's commits must be there to compare with"


def test_the_deploy_workflow_deploys_main_and_v_tags_only_after_the_tests_pass():
    workflow = load_workflow("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"], "tags": ["v*"]}}
    assert workflow["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    assert workflow["jobs"]["deploy"]["needs"] == "test"


def test_the_deploy_workflow_names_only_samconfig_environments_and_deploys_the_one_it_chose():
    job = load_workflow("deploy.yml")["jobs"]["deploy"]
    chosen = re.findall(r"&& '(\w+)' \|\| '(\w+)'", job["env"]["SAM_CONFIG_ENV"])
    assert chosen == [("prod", "default")]
    assert set(chosen[0]) == set(ENVIRONMENTS)
    commands = " ".join(s.get("run", "") for s in steps(job))
    assert 'sam deploy --config-env "$SAM_CONFIG_ENV"' in commands
    assert 'tools/smoke_test.py --config-env "$SAM_CONFIG_ENV"' in commands


def test_the_deploy_assumes_a_role_through_oidc_and_no_workflow_holds_aws_keys():
    job = load_workflow("deploy.yml")["jobs"]["deploy"]
    assert job["permissions"]["id-token"] == "write"
    [login] = [s for s in steps(job) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert login["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        for key in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert key not in text, f"{path.name} mentions {key}: use the OIDC role instead"


def test_the_deploy_runs_in_the_github_environment_its_role_trusts():
    job = load_workflow("deploy.yml")["jobs"]["deploy"]
    # The role's trust policy names repo:<owner>/<repo>:environment:<name> (README).
    assert re.findall(r"&& '(\w+)' \|\| '(\w+)'", job["environment"]) == [("prod", "dev")]
    assert job["concurrency"]["cancel-in-progress"] is False


@pytest.mark.parametrize("name", ["test.yml", "deploy.yml"])
def test_every_job_has_a_timeout_and_every_action_a_pinned_version(name):
    for job_name, job in load_workflow(name)["jobs"].items():
        if "uses" in job:
            continue  # a reusable workflow: its own jobs have the timeouts
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: job {job_name} has no timeout-minutes"
        for step in steps(job):
            if "uses" in step:
                pinned = re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"])
                assert pinned, f"{name}: {step['uses']} is not pinned to a version"


@pytest.mark.parametrize("name", ["test.yml", "deploy.yml"])
def test_workflows_read_the_repository_with_no_more_than_read_access(name):
    workflow = load_workflow(name)
    assert workflow["permissions"] == {"contents": "read"}
