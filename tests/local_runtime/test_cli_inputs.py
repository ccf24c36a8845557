"""Small inputs the ``scones-local`` commands used to take wrongly, in process: ``--phases nope`` ran nothing and
exited 0, ``--data-source ""`` meant "download", a hand-edited local-aws.env ended in a KeyError traceback."""
import pytest

from local_runtime import cli
from local_runtime.buildspec import BuildspecError, run_buildspec
from local_runtime.provision import REPO_ROOT
from local_runtime.serve import ENV_FILE, NotServingError, read_env_file

BUILDSPEC = REPO_ROOT / "buildspec.yml"


def _env_file(run_dir, text):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ENV_FILE).write_text(text)
    return run_dir / ENV_FILE


@pytest.mark.parametrize("phases, needle", [(("nope",), "'nope'] is not a CodeBuild phase"),
                                            (("build", "biuld"), "'biuld'] is not a CodeBuild phase"),
                                            (("",), "is not a CodeBuild phase"),
                                            (("install",), "skipped locally")])
def test_phases_that_would_run_nothing_are_refused_before_anything_runs(tmp_path, phases, needle):
    env_file = _env_file(tmp_path, "export AWS_ENDPOINT_URL=http://127.0.0.1:1\nexport AWS_DEFAULT_REGION=us-east-1\n")
    with pytest.raises(BuildspecError, match=needle):
        run_buildspec(BUILDSPEC, env_file, phases)


def test_the_buildspec_command_exits_2_on_unknown_phases_and_an_empty_data_source(tmp_path, capsys):
    _env_file(tmp_path / "run", "export AWS_ENDPOINT_URL=http://127.0.0.1:1\nexport AWS_DEFAULT_REGION=us-east-1\n")
    assert cli.main(["buildspec", "--run-dir", str(tmp_path / "run"), "--phases", "nope"]) == 2
    assert "BuildspecError" in capsys.readouterr().err
    assert cli.main(["buildspec", "--run-dir", str(tmp_path / "run"), "--data-source", ""]) == 2
    assert "--data-source is empty" in capsys.readouterr().err


def test_an_empty_data_source_is_a_named_error_for_run(tmp_path, capsys):
    assert cli.main(["run", "--run-dir", str(tmp_path / "run"), "--data-source", ""]) == 2
    assert "data.source = '' is invalid" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, needle", [("export AWS_ENDPOINT_URL=http://127.0.0.1:1\n", "lacks AWS_DEFAULT_REGION"),
                                          ("# nothing\n", "lacks AWS_ENDPOINT_URL, AWS_DEFAULT_REGION"),
                                          ("export AWS_ENDPOINT_URL='unclosed\n", "not a shell value")])
def test_a_hand_edited_env_file_is_named_not_a_traceback(tmp_path, capsys, text, needle):
    env_file = _env_file(tmp_path / "run", text)
    with pytest.raises(NotServingError, match=needle):
        read_env_file(env_file)
    assert cli.main(["fire-schedule", "--run-dir", str(tmp_path / "run")]) == 2
    assert "NotServingError" in capsys.readouterr().err


def test_prepare_data_with_an_empty_data_source_does_not_download(tmp_path, capsys, monkeypatch):
    from processing import cifar_source, prepare_data

    monkeypatch.setattr(cifar_source, "fetch_official", lambda *a, **k: pytest.fail("downloaded for ''"))
    assert prepare_data.main(["--data-source", "", "--output-dir", str(tmp_path / "out")]) == 2
    assert "DataSourceError: the data source is empty" in capsys.readouterr().err


def test_the_env_file_is_replaced_whole_and_private(tmp_path, monkeypatch):
    """serve wrote local-aws.env in place: a reader could see half of it. Now a private temporary file is renamed
    over it, so a reader sees the old file or the new one; a write that fails leaves the old one and no litter."""
    import os

    from local_runtime.serve import write_private

    target = _env_file(tmp_path, "export AWS_ENDPOINT_URL=http://127.0.0.1:1\nexport AWS_DEFAULT_REGION=us-east-1\n")
    target.chmod(0o644)
    write_private(target, "export AWS_ENDPOINT_URL=http://127.0.0.1:2\nexport AWS_DEFAULT_REGION=eu-west-1\n")
    assert read_env_file(target)["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert os.stat(target).st_mode & 0o777 == 0o600

    def disk_full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        write_private(target, "export AWS_ENDPOINT_URL=http://127.0.0.1:3\n")
    assert read_env_file(target)["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [ENV_FILE]
