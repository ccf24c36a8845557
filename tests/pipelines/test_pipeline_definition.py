"""Golden structure of the pipeline definition JSON, built offline."""
import json

import pytest

from pipelines.scones.pipeline import pipeline_definition, registry_metadata_value
from processing import evaluate, prepare_data
from scones_common.algorithm_contract import HYPERPARAMETERS, value_error
from scones_common.config import ConfigError, load_config
from scones_common.contracts import container


@pytest.fixture(scope="module")
def definition():
    return json.loads(pipeline_definition(load_config(environment="dev", environ={},
                                                      overrides={"pipeline.role_arn": "arn:aws:iam::111122223333:role/sm"})))


def _steps(definition):
    found = {}

    def add(step):
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                for child in step["Arguments"].get(branch, []):
                    add(child)

    for step in definition["Steps"]:
        add(step)
    return found


def _gets(value, found=None):
    found = set() if found is None else found
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str):
            found.add(value["Get"])
        for v in value.values():
            _gets(v, found)
    elif isinstance(value, list):
        for v in value:
            _gets(v, found)
    return found


def test_every_stage_present_with_its_type(definition):
    types = {name: step["Type"] for name, step in _steps(definition).items()}
    assert types == {"PrepareData": "Processing", "TrainModel": "Training", "CreateModel": "Model",
                     "BatchTransformTest": "Transform", "EvaluateModel": "Processing", "CheckAccuracy": "Condition",
                     "FindRegisteredModel": "Lambda", "CheckNewModel": "Condition",
                     "FindChampion": "Lambda", "ScoreChampion": "Transform", "CompareWithChampion": "Processing",
                     "ChampionGate": "Condition", "ChallengerWorseThanChampion": "Fail",
                     "RegisterModel": "RegisterModel", "DeployModel": "Lambda", "AccuracyBelowThreshold": "Fail"}


def test_parameters_declared_and_all_used(definition):
    declared = {p["Name"] for p in definition["Parameters"]}
    used = {g.split(".", 1)[1] for g in _gets(definition["Steps"]) if g.startswith("Parameters.")}
    assert declared == used
    assert {"InputDataUri", "Epochs", "LearningRate", "AccuracyThreshold", "ModelApprovalStatus",
            "TrainingInstanceType", "ProcessingInstanceType", "TransformInstanceType"} <= declared
    approval = next(p for p in definition["Parameters"] if p["Name"] == "ModelApprovalStatus")
    assert approval["DefaultValue"] == "PendingManualApproval"


def test_prepare_data_reads_the_human_label_set_named_by_its_content(definition):
    labels = next(p for p in definition["Parameters"] if p["Name"] == "HumanLabelsUri")
    assert labels["Type"] == "String" and "/human-label-sets/sha256-" in labels["DefaultValue"]    # the empty set
    prepare = _steps(definition)["PrepareData"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"] for i in prepare["ProcessingInputs"]}
    assert inputs["human-labels"]["S3Uri"] == {"Get": "Parameters.HumanLabelsUri"}   # part of the step's cache key
    arguments = prepare["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--human-labels-dir") + 1] == inputs["human-labels"]["LocalPath"]


def test_property_references_point_at_existing_steps(definition):
    steps = _steps(definition)
    for reference in _gets(definition["Steps"]):
        if reference.startswith("Steps."):
            assert reference.split(".")[1] in steps, reference


def test_training_uses_builtin_algorithm_and_string_hyperparameters(definition):
    train = _steps(definition)["TrainModel"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"].endswith("/image-classification:1")
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "train_lst", "validation_lst"}
    assert all(c["ContentType"] == "application/x-image" for c in channels.values())
    hp = train["HyperParameters"]
    assert hp["image_shape"] == "3,224,224" and hp["num_classes"] == "2"       # pretrained networks take 224 px
    assert hp["use_pretrained_model"] == "1" and hp["num_layers"] in ("18", "34", "50", "101", "152", "200")
    for name in ("epochs", "learning_rate", "mini_batch_size", "num_training_samples"):
        assert "Std:Join" in hp[name], name          # pipeline variables stringified
    assert hp["num_training_samples"]["Std:Join"]["Values"][0]["Std:JsonGet"]["Path"] == "num_training_samples"
    assert all(isinstance(v, (str, dict)) for v in hp.values())


def test_training_sends_only_documented_hyperparameters(definition):
    hp = _steps(definition)["TrainModel"]["Arguments"]["HyperParameters"]
    assert set(hp) <= set(HYPERPARAMETERS), set(hp) - set(HYPERPARAMETERS)
    assert "label_smoothing" not in hp
    assert hp["early_stopping"] in ("True", "False") and hp["resize"] == "224"
    assert all(value_error(name, value) is None for name, value in hp.items() if isinstance(value, str))


def test_outputs_are_per_execution(definition):
    steps = _steps(definition)
    staged = steps["PrepareData"]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    predictions = steps["BatchTransformTest"]["Arguments"]["TransformOutput"]
    for uri in (staged, predictions["S3OutputPath"]):
        assert uri["Std:Join"]["Values"][-1] == {"Get": "Execution.PipelineExecutionId"}
    assert predictions["Accept"] == "application/jsonlines"


@pytest.mark.parametrize("text, label", [
    ("s3://bucket/raw/cifar-100-python.tar.gz", "s3://bucket/raw/cifar-100-python.tar.gz"),
    ("cifar-100", "cifar-100"),
    ("file:///data/my%20archive (v2).tar.gz", "file:///data/my_20archive _v2_.tar.gz"),
    ("", "unknown"),
])
def test_registry_metadata_values_satisfy_the_customer_metadata_pattern(text, label):
    assert registry_metadata_value(text) == label


def test_home_relative_data_source_is_expanded(monkeypatch):
    monkeypatch.setenv("HOME", "/home/ml")
    assert registry_metadata_value("~/data/x.tar.gz") == "/home/ml/data/x.tar.gz"
    assert len(registry_metadata_value("a" * 300)) == 256


def test_condition_reads_evaluation_property_file(definition):
    steps = _steps(definition)
    condition = steps["CheckAccuracy"]["Arguments"]["Conditions"][0]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.accuracy.value"
    assert condition["LeftValue"]["Std:JsonGet"]["PropertyFile"] == {"Get": "Steps.EvaluateModel.PropertyFiles.EvaluationReport"}
    assert condition["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    assert [s["Name"] for s in steps["CheckAccuracy"]["Arguments"]["IfSteps"]] == ["FindRegisteredModel", "CheckNewModel"]
    message = steps["AccuracyBelowThreshold"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert {"Get": "Parameters.AccuracyThreshold"} in message and any("Std:JsonGet" in str(v) for v in message)
    files = {f["PropertyFileName"]: f for f in steps["EvaluateModel"]["PropertyFiles"]}
    assert files["EvaluationReport"] == {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation",
                                         "FilePath": "evaluation.json"}


def test_evaluation_gets_the_configured_confidence_threshold(definition):
    arguments = _steps(definition)["EvaluateModel"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--confidence-threshold") + 1] == "0.93"


def test_transform_scores_the_test_split_only(definition):
    transform = _steps(definition)["BatchTransformTest"]["Arguments"]
    values = transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]["Std:Join"]["Values"]
    assert values[-1] == "test/"
    assert transform["ModelName"] == {"Get": "Steps.CreateModel.ModelName"}


def test_an_artifact_already_registered_is_not_registered_again(definition):
    steps = _steps(definition)
    find = steps["FindRegisteredModel"]
    assert find["Arguments"] == {"model_package_group": "scones-vehicle-classifier",
                                 "model_data_url": {"Get": "Steps.TrainModel.ModelArtifacts.S3ModelArtifacts"}}
    assert find["FunctionArn"].endswith(":function:scones-vehicle-classifier-find-registered-model")
    check = steps["CheckNewModel"]["Arguments"]
    assert check["Conditions"] == [{"Type": "Equals", "RightValue": "false",
                                    "LeftValue": {"Get": "Steps.FindRegisteredModel.OutputParameters['registered']"}}]
    assert [s["Name"] for s in check["IfSteps"]] == ["FindChampion", "ScoreChampion", "CompareWithChampion",
                                                    "ChampionGate"] and check["ElseSteps"] == []


def test_a_new_model_must_not_be_worse_than_the_champion(definition):
    steps = _steps(definition)
    find = steps["FindChampion"]
    assert find["FunctionArn"].endswith(":function:scones-vehicle-classifier-find-champion")
    assert find["Arguments"] == {"model_package_group": "scones-vehicle-classifier",
                                 "endpoint_name": "scones-vehicle-classifier",
                                 "challenger_model_name": {"Get": "Steps.CreateModel.ModelName"}}
    score = steps["ScoreChampion"]["Arguments"]      # the champion's model on the challenger's own test images
    assert score["ModelName"] == {"Get": "Steps.FindChampion.OutputParameters['model_name']"}
    assert score["TransformInput"] == steps["BatchTransformTest"]["Arguments"]["TransformInput"]
    assert score["TransformOutput"]["S3OutputPath"]["Std:Join"]["Values"][-1] == {"Get": "Execution.PipelineExecutionId"}
    assert steps["ScoreChampion"]["CacheConfig"]["Enabled"] is True
    compare = steps["CompareWithChampion"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in compare["ProcessingInputs"]}
    assert inputs["predictions"] == {"Get": "Steps.BatchTransformTest.TransformOutput.S3OutputPath"}
    assert inputs["champion-predictions"] == {"Get": "Steps.ScoreChampion.TransformOutput.S3OutputPath"}
    arguments = compare["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--tolerance") + 1] == "0.02"          # the config's, not a start parameter
    assert arguments[arguments.index("--confidence-threshold") + 1] == "0.93"
    files = {f["PropertyFileName"]: f for f in steps["CompareWithChampion"]["PropertyFiles"]}
    assert files["ChampionComparison"] == {"PropertyFileName": "ChampionComparison", "OutputName": "comparison",
                                           "FilePath": "comparison.json"}
    gate = steps["ChampionGate"]["Arguments"]
    assert gate["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"] == "gate.verdict"
    assert gate["Conditions"][0]["RightValue"] == "pass"
    assert [s["Name"] for s in gate["IfSteps"]] == ["RegisterModel", "DeployModel"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["ChallengerWorseThanChampion"]
    message = steps["ChallengerWorseThanChampion"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[1]["Std:JsonGet"]["Path"] == "gate.message"


def test_the_templates_lambda_and_notification_rule_are_the_ones_the_definition_names(definition):
    from local_runtime.template_resources import load_template
    from pipelines.scones.pipeline import CHAMPION_FAIL_STEP

    resources = load_template()["Resources"]
    function = resources["FindChampionFunction"]["Properties"]["FunctionName"]["Fn::Sub"]
    assert _steps(definition)["FindChampion"]["FunctionArn"].endswith(
        function.replace("${ProjectName}", "scones-vehicle-classifier"))
    assert resources["ChallengerStoppedRule"]["Properties"]["EventPattern"]["detail"]["stepName"] == [CHAMPION_FAIL_STEP]
    assert CHAMPION_FAIL_STEP in _steps(definition)


def test_the_champion_script_reads_what_the_definition_mounts(definition):
    from processing import champion

    steps = _steps(definition)
    assert _local_paths(steps["CompareWithChampion"]) == {container.PREDICTIONS_INPUT, champion.CHAMPION_PREDICTIONS_INPUT,
                                                          container.TEST_LST_INPUT, champion.COMPARISON_OUTPUT,
                                                          container.CODE_LIB}
    defaults = champion.parse_args(["--confidence-threshold", "0.93", "--tolerance", "0", "--champion-found", "false"])
    assert (defaults.challenger_predictions_dir, defaults.champion_predictions_dir, defaults.lst, defaults.output_dir) \
        == (container.PREDICTIONS_INPUT, champion.CHAMPION_PREDICTIONS_INPUT, container.TEST_LST,
            champion.COMPARISON_OUTPUT)
    output = steps["CompareWithChampion"]["PropertyFiles"][0]["FilePath"]
    assert output == champion.COMPARISON_REPORT


def _gate_arguments(definition) -> list:
    return _steps(definition)["CompareWithChampion"]["Arguments"]["AppSpecification"]["ContainerArguments"]


def test_the_tolerance_comes_from_the_config_not_from_a_start_parameter(definition):
    assert not any("Tolerance" in p["Name"] for p in definition["Parameters"])     # run-pipeline cannot lower it
    arguments = _gate_arguments(definition)
    assert arguments[arguments.index("--tolerance") + 1] == "0.02"
    lowered = json.loads(pipeline_definition(load_config(environment="dev", environ={}, overrides={
        "pipeline.role_arn": "arn:aws:iam::123456789012:role/x", "evaluation.champion_tolerance": 0.05})))
    arguments = _gate_arguments(lowered)
    assert arguments[arguments.index("--tolerance") + 1] == "0.05"
    with pytest.raises(ConfigError, match="evaluation.champion_tolerance"):
        load_config(environment="dev", environ={}, overrides={"evaluation.champion_tolerance": 0.5})


def test_register_and_deploy(definition):
    steps = _steps(definition)
    register = steps["RegisterModel"]["Arguments"]
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == {
        "Get": "Steps.TrainModel.ModelArtifacts.S3ModelArtifacts"}
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"
    assert set(register["CustomerMetadataProperties"]) == {"git_commit", "data_source", "accuracy", "champion_tolerance",
                                                           "champion", "challenger", "human_labels"}
    assert register["CustomerMetadataProperties"]["human_labels"] == {"Get": "Parameters.HumanLabelsUri"}
    gate_record = register["CustomerMetadataProperties"]["champion_tolerance"]["Std:Join"]["Values"][0]["Std:JsonGet"]
    assert gate_record == {"PropertyFile": {"Get": "Steps.CompareWithChampion.PropertyFiles.ChampionComparison"},
                           "Path": "metadata.champion_tolerance"}
    deploy = steps["DeployModel"]
    assert deploy["Arguments"]["model_package_arn"] == {"Get": "Steps.RegisterModel.ModelPackageArn"}
    assert deploy["FunctionArn"] == "arn:aws:lambda:us-east-1:111122223333:function:scones-vehicle-classifier-deploy-model"


def test_processing_code_is_referenced_by_s3_uri(definition):
    prepare = _steps(definition)["PrepareData"]["Arguments"]
    code = next(i for i in prepare["ProcessingInputs"] if i["InputName"] == "code")
    assert code["S3Input"]["S3Uri"].startswith("s3://scones-unlimited-ml-dev/scones-vehicle-classifier/code/")
    assert prepare["Environment"]["PYTHONPATH"] == "/opt/ml/processing/input/lib"


def _local_paths(step: dict) -> set[str]:
    """The job's mounts, less the one the SDK's ScriptProcessor adds for the entry point itself."""
    arguments = step["Arguments"]
    return ({i["S3Input"]["LocalPath"] for i in arguments["ProcessingInputs"]}
            | {o["S3Output"]["LocalPath"] for o in arguments["ProcessingOutputConfig"]["Outputs"]}) - {
        "/opt/ml/processing/input/code"}


def test_processing_scripts_default_to_where_the_definition_mounts(definition):
    """What the scripts read and write when run with no arguments is what the jobs mount."""
    steps = _steps(definition)
    prepare = prepare_data.parse_args([])
    assert _local_paths(steps["PrepareData"]) == {container.STAGING_INPUT, container.STAGING_OUTPUT, container.CODE_LIB,
                                                  container.HUMAN_LABELS_INPUT}
    assert prepare.output_dir == container.STAGING_OUTPUT
    assert _local_paths(steps["EvaluateModel"]) == {container.PREDICTIONS_INPUT, container.TEST_LST_INPUT,
                                                    container.TEST_IMAGES_INPUT, container.EVALUATION_OUTPUT,
                                                    container.CODE_LIB}
    arguments = steps["EvaluateModel"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments == ["--predictions-dir", container.PREDICTIONS_INPUT, "--lst", container.TEST_LST,
                         "--output-dir", container.EVALUATION_OUTPUT, "--images-dir", container.TEST_IMAGES_INPUT,
                         "--confidence-threshold", "0.93"]
    defaults = evaluate.parse_args(["--confidence-threshold", "0.93"])
    assert (defaults.predictions_dir, defaults.lst, defaults.output_dir, defaults.images_dir) == (
        container.PREDICTIONS_INPUT, container.TEST_LST, container.EVALUATION_OUTPUT, container.TEST_IMAGES_INPUT)


def test_caching_follows_config():
    definition = json.loads(pipeline_definition(load_config(environment="local", environ={},
                                                            overrides={"pipeline.cache_enabled": False})))
    assert not definition["Steps"][0].get("CacheConfig", {}).get("Enabled", False)


def test_cloud_definition_needs_role():
    with pytest.raises(ConfigError, match="pipeline.role_arn"):
        pipeline_definition(load_config(environment="dev", environ={}))
