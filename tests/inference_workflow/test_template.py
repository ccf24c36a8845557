"""The SAM template: cfn-lint always; sam validate --lint with the SAM CLI that the README's test command
installs into .venv-sam (its dependencies clash with moto's, so it gets its own environment)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "inference_workflow" / "template.yaml"
CFN_LINT = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")


def _sam() -> str | None:
    project_sam = REPO / ".venv-sam" / "bin" / "sam"
    return os.environ.get("SAM_CLI") or (str(project_sam) if project_sam.exists() else shutil.which("sam"))


@pytest.mark.e2e
def test_cfn_lint_passes():
    result = subprocess.run([CFN_LINT, str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_cfn_lint_catches_a_deliberate_error(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Handler: lambda_function", "Handlr: lambda_function", 1))
    result = subprocess.run([CFN_LINT, str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "Handlr" in result.stdout


def _template() -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))


def _statements(template: dict):
    """(resource name, statement) for every IAM statement: roles, policies, SAM function policies, bucket policy."""
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in properties.get("Policies", []) if "PolicyDocument" in p]
        documents += [p for p in properties.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        documents += [properties["PolicyDocument"]] if "PolicyDocument" in properties else []
        for document in documents:
            for statement in document["Statement"]:
                yield name, statement


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


# IAM's service authorization reference: these two accept no resource but "*".
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


def test_least_privilege_everywhere():
    template = _template()
    statements = list(_statements(template))
    assert len(statements) > 20
    for name, statement in statements:
        actions = set(_listed(statement["Action"]))
        if statement["Effect"] == "Deny":
            continue
        assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)
        resources = _listed(statement.get("Resource", []))
        if "*" in resources:
            assert actions <= NO_RESOURCE_LEVEL, (name, actions)
        text = str(resources).lower()
        assert "*sagemaker*" not in text and "sagemaker-" not in text, (name, resources)   # no managed-policy naming


def _policy_actions(template: dict, resource: str) -> set[str]:
    return {a for name, statement in _statements(template) if name == resource for a in _listed(statement["Action"])}


def test_roles_carry_what_their_callers_do():
    template = _template()
    codebuild = _policy_actions(template, "CodeBuildRole")
    assert {"sagemaker:ListTags", "sagemaker:AddTags", "sagemaker:ListPipelineExecutionSteps",
            "sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution",
            "sagemaker:DescribePipelineExecution", "iam:PassRole", "s3:ListBucket"} <= codebuild
    execution = _policy_actions(template, "SageMakerExecutionRole") | _policy_actions(template, "SageMakerExecutionPassSelf")
    assert {"sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob", "sagemaker:CreateTransformJob",
            "sagemaker:CreateModel", "sagemaker:CreateModelPackage", "lambda:InvokeFunction", "iam:PassRole",
            "s3:GetObject", "s3:PutObject", "s3:ListBucket", "ecr:BatchGetImage", "logs:PutLogEvents"} <= execution
    assert {"s3:GetObject", "s3:ListBucket"} <= _policy_actions(template, "SerializeImageDataFunction")
    assert {"sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint"} <= \
        _policy_actions(template, "DeployModelFunction")
    bucket_policy = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in bucket_policy)


def test_invoke_endpoint_is_scoped_to_the_endpoint():
    text = TEMPLATE.read_text()
    assert "sagemaker:InvokeEndpoint" in text and "endpoint/${EndpointName}" in text


def test_deploy_function_has_an_on_failure_destination():
    function = _template()["Resources"]["DeployModelFunction"]["Properties"]
    invoke_config = function["EventInvokeConfig"]
    assert invoke_config["DestinationConfig"]["OnFailure"] == {"Type": "SQS",
                                                               "Destination": {"Fn::GetAtt": ["DeployModelFailureQueue", "Arn"]}}
    assert invoke_config["MaximumRetryAttempts"] >= 1


def test_a_retraining_start_that_keeps_failing_is_kept_in_its_failure_queue():
    function = _template()["Resources"]["StartRetrainingFunction"]["Properties"]
    assert function["EventInvokeConfig"]["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS", "Destination": {"Fn::GetAtt": ["StartRetrainingFailureQueue", "Arn"]}}
    assert _template()["Resources"]["StartRetrainingFailureQueue"]["Type"] == "AWS::SQS::Queue"


def test_every_function_is_packaged_from_the_folder_the_local_runtime_zips():
    from local_runtime import provision

    functions = {name: r["Properties"] for name, r in _template()["Resources"].items()
                 if r["Type"] == "AWS::Serverless::Function"}
    local = ({folder for folder, _ in provision.INFERENCE_FUNCTIONS.values()}
             | {provision.DEPLOY_FOLDER, provision.FIND_REGISTERED_FOLDER, provision.DRIFT_MONITOR_FOLDER,
                provision.FIND_CHAMPION_FOLDER, provision.HUMAN_REVIEW_FOLDER, provision.START_RETRAINING_FOLDER})
    assert {f["CodeUri"].rstrip("/") for f in functions.values()} == local
    assert {f["Handler"] for f in functions.values()} == {"lambda_function.lambda_handler"}


def test_lambdas_import_only_the_standard_library_boto3_and_their_own_folder():
    import ast

    from local_runtime import provision

    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "__future__"}
    for folder in {f for f, _ in provision.INFERENCE_FUNCTIONS.values()} | {
            provision.DEPLOY_FOLDER, provision.FIND_REGISTERED_FOLDER, provision.DRIFT_MONITOR_FOLDER,
            provision.FIND_CHAMPION_FOLDER, provision.HUMAN_REVIEW_FOLDER, provision.START_RETRAINING_FOLDER}:
        own = {p.stem for p in (provision.WORKFLOW_DIR / folder).glob("*.py")}
        for path in (provision.WORKFLOW_DIR / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
                for name in names:
                    assert name.split(".")[0] in allowed | own, f"{path} imports {name}: Lambdas ship alone"


def test_the_review_queue_has_a_dead_letter_queue_and_the_review_time_comes_from_the_config():
    from inference_workflow.template_parameters import template_parameters
    from scones_common.config import load_config

    resources = _template()["Resources"]
    queue = resources["ReviewQueue"]["Properties"]
    assert "review" in queue["QueueName"]["Ref"].lower()
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ReviewDeadLetterQueue", "Arn"]}
    machine = resources["InferenceStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["ReviewQueueUrl"] == {"Ref": "ReviewQueue"}
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["ReviewQueue", "QueueName"]}}} in machine["Policies"]
    variables = resources["HumanReviewFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["REVIEW_TIMEOUT_SECONDS"] == {"Ref": "ReviewTimeoutSeconds"}
    parameters = template_parameters(load_config(environment="prod", environ={"SCONES__REVIEW__TIMEOUT_SECONDS": "3600"}))
    assert parameters["ReviewTimeoutSeconds"] == "3600" and parameters["ReviewQueueName"].endswith("-review")


def test_the_schedule_rule_honours_schedule_enabled():
    from inference_workflow.template_parameters import parameter_overrides, template_parameters
    from scones_common.config import load_config

    template = _template()
    rule = template["Resources"]["RetrainScheduleRule"]["Properties"]
    assert rule["State"] == {"Fn::If": ["ScheduleEnabled", "ENABLED", "DISABLED"]}
    assert template["Conditions"]["ScheduleEnabled"] == {"Fn::Equals": [{"Ref": "RetrainScheduleEnabled"}, "true"]}
    for environment, enabled in (("dev", "false"), ("prod", "true")):
        parameters = template_parameters(load_config(environment=environment, environ={}))
        assert set(parameters) <= set(template["Parameters"])
        assert parameters["RetrainScheduleEnabled"] == enabled
        assert f"RetrainScheduleEnabled={enabled}" in parameter_overrides(parameters)
    assert 'RetrainSchedule="cron(0 3 ? * MON *)"' in parameter_overrides(parameters)


def test_schedule_and_drift_retraining_start_the_pipeline_through_the_start_retraining_function():
    """Both retraining rules invoke the function that snapshots the human labels and passes them as HumanLabelsUri:
    a rule targeting the pipeline itself would start it with static parameters, i.e. without the labels."""
    template = _template()
    resources = template["Resources"]
    function = resources["StartRetrainingFunction"]["Properties"]
    assert function["CodeUri"] == "start_retraining/"
    variables = function["Environment"]["Variables"]
    assert variables["PIPELINE_NAME"] == {"Ref": "PipelineName"}
    assert variables["LABELS_S3_URI"] == resources["HumanReviewFunction"]["Properties"]["Environment"]["Variables"][
        "LABELS_S3_URI"]                     # reads where RecordReview writes
    assert variables["LABEL_SETS_S3_URI"] == {"Fn::Sub": "s3://${DataBucket}/${DataPrefix}/human-label-sets"}
    assert variables["MODEL_APPROVAL_STATUS"] == "PendingManualApproval"
    states = {"RetrainScheduleRule": "ScheduleEnabled", "DriftRetrainRule": "DriftRetrainEnabled"}
    for rule_id, condition in states.items():
        rule = resources[rule_id]["Properties"]
        assert rule["State"] == {"Fn::If": [condition, "ENABLED", "DISABLED"]}       # the conditions are kept
        assert rule["Targets"] == [{"Id": "start-retraining", "Arn": {"Fn::GetAtt": ["StartRetrainingFunction", "Arn"]}}]
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert sorted(p["SourceArn"]["Fn::GetAtt"][0] for p in permissions) == sorted(states)
    for permission in permissions:
        assert permission["FunctionName"] == {"Ref": "StartRetrainingFunction"}
        assert permission["Principal"] == "events.amazonaws.com" and permission["Action"] == "lambda:InvokeFunction"
    assert "RetrainScheduleRole" not in resources             # no rule starts the pipeline itself any more
    assert not [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"
                for t in r["Properties"]["Targets"] if "SageMakerPipelineParameters" in t or "RoleArn" in t]


def test_the_start_retraining_function_may_only_snapshot_labels_and_start_the_pipeline():
    template = _template()
    statements = [s for name, s in _statements(template) if name == "StartRetrainingFunction"]
    granted = {(action, str(resource)) for s in statements for action in _listed(s["Action"])
               for resource in _listed(s["Resource"])}
    prefix = "arn:${AWS::Partition}:s3:::${DataBucket}/${DataPrefix}"
    pipeline = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${PipelineName}"
    assert granted == {("s3:ListBucket", str({"Fn::Sub": "arn:${AWS::Partition}:s3:::${DataBucket}"})),
                       ("s3:GetObject", str({"Fn::Sub": f"{prefix}/*"})),
                       ("s3:PutObject", str({"Fn::Sub": f"{prefix}/human-label-sets/*"})),
                       ("sagemaker:StartPipelineExecution", str({"Fn::Sub": pipeline}))}
    listing = next(s for s in statements if s["Action"] == "s3:ListBucket")
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [{"Fn::Sub": "${DataPrefix}/human-labels/*"},
                                                              {"Fn::Sub": "${DataPrefix}/human-label-sets/*"}]


def test_the_pipeline_may_invoke_its_three_lambdas():
    template = _template()
    invoked = [r for name, statement in _statements(template) if name == "SageMakerExecutionRole"
               and "lambda:InvokeFunction" in _listed(statement["Action"]) for r in _listed(statement["Resource"])]
    suffixes = sorted(r["Fn::Sub"].rsplit("${ProjectName}-", 1)[1] for r in invoked)
    assert suffixes == ["deploy-model", "find-champion", "find-registered-model"]
    function = template["Resources"]["FindChampionFunction"]["Properties"]
    assert function["FunctionName"] == {"Fn::Sub": "${ProjectName}-find-champion"}    # the definition's FunctionArn
    assert function["Environment"]["Variables"]["EXECUTION_ROLE_ARN"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert {"sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
            "sagemaker:CreateModel", "sagemaker:ListModelPackages", "iam:PassRole"} <= _policy_actions(
        template, "FindChampionFunction")


def test_failed_executions_and_stopped_challengers_reach_the_notifications_topic():
    resources = _template()["Resources"]
    pipeline_arn = {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${PipelineName}"}
    failed = resources["PipelineFailedRule"]["Properties"]
    assert failed["EventPattern"] == {"source": ["aws.sagemaker"],
                                      "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                                      "detail": {"pipelineArn": [pipeline_arn],
                                                 "currentPipelineExecutionStatus": ["Failed"]}}
    stopped = resources["ChallengerStoppedRule"]["Properties"]
    assert stopped["EventPattern"]["detail-type"] == ["SageMaker Model Building Pipeline Execution Step Status Change"]
    assert stopped["EventPattern"]["detail"]["stepName"] == ["ChallengerWorseThanChampion"]   # the gate's Fail step
    assert stopped["EventPattern"]["detail"]["currentStepStatus"] == ["Failed"]
    for rule in (failed, stopped):
        assert rule["State"] == "ENABLED" and rule["Targets"] == [{"Id": "pipeline-notifications",
                                                                    "Arn": {"Ref": "PipelineNotificationTopic"}}]
    subscription = resources["PipelineNotificationSubscription"]
    assert subscription["Condition"] == "HasNotificationEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}
    statement = resources["PipelineNotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sns:Publish"


def test_the_notification_address_is_a_template_parameter():
    from inference_workflow import template_parameters
    from scones_common.config import load_config

    config = load_config(environment="prod", environ={})
    assert "NotificationEmail" not in template_parameters.template_parameters(config)   # the template's default: none
    config = load_config(environment="prod", environ={"SCONES__NOTIFICATIONS__EMAIL": "ml-team@example.com"})
    parameters = template_parameters.template_parameters(config)
    assert parameters["NotificationEmail"] == "ml-team@example.com"
    assert set(parameters) <= set(_template()["Parameters"])
    assert "NotificationEmail=ml-team@example.com" in template_parameters.parameter_overrides(parameters)


def test_template_parameters_command_prints_the_overrides(capsys):
    from inference_workflow import template_parameters

    assert template_parameters.main(["--environment", "prod"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("ProjectName=scones-vehicle-classifier ") and "DataBucket=scones-unlimited-ml-prod" in printed
    assert template_parameters.main(["--config", "/no/such/file.yaml"]) == 2


needs_sam = pytest.mark.skipif(_sam() is None, reason="the SAM CLI is not installed (the README's test command "
                                                        "installs it into .venv-sam)")


def _sam_validate(template: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_sam(), "validate", "--lint", "--template", str(template), "--region", "us-east-1"],
                          capture_output=True, text=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})


@pytest.mark.e2e
@needs_sam
def test_sam_validate_lint_passes():
    result = _sam_validate(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
@needs_sam
def test_sam_validate_lint_catches_a_deliberate_error(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Timeout: 900\n", "Timeout: 9000\n"))
    result = _sam_validate(broken)
    assert result.returncode != 0 and "9000" in result.stdout + result.stderr


@pytest.mark.e2e
@needs_sam
def test_sam_packages_each_function_exactly_as_the_local_runtime_does(tmp_path):
    """``sam build`` copies each CodeUri folder; the local runtime zips the same files with the same bytes."""
    import io
    import zipfile

    from local_runtime import provision

    result = subprocess.run([_sam(), "build", "--template", str(TEMPLATE), "--build-dir", str(tmp_path / "build")],
                            capture_output=True, text=True, cwd=TEMPLATE.parent, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    functions = {name: r["Properties"]["CodeUri"].rstrip("/") for name, r in _template()["Resources"].items()
                 if r["Type"] == "AWS::Serverless::Function"}
    for name, folder in functions.items():
        built = {p.relative_to(tmp_path / "build" / name).as_posix(): p.read_bytes()
                 for p in (tmp_path / "build" / name).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        with zipfile.ZipFile(io.BytesIO(provision.zip_folder(provision.WORKFLOW_DIR / folder))) as archive:
            zipped = {entry: archive.read(entry) for entry in archive.namelist()}
        assert built == zipped, name
