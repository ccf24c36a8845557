"""Step cache entries exist only for durable outputs and are reused only while those outputs are there."""

import pytest

from local_runtime.pipeline.executor import PipelineExecutor
from tests.local_runtime.pipeline.test_executor import BUCKET, _processing, _script


def _definition(aws, name="Stage"):
    script = _script(aws, "write.py", """
        import pathlib, sys
        out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
        (out / "a.txt").write_text("a")
        (out / "b.txt").write_text("b")
    """)
    return {"Steps": [_processing(name, script, outputs=("staged",), arguments=["--out", "/opt/ml/processing/staged"],
                                  cache=True)]}


def _objects(aws, prefix):
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_the_entry_is_written_only_after_persist(aws, tmp_path):
    entries_when_persisting = []
    executor = PipelineExecutor(_definition(aws, "Persisted"), aws, tmp_path,
                                persist=lambda: entries_when_persisting.append(list((tmp_path / "cache").glob("*.json"))))
    assert executor.start("p").status == "Succeeded"
    assert entries_when_persisting == [[]]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1


def test_a_failed_persist_leaves_no_entry(aws, tmp_path):
    def disk_full():
        raise OSError(28, "No space left on device")

    record = PipelineExecutor(_definition(aws, "Unsaved"), aws, tmp_path, persist=disk_full).start("p")
    assert record.status == "Failed" and "No space left" in record.failure
    assert list((tmp_path / "cache").glob("*.json")) == []


def test_missing_cached_outputs_mean_running_the_step_again(aws, tmp_path):
    executor = PipelineExecutor(_definition(aws, "Lost"), aws, tmp_path)
    assert executor.start("p").step("Lost").status == "Succeeded"
    assert executor.start("p").step("Lost").status == "Cached"
    aws.client("s3").delete_object(Bucket=BUCKET, Key="Lost/staged/b.txt")     # e.g. killed before the state was saved
    again = executor.start("p")
    assert again.status == "Succeeded" and again.step("Lost").status == "Succeeded"
    assert sorted(_objects(aws, "Lost/staged/")) == ["Lost/staged/a.txt", "Lost/staged/b.txt"]
    assert executor.start("p").step("Lost").status == "Cached"


def test_changed_outputs_mean_running_the_step_again(aws, tmp_path):
    executor = PipelineExecutor(_definition(aws, "Changed"), aws, tmp_path)
    executor.start("p")
    aws.client("s3").put_object(Bucket=BUCKET, Key="Changed/staged/a.txt", Body=b"overwritten by another execution")
    assert executor.start("p").step("Changed").status == "Succeeded"


@pytest.mark.parametrize("content", ['{"properties": {"Proc', '{"properties": {}, "property_files": {}}'])
def test_an_unreadable_or_old_entry_means_running_the_step_again(aws, tmp_path, content):
    executor = PipelineExecutor(_definition(aws, "Old"), aws, tmp_path)
    executor.start("p")
    [entry] = (tmp_path / "cache").glob("*.json")
    entry.write_text(content)
    assert executor.start("p").step("Old").status == "Succeeded"
