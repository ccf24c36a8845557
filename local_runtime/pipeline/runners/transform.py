"""Transform steps: batch scoring with the same inference code as the endpoint.

Each input object gives one ``<relative path>.out`` holding what the built-in image-classification
algorithm documents for batch transform: one JSON line ``{"prediction": [p0, p1, ...]}`` (for
``Accept: application/jsonlines`` and ``application/json`` alike: one image, one record).
"""
from __future__ import annotations

import json
import time

from local_runtime.pipeline.runners.base import StepContext, StepFailedError
from local_runtime.pipeline.s3io import download_prefix, upload_dir
from local_runtime.serving.model import ImageClassifier, InvalidImageError
from local_runtime.serving.resolve import model_artifact_uri
from scones_common.s3uri import parse_s3_uri

BATCH = 64
ACCEPTED = ("application/jsonlines", "application/json")


def prediction_record(probabilities) -> str:
    """One image's output record, newline-terminated (JSON Lines; also a valid JSON document)."""
    return json.dumps({"prediction": [float(p) for p in probabilities]}) + "\n"


def run(args: dict, ctx: StepContext) -> tuple[dict, dict]:
    accept = args.get("TransformOutput", {}).get("Accept") or "application/json"
    if accept not in ACCEPTED:
        raise StepFailedError(ctx.step_name, f"ClientError: the image-classification algorithm cannot answer "
                                             f"Accept {accept!r}; it writes {' or '.join(ACCEPTED)}")
    artifact_uri = model_artifact_uri(ctx.clients.client("sagemaker"), args["ModelName"])
    artifact = ctx.work_dir / "model.tar.gz"
    location = parse_s3_uri(artifact_uri)
    artifact.write_bytes(ctx.job_objects.read(location.bucket, location.key))
    model = ImageClassifier.from_artifact(artifact, ctx.work_dir / "model")

    inputs, outputs = ctx.work_dir / "input", ctx.work_dir / "output"
    download_prefix(ctx.job_objects, args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], inputs,
                    ctx.clients.region)
    files = sorted(p for p in inputs.rglob("*") if p.is_file())
    started = time.perf_counter()
    for start in range(0, len(files), BATCH):
        chunk = files[start:start + BATCH]
        try:
            probabilities = model.predict([p.read_bytes() for p in chunk])
        except InvalidImageError as exc:
            raise StepFailedError(ctx.step_name, f"{exc} (in {chunk[0].parent})") from exc
        for path, row in zip(chunk, probabilities):
            target = outputs / f"{path.relative_to(inputs)}.out"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(prediction_record(row))
    upload_dir(ctx.job_objects, outputs, args["TransformOutput"]["S3OutputPath"])
    properties = {**args, "TransformJobName": ctx.job_name, "TransformJobStatus": "Completed",
                  "RecordsScored": len(files), "ScoringSeconds": round(time.perf_counter() - started, 3)}
    return properties, {}
