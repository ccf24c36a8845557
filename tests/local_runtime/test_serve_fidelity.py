"""Issue 26's checks against ``scones-local serve`` itself (its env file, its key, a restart): who does not sign
is refused, a user's Lambda runs with AWS's error types and log lines, unnamed executions start, p99 answers,
and listing executions works after a restart plus a new execution."""
import datetime
import json
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_runtime.aws import LocalAws
from local_runtime.serve import ENV_FILE, read_env_file
from tests.builders import lambda_zip
from tests.local_stack import Serving

pytestmark = pytest.mark.e2e
FAIL_ONLY = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "Stop", "Type": "Fail",
                                                             "Arguments": {"ErrorMessage": "on purpose"}}]})
HANDLER = "def handler(event, context):\n    print('user code ran')\n    return {1, 2}\n"


def test_serve_answers_only_who_signs_and_as_aws_does_across_a_restart(tmp_path):
    run_dir = tmp_path / "run"
    with Serving(run_dir) as serving:
        env = read_env_file(run_dir / ENV_FILE)
        assert oct((run_dir / ENV_FILE).stat().st_mode & 0o777) == "0o600"
        aws = LocalAws.from_environment(env)
        role = serving.stack.resources.role_arn
        attacker = boto3.client("sagemaker", region_name=aws.region, endpoint_url=aws.url,
                                aws_access_key_id="ATTACKER", aws_secret_access_key="wrong",
                                config=Config(retries={"max_attempts": 0}))
        with pytest.raises(ClientError) as refused:
            attacker.create_pipeline(PipelineName="Planted", PipelineDefinition=FAIL_ONLY, RoleArn=role)
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        request = urllib.request.Request(aws.url + "/", method="OPTIONS", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        with pytest.raises(urllib.error.HTTPError) as preflight:
            urllib.request.urlopen(request, timeout=10)
        assert "Access-Control-Allow-Origin" not in preflight.value.headers

        lam = aws.client("lambda")
        lam.create_function(FunctionName="users-own", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": lambda_zip({"app.py": HANDLER})})
        answer = lam.invoke(FunctionName="users-own", Payload=b"{}", LogType="Tail")
        assert json.loads(answer["Payload"].read())["errorType"] == "Runtime.MarshalError"
        import base64

        tail = base64.b64decode(answer["LogResult"]).decode()
        assert tail.startswith("START RequestId:") and "user code ran" in tail and "REPORT RequestId:" in tail

        sfn = aws.client("stepfunctions")
        machine = serving.stack.resources.state_machine_arn
        first = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"s3_key": "x"}))["executionArn"]
        second = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"s3_key": "x"}))["executionArn"]
        assert first != second

        cw = aws.client("cloudwatch")
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        cw.put_metric_data(Namespace="Serve", MetricData=[{"MetricName": "L", "Value": float(v), "Timestamp": now}
                                                           for v in range(1, 101)])
        results = cw.get_metric_data(MetricDataQueries=[{"Id": "p", "MetricStat": {
            "Metric": {"Namespace": "Serve", "MetricName": "L"}, "Period": 60, "Stat": "p99"}}],
            StartTime=now - datetime.timedelta(minutes=2), EndTime=now + datetime.timedelta(minutes=2))
        assert results["MetricDataResults"][0]["Values"] == [99.0]

        sm = aws.client("sagemaker")
        sm.create_pipeline(PipelineName="Restarted", PipelineDefinition=FAIL_ONLY, RoleArn=role)
        sm.start_pipeline_execution(PipelineName="Restarted")
        time.sleep(1)
    with Serving(run_dir):
        aws = LocalAws.from_environment(read_env_file(run_dir / ENV_FILE))
        assert aws.key.access_key_id != env["AWS_ACCESS_KEY_ID"]          # each serve makes its own key
        sm = aws.client("sagemaker")
        new = sm.start_pipeline_execution(PipelineName="Restarted")["PipelineExecutionArn"]
        listed = sm.list_pipeline_executions(PipelineName="Restarted")["PipelineExecutionSummaries"]
        assert len(listed) == 2 and listed[0]["PipelineExecutionArn"] == new
        assert aws.client("lambda").get_function(FunctionName="users-own")["Configuration"]["Handler"] == "app.handler"
