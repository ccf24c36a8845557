"""What users create survives a restart: their Lambda functions (which then run), state machines, roles, rules
and the last days of CloudWatch Logs, with the events' own timestamps; what the stack provisions keeps its
provisioned definition."""
import json
import time

from local_runtime import state
from local_runtime.aws import local_aws
from tests.builders import lambda_zip

HANDLER = "def handler(event, context):\n    print('restored and running')\n    return {'twice': event['n'] * 2}\n"
ASSUME = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                               "Principal": {"Service": "lambda.amazonaws.com"}}]})


def test_users_functions_state_machines_roles_rules_and_logs_survive_a_restart(tmp_path):
    state_dir = tmp_path / "state"
    old_stamp = int(time.time() * 1000) - 3 * 86_400_000          # three days ago
    with local_aws("us-east-1") as aws:
        iam, lam, sfn = aws.client("iam"), aws.client("lambda"), aws.client("stepfunctions")
        role = iam.create_role(RoleName="users-role", AssumeRolePolicyDocument=ASSUME)["Role"]["Arn"]
        iam.put_role_policy(RoleName="users-role", PolicyName="inline", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
        lam.create_function(FunctionName="users-function", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": lambda_zip({"app.py": HANDLER})}, Environment={"Variables": {"MODE": "kept"}})
        sfn.create_state_machine(name="users-machine", roleArn=role, definition=json.dumps(
            {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
        aws.client("events").put_rule(Name="users-rule", ScheduleExpression="rate(1 day)", State="DISABLED")
        logs = aws.client("logs")
        logs.create_log_group(logGroupName="/users/app")
        logs.create_log_stream(logGroupName="/users/app", logStreamName="s1")
        logs.put_log_events(logGroupName="/users/app", logStreamName="s1",
                            logEvents=[{"timestamp": old_stamp, "message": "from three days ago"}])
        state.save(aws, "unused", state_dir)
        state.detach()
    with local_aws("us-east-1") as aws:
        assert state.restore(aws, "unused", state_dir)
        try:
            lam = aws.client("lambda")
            configuration = lam.get_function(FunctionName="users-function")["Configuration"]
            assert configuration["Environment"]["Variables"] == {"MODE": "kept"}
            response = lam.invoke(FunctionName="users-function", Payload=b'{"n": 21}')
            assert json.loads(response["Payload"].read()) == {"twice": 42}
            machines = aws.client("stepfunctions").list_state_machines()["stateMachines"]
            assert [m["name"] for m in machines] == ["users-machine"]
            iam = aws.client("iam")
            assert iam.get_role(RoleName="users-role")["Role"]["Arn"].endswith(":role/users-role")
            assert iam.list_role_policies(RoleName="users-role")["PolicyNames"] == ["inline"]
            assert aws.client("events").describe_rule(Name="users-rule")["State"] == "DISABLED"
            events = aws.client("logs").get_log_events(logGroupName="/users/app", logStreamName="s1",
                                                       startFromHead=True)["events"]
            assert [(e["timestamp"], e["message"]) for e in events] == [(old_stamp, "from three days ago")]
        finally:
            state.detach()
