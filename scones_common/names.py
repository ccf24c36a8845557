"""Names of the project's AWS resources and S3 locations, derived from the configuration.

Kept free of the SageMaker SDK on purpose: the pipeline definition, the CLIs and the local
runtime name things the same way, and the local stack starts without paying ~2 s for the SDK.
"""
from __future__ import annotations

from scones_common.config import SconesConfig

ALGORITHM_IMAGE = "image-classification"      # the built-in algorithm's image repository: trains and serves
OFFICIAL_ARCHIVE_NAME = "cifar-100-python.tar.gz"
DEPLOY_FUNCTION_SUFFIX = "deploy-model"
HUMAN_LABELS = "human-labels"                   # the template's LABELS_S3_URI: one record per answered review
PENDING_REVIEWS = "human-reviews/pending"       # the template's PENDING_S3_URI: one record per waiting review
HUMAN_LABEL_SETS = "human-label-sets"           # content-addressed manifests of the labels a pipeline run used


def raw_data_uri(config: SconesConfig) -> str:
    """Where the source archive is mirrored (named after it); Processing jobs read only S3."""
    name = config.data.source.rstrip("/").rsplit("/", 1)[-1]
    return f"{config.s3_root}/raw/{name if name.endswith('.tar.gz') else OFFICIAL_ARCHIVE_NAME}"


def capture_uri(config: SconesConfig) -> str:
    """The endpoint's data-capture destination; files go under ``<endpoint>/<variant>/…`` below it."""
    return f"{config.s3_root}/{config.endpoint.capture_prefix}"


def drift_reports_uri(config: SconesConfig) -> str:
    """The drift monitor's reports; each endpoint's go under ``<endpoint>/yyyy/mm/dd/`` below it."""
    return f"{config.s3_root}/{config.monitor.report_prefix}"


def deploy_function_name(config: SconesConfig) -> str:
    return f"{config.project.name}-{DEPLOY_FUNCTION_SUFFIX}"


def find_registered_function_name(config: SconesConfig) -> str:
    """The Lambda the pipeline asks whether a model artifact is already registered."""
    return f"{config.project.name}-find-registered-model"


def human_labels_uri(config: SconesConfig) -> str:
    """The human labels: ``<review id>.json`` each, written once by the review's recording step."""
    return f"{config.s3_root}/{HUMAN_LABELS}"


def pending_reviews_uri(config: SconesConfig) -> str:
    """The review requests still waiting for a person (removed when the label is recorded)."""
    return f"{config.s3_root}/{PENDING_REVIEWS}"


def human_label_sets_uri(config: SconesConfig) -> str:
    """Where ``run-pipeline`` writes the manifest of the labels at start time, keyed by its content."""
    return f"{config.s3_root}/{HUMAN_LABEL_SETS}"


def human_review_function_name(config: SconesConfig) -> str:
    """The template's HumanReviewFunction: PrepareReview and RecordReview, and answers to executions that are gone."""
    return f"{config.project.name}-human-review"
