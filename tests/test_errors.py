"""run_stage: a user's mistake is one line and exit 2; the environment is recorded for stages only."""
import subprocess
import sys
import types

import pytest

from lib.core.errors import UserError
from lib.core.stage import _stage_name, run_stage


def test_user_error_is_one_line_and_exit_2(capsys):
    def main():
        raise UserError("params.yaml: pack.dtype: expected 'uint16' or 'uint32'")

    with pytest.raises(SystemExit) as exit_info:
        run_stage(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: params.yaml: pack.dtype: expected 'uint16' or 'uint32'\n"


def test_stage_names(monkeypatch):
    for module, expected in [("stages.pretrain", "pretrain"), ("lib.hf.verify", None), ("lib.report", None)]:
        fake = types.ModuleType(module)
        fake.__spec__ = types.SimpleNamespace(name=module)
        monkeypatch.setitem(sys.modules, "__fake__", fake)

        def main():
            pass

        main.__module__ = "__fake__"
        assert _stage_name(main) == expected


def test_a_stage_records_its_environment(tmp_path, repo_root):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "__init__.py").write_text("")
    (tmp_path / "stages" / "demo.py").write_text(
        "from lib.core.stage import run_stage\n\ndef main():\n    pass\n\nif __name__ == '__main__':\n    run_stage(main)\n")
    env = {"PYTHONPATH": f"{tmp_path}:{repo_root}", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "stages.demo"], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "metrics" / "env" / "demo.json").is_file()
