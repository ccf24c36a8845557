"""Asserts on the real outcomes of a local run: a package exists, the endpoint answered, captures exist."""
import json
import sys
from pathlib import Path

run_dir = Path(sys.argv[1])
summary = json.loads((run_dir / "summary.json").read_text())
problems = []
if summary["execution"]["status"] != "Succeeded":
    problems.append(f"pipeline {summary['execution']['status']}: {summary['execution'].get('failure')}")
if not summary.get("model_package_arn"):
    problems.append("no model package registered")
if not summary.get("endpoint_answers"):
    problems.append("the endpoint did not answer the inference workflow")
if summary.get("capture_records", 0) < len(summary.get("workflow", [])) or not summary.get("workflow"):
    problems.append(f"{summary.get('capture_records')} capture records for {len(summary.get('workflow', []))} executions")
if (summary.get("accuracy") or 0) < 0.85:
    problems.append(f"test accuracy {summary.get('accuracy')} < 0.85")
if summary.get("workflow") and summary.get("drift") is None:
    problems.append("the drift monitor did not run on the captured traffic")
captures = list((run_dir / "state" / "buckets").rglob("*.jsonl"))     # one file per object, key percent-encoded
if not captures:
    problems.append("no data capture files persisted under the run directory")
print(f"local run: accuracy {summary.get('accuracy')}, package {summary.get('model_package_arn')}, "
      f"{summary.get('capture_records')} captures in {len(captures)} files")
if problems:
    sys.exit("local run check failed: " + "; ".join(problems))
