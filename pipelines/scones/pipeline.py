"""The vehicle-classifier SageMaker pipeline.

::

    PrepareData ──► TrainModel ──► CreateModel ──► BatchTransformTest ──► EvaluateModel
         │                                                                     │
         └──── train / validation / test images + .lst ─────────────────────► CheckAccuracy
                                                                    accuracy ≥ AccuracyThreshold?
                                                                 yes │                  │ no
                                                     FindRegisteredModel   AccuracyBelowThreshold
                                                  (artifact already in the          (FailStep)
                                                   model package group?)
                                                                     │
                                                              CheckNewModel ── registered: nothing
                                                                  no │          to register or deploy
                                                              FindChampion (Lambda: the endpoint's model,
                                                                     │       else the newest approved)
                                                              ScoreChampion (the champion's batch transform
                                                                     │       of the same test images; cached)
                                                           CompareWithChampion (comparison.json)
                                                                     │
                                                              ChampionGate ── worse beyond the tolerance:
                                                                pass │        ChallengerWorseThanChampion
                                                              RegisterModel                 (FailStep)
                                                                     │
                                                               DeployModel
                                                          (deploy Lambda: only
                                                           Approved packages)

The test split is touched only by BatchTransformTest/EvaluateModel (and, for the champion,
ScoreChampion/CompareWithChampion): model selection (early stopping) sees the validation split alone.
SageMaker pipelines cannot join two condition branches into one step, so ScoreChampion always runs
once a new artifact passed the absolute gate: with no champion it scores the challenger's own model,
which CompareWithChampion ignores (the first model passes on the absolute gate alone).
"""
from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass

from pipelines.scones import sdk
from pipelines.scones.code_bundle import CodeBundle, code_bundle
from scones_common.algorithm_contract import to_text
from scones_common.config import NO_AUGMENTATION, SconesConfig
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.contracts.container import (
    CODE_LIB,
    EVALUATION_OUTPUT,
    EVALUATION_REPORT,
    HUMAN_LABELS_INPUT,
    PREDICTIONS_INPUT,
    PROCESSING,
    STAGING_INPUT,
    STAGING_OUTPUT,
    TEST_IMAGES_INPUT,
    TEST_LST,
    TEST_LST_INPUT,
)
from scones_common.contracts.staged_data import STAGING_REPORT, lst_name
from scones_common.names import ALGORITHM_IMAGE, deploy_function_name, find_registered_function_name, raw_data_uri

IMAGE_CONTENT_TYPE = "application/x-image"
IMAGE_SIDE = 32                          # CIFAR images are staged as they are: 32×32 RGB PNGs
PRETRAINED_IMAGE_SIDE = 224             # the only input size of the algorithm's pretrained networks
PREDICTIONS_ACCEPT = "application/jsonlines"   # the algorithm's documented batch output: {"prediction": [...]}
METADATA_VALUE_MAX = 256
METADATA_PUNCTUATION = "_.:/=+-@"
# The champion gate (processing/champion.py): FindChampion's outputs, the comparison's files and mounts, the
# Fail step that stops a worse challenger, and what RegisterModel records of the comparison
CHAMPION_OUTPUTS = ("found", "model_name", "model_package_arn", "model_package_version", "source")
CHAMPION_PREDICTIONS_INPUT = f"{PROCESSING}/input/champion-predictions"
COMPARISON_OUTPUT = f"{PROCESSING}/comparison"
COMPARISON_REPORT = "comparison.json"
CHAMPION_FAIL_STEP = "ChallengerWorseThanChampion"
GATE_METADATA = ("champion_tolerance", "champion", "challenger")


def find_champion_function_name(config: SconesConfig) -> str:
    """The Lambda that names the model a challenger must beat (inference_workflow/find_champion/)."""
    return f"{config.project.name}-find-champion"


@dataclass(frozen=True)
class Parameters:
    input_data_uri: object
    data_source_label: object
    git_commit: object
    processing_instance_type: object
    training_instance_type: object
    transform_instance_type: object
    epochs: object
    learning_rate: object
    mini_batch_size: object
    validation_fraction: object
    accuracy_threshold: object
    approval_status: object
    human_labels_uri: object

    def all(self) -> list:
        return list(self.__dict__.values())


def algorithm_image_uri(region: str) -> str:
    """The built-in image-classification algorithm's image: what trains, and what serves on AWS."""
    return sdk.image_uris.retrieve(ALGORITHM_IMAGE, region)


def account_of(role_arn: str) -> str:
    return role_arn.split(":")[4]


def registry_metadata_value(text: str) -> str:
    """``text`` made valid as a CustomerMetadataProperties value, which CreateModelPackage checks.

    The value pattern allows letters, numbers, spaces and ``_.:/=+-@`` (1–256 characters): a
    leading ``~`` is expanded, any other character becomes ``_``, and the value is cut to 256.
    """
    text = os.path.expanduser(text) if text.startswith("~") else text
    cleaned = "".join(c if unicodedata.category(c)[0] in "LNZ" or c in METADATA_PUNCTUATION else "_" for c in text)
    return cleaned[:METADATA_VALUE_MAX] or "unknown"


def _parameters(config: SconesConfig) -> Parameters:
    hp = config.training.hyperparameters
    return Parameters(
        input_data_uri=sdk.ParameterString("InputDataUri", default_value=raw_data_uri(config)),
        data_source_label=sdk.ParameterString("DataSource", default_value=registry_metadata_value(config.data.source)),
        git_commit=sdk.ParameterString("GitCommit", default_value=registry_metadata_value(config.project.git_commit)),
        processing_instance_type=sdk.ParameterString("ProcessingInstanceType", default_value=config.processing.instance_type),
        training_instance_type=sdk.ParameterString("TrainingInstanceType", default_value=config.training.instance_type),
        transform_instance_type=sdk.ParameterString("TransformInstanceType",
                                                    default_value=config.evaluation.transform_instance_type),
        epochs=sdk.ParameterInteger("Epochs", default_value=hp.epochs),
        learning_rate=sdk.ParameterFloat("LearningRate", default_value=hp.learning_rate),
        mini_batch_size=sdk.ParameterInteger("MiniBatchSize", default_value=hp.mini_batch_size),
        validation_fraction=sdk.ParameterFloat("ValidationFraction", default_value=config.data.validation_fraction),
        accuracy_threshold=sdk.ParameterFloat("AccuracyThreshold", default_value=config.evaluation.accuracy_threshold),
        approval_status=sdk.ParameterString("ModelApprovalStatus", default_value=config.registry.approval_status),
        human_labels_uri=sdk.ParameterString("HumanLabelsUri", default_value=_empty_label_set(config)),
    )


def _empty_label_set(config: SconesConfig) -> str:
    from pipelines.scones.human_labels import empty_set_uri

    return empty_set_uri(config)


def training_hyperparameters(hp) -> dict[str, str]:
    """TrainModel's hyperparameters from ``training.hyperparameters`` (the one recipe), as strings: documented
    names only (scones_common/algorithm_contract.py), without ``num_training_samples`` (PrepareData counts them).

    A pretrained network takes 224 × 224 px images only (the algorithm's ``image_shape``), so with
    ``use_pretrained_model`` the images are resized to that (``resize``, the shorter side, required for
    image content types); a network trained from scratch takes the staged 32 × 32 images as they are.
    """
    side = PRETRAINED_IMAGE_SIDE if hp.use_pretrained_model else IMAGE_SIDE
    values = {"num_classes": str(len(CLASS_NAMES)), "image_shape": f"3,{side},{side}", "resize": str(side),
              "use_pretrained_model": to_text(hp.use_pretrained_model), "num_layers": to_text(hp.num_layers),
              "epochs": to_text(hp.epochs), "learning_rate": to_text(hp.learning_rate),
              "mini_batch_size": to_text(hp.mini_batch_size), "optimizer": hp.optimizer,
              "momentum": to_text(hp.momentum), "weight_decay": to_text(hp.weight_decay),
              "early_stopping": to_text(hp.early_stopping),
              "early_stopping_patience": to_text(hp.early_stopping_patience),
              "early_stopping_min_epochs": to_text(min(hp.epochs, hp.early_stopping_patience))}
    if hp.augmentation_type != NO_AUGMENTATION:
        values["augmentation_type"] = hp.augmentation_type
    return values


def _text(value) -> object:
    """Hyperparameters must be strings; Std:Join turns a pipeline variable into one at run time."""
    return sdk.Join(on="", values=[value])


def _s3_input(name: str, uri, local_path: str) -> object:
    return sdk.ProcessingInput(input_name=name, s3_input=sdk.ProcessingS3Input(
        s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="FullyReplicated"))


def _s3_output(name: str, local_path: str, uri) -> object:
    return sdk.ProcessingOutput(output_name=name, s3_output=sdk.ProcessingS3Output(
        s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob"))


def _channel(name: str, uri) -> object:
    return sdk.Channel(channel_name=name, content_type=IMAGE_CONTENT_TYPE, input_mode="File",
                       data_source=sdk.DataSource(s3_data_source=sdk.S3DataSource(
                           s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated")))


def _execution_uri(config: SconesConfig, name: str) -> object:
    """Per-execution output location: concurrent executions never write into each other's files.

    Outputs are not among a step's cache key attributes (Processing: AppSpecification, Environment,
    ProcessingInputs; Transform: DataProcessing, Environment, ModelName, TransformInput), so the
    execution id here does not defeat caching: a cache hit hands on the earlier execution's URI.
    """
    return sdk.Join(on="/", values=[config.s3_root, name, sdk.ExecutionVariables.PIPELINE_EXECUTION_ID])


def get_pipeline(config: SconesConfig, role_arn: str | None = None, bucket: str | None = None,
                 bundle: CodeBundle | None = None, session=None):
    """Builds the pipeline object; no AWS call is made until ``upsert``/``start``."""
    config = config.model_copy(update={
        "storage": config.storage.model_copy(update={"bucket": bucket or config.storage.bucket}),
        "pipeline": config.pipeline.model_copy(update={"role_arn": role_arn or config.pipeline.role_arn})}).require_cloud()
    role_arn = config.pipeline.role_arn
    region = config.project.region
    sdk.skip_role_validation()
    session = session or sdk.pipeline_session(region, config.storage.bucket)
    bundle = bundle or code_bundle()
    params = _parameters(config)
    cache = sdk.CacheConfig(enable_caching=config.pipeline.cache_enabled, expire_after=config.pipeline.cache_expire_after)
    processing_image = sdk.image_uris.retrieve("pytorch", region, version=config.processing.framework_version,
                                               py_version=config.processing.py_version,
                                               instance_type=config.processing.instance_type, image_scope="training")
    algorithm_image = algorithm_image_uri(region)

    def processor(job_name: str):
        return sdk.ScriptProcessor(role=role_arn, image_uri=processing_image, command=["python3"],
                                   instance_count=1, instance_type=params.processing_instance_type,
                                   base_job_name=f"{config.project.name}-{job_name}", sagemaker_session=session,
                                   env={"PYTHONPATH": CODE_LIB, "PYTHONUNBUFFERED": "1"})

    code_lib = _s3_input("code-lib", bundle.uri(config.s3_root), CODE_LIB)

    # 1. PrepareData
    staging_report = sdk.PropertyFile(name="StagingReport", output_name="staged", path=STAGING_REPORT)
    prepare = sdk.ProcessingStep(
        name="PrepareData",
        step_args=processor("prepare-data").run(
            code=bundle.uri(config.s3_root, "processing/prepare_data.py"),
            inputs=[_s3_input("data", params.input_data_uri, STAGING_INPUT),
                    _s3_input("human-labels", params.human_labels_uri, HUMAN_LABELS_INPUT), code_lib],
            outputs=[_s3_output("staged", STAGING_OUTPUT, _execution_uri(config, "staged"))],
            arguments=["--data-source", STAGING_INPUT, "--output-dir", STAGING_OUTPUT,
                       "--human-labels-dir", HUMAN_LABELS_INPUT,
                       "--validation-fraction", _text(params.validation_fraction), "--seed", str(config.data.seed)]),
        property_files=[staging_report], cache_config=cache)
    staged = prepare.properties.ProcessingOutputConfig.Outputs["staged"].S3Output.S3Uri

    def staged_file(relative: str):
        return sdk.Join(on="/", values=[staged, relative])

    def score_test_images(step_name: str, model_name, output: str, job_name: str):
        """A batch transform of the staged test images: the challenger's (BatchTransformTest), then the champion's."""
        transformer = sdk.Transformer(model_name=model_name, instance_count=1,
                                      instance_type=params.transform_instance_type, accept=PREDICTIONS_ACCEPT,
                                      output_path=_execution_uri(config, output),
                                      base_transform_job_name=f"{config.project.name}-{job_name}",
                                      sagemaker_session=session)
        return sdk.TransformStep(
            name=step_name,
            step_args=transformer.transform(data=staged_file("test/"), content_type=IMAGE_CONTENT_TYPE,
                                            split_type="None"),
            cache_config=cache)

    # 2. TrainModel
    hp = config.training.hyperparameters
    hyperparameters = {**training_hyperparameters(hp),   # pipeline variables where the run may change the value
                       "num_training_samples": _text(sdk.JsonGet(step_name=prepare.name, property_file=staging_report,
                                                                 json_path="num_training_samples")),
                       "epochs": _text(params.epochs), "learning_rate": _text(params.learning_rate),
                       "mini_batch_size": _text(params.mini_batch_size)}
    trainer = sdk.ModelTrainer(
        training_image=algorithm_image, role=role_arn, sagemaker_session=session,
        base_job_name=f"{config.project.name}-train",
        compute=sdk.Compute(instance_type=params.training_instance_type, instance_count=config.training.instance_count,
                            volume_size_in_gb=config.training.volume_size_gb),
        stopping_condition=sdk.StoppingCondition(max_runtime_in_seconds=config.training.max_runtime_seconds),
        output_data_config=sdk.OutputDataConfig(s3_output_path=f"{config.s3_root}/models"),
        hyperparameters=hyperparameters, training_input_mode="File")
    train = sdk.TrainingStep(
        name="TrainModel",
        step_args=trainer.train(input_data_config=[
            _channel("train", staged_file("train/")), _channel("validation", staged_file("validation/")),
            _channel("train_lst", staged_file(lst_name("train"))),
            _channel("validation_lst", staged_file(lst_name("validation")))]),
        cache_config=cache)
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    # 3. CreateModel + BatchTransformTest
    sdk.quiet_sdk_loggers()
    model_builder = sdk.ModelBuilder(image_uri=algorithm_image, s3_model_data_url=model_data, role_arn=role_arn,
                                     sagemaker_session=session)
    create_model = sdk.ModelStep(name="CreateModel", step_args=model_builder.build())
    transform = score_test_images("BatchTransformTest", create_model.properties.ModelName, "predictions", "test")

    # 4. EvaluateModel
    evaluation_report = sdk.PropertyFile(name="EvaluationReport", output_name="evaluation", path=EVALUATION_REPORT)
    evaluate = sdk.ProcessingStep(
        name="EvaluateModel",
        step_args=processor("evaluate").run(
            code=bundle.uri(config.s3_root, "processing/evaluate.py"),
            inputs=[_s3_input("predictions", transform.properties.TransformOutput.S3OutputPath, PREDICTIONS_INPUT),
                    _s3_input("test-lst", staged_file(lst_name("test")), TEST_LST_INPUT),
                    _s3_input("test-images", staged_file("test/"), TEST_IMAGES_INPUT), code_lib],
            outputs=[_s3_output("evaluation", EVALUATION_OUTPUT, _execution_uri(config, "evaluation"))],
            arguments=["--predictions-dir", PREDICTIONS_INPUT, "--lst", TEST_LST,
                       "--output-dir", EVALUATION_OUTPUT, "--images-dir", TEST_IMAGES_INPUT,
                       "--confidence-threshold", str(config.inference.confidence_threshold)]),
        property_files=[evaluation_report], cache_config=cache)
    accuracy = sdk.JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path="metrics.accuracy.value")
    evaluation_uri = sdk.Join(on="/", values=[
        evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, EVALUATION_REPORT])

    # 5b. The champion gate: the challenger against the live model, on the same test images
    functions = f"arn:aws:lambda:{region}:{account_of(role_arn)}:function"
    find_champion = sdk.LambdaStep(
        name="FindChampion",
        lambda_func=sdk.Lambda(function_arn=f"{functions}:{find_champion_function_name(config)}", session=session),
        inputs={"model_package_group": config.registry.model_package_group, "endpoint_name": config.endpoint.name,
                "challenger_model_name": create_model.properties.ModelName},
        outputs=[sdk.LambdaOutput(output_name=name, output_type=sdk.LambdaOutputTypeEnum.String)
                 for name in CHAMPION_OUTPUTS])
    champion = find_champion.properties.Outputs
    # cached: the same champion model on the same staged images scores once
    score_champion = score_test_images("ScoreChampion", champion["model_name"], "champion-predictions", "champion")
    comparison_report = sdk.PropertyFile(name="ChampionComparison", output_name="comparison", path=COMPARISON_REPORT)
    compare = sdk.ProcessingStep(
        name="CompareWithChampion",
        step_args=processor("compare").run(
            code=bundle.uri(config.s3_root, "processing/champion.py"),
            inputs=[_s3_input("predictions", transform.properties.TransformOutput.S3OutputPath, PREDICTIONS_INPUT),
                    _s3_input("champion-predictions", score_champion.properties.TransformOutput.S3OutputPath,
                              CHAMPION_PREDICTIONS_INPUT),
                    _s3_input("test-lst", staged_file(lst_name("test")), TEST_LST_INPUT), code_lib],
            outputs=[_s3_output("comparison", COMPARISON_OUTPUT, _execution_uri(config, "comparison"))],
            arguments=["--challenger-predictions-dir", PREDICTIONS_INPUT,
                       "--champion-predictions-dir", CHAMPION_PREDICTIONS_INPUT, "--lst", TEST_LST,
                       "--output-dir", COMPARISON_OUTPUT,
                       "--confidence-threshold", str(config.inference.confidence_threshold),
                       "--tolerance", str(config.evaluation.champion_tolerance),   # from the config, never a parameter
                       "--champion-found", _text(champion["found"]),
                       "--champion-package-arn", _text(champion["model_package_arn"]),
                       "--champion-version", _text(champion["model_package_version"]),
                       "--champion-source", _text(champion["source"]),
                       "--champion-model-name", _text(champion["model_name"])]),
        property_files=[comparison_report], cache_config=cache)

    def compared(path: str):
        return sdk.JsonGet(step_name=compare.name, property_file=comparison_report, json_path=path)

    # 6. RegisterModel, 7. DeployModel
    register = sdk.ModelStep(name="RegisterModel", step_args=model_builder.register(
        model_package_group_name=config.registry.model_package_group,
        content_types=["image/png", IMAGE_CONTENT_TYPE], response_types=["application/json"],
        inference_instances=[config.endpoint.instance_type], transform_instances=[config.evaluation.transform_instance_type],
        approval_status=params.approval_status,
        model_metrics=sdk.ModelMetrics(model_statistics=sdk.MetricsSource(content_type="application/json",
                                                                           s3_uri=evaluation_uri)),
        metadata_properties=sdk.MetadataProperties(commit_id=params.git_commit, generated_by=config.pipeline.name),
        customer_metadata_properties={"git_commit": params.git_commit, "data_source": params.data_source_label,
                                      "human_labels": params.human_labels_uri,
                                      "accuracy": _text(accuracy),
                                      **{key: _text(compared(f"metadata.{key}")) for key in GATE_METADATA}},
        domain="COMPUTER_VISION", task="IMAGE_CLASSIFICATION"))
    deploy = sdk.LambdaStep(
        name="DeployModel", lambda_func=sdk.Lambda(function_arn=f"{functions}:{deploy_function_name(config)}",
                                                   session=session),
        inputs={"model_package_arn": register.properties.ModelPackageArn, "source": "pipeline"},
        outputs=[sdk.LambdaOutput(output_name="status", output_type=sdk.LambdaOutputTypeEnum.String),
                 sdk.LambdaOutput(output_name="endpoint_name", output_type=sdk.LambdaOutputTypeEnum.String)],
        depends_on=[register])

    # 5. CheckAccuracy, then FindRegisteredModel + CheckNewModel: a cached run's artifact is not registered twice;
    #    a new one faces the champion gate before RegisterModel
    find_registered = sdk.LambdaStep(
        name="FindRegisteredModel",
        lambda_func=sdk.Lambda(function_arn=f"{functions}:{find_registered_function_name(config)}", session=session),
        inputs={"model_package_group": config.registry.model_package_group, "model_data_url": model_data},
        outputs=[sdk.LambdaOutput(output_name=name, output_type=sdk.LambdaOutputTypeEnum.String)
                 for name in ("registered", "model_package_arn", "approval_status")])
    worse = sdk.FailStep(name=CHAMPION_FAIL_STEP, error_message=sdk.Join(on=" ", values=[
        "Champion gate:", compared("gate.message"), "- the model was not registered."]))
    gate = sdk.ConditionStep(
        name="ChampionGate",
        conditions=[sdk.ConditionEquals(left=compared("gate.verdict"), right="pass")],
        if_steps=[register, deploy], else_steps=[worse])
    new_model = sdk.ConditionStep(
        name="CheckNewModel",
        conditions=[sdk.ConditionEquals(left=find_registered.properties.Outputs["registered"], right="false")],
        if_steps=[find_champion, score_champion, compare, gate], else_steps=[])
    below = sdk.FailStep(name="AccuracyBelowThreshold", error_message=sdk.Join(on=" ", values=[
        "Test accuracy", accuracy, "is below the AccuracyThreshold", params.accuracy_threshold,
        "- the model was not registered."]))
    check = sdk.ConditionStep(
        name="CheckAccuracy",
        conditions=[sdk.ConditionGreaterThanOrEqualTo(left=accuracy, right=params.accuracy_threshold)],
        if_steps=[find_registered, new_model], else_steps=[below])

    return sdk.Pipeline(name=config.pipeline.name, parameters=params.all(),
                        steps=[prepare, train, create_model, transform, evaluate, check], sagemaker_session=session)


def pipeline_definition(config: SconesConfig, **kwargs) -> str:
    definition = get_pipeline(config, **kwargs).definition()
    sdk.quiet_sdk_loggers()
    return definition
