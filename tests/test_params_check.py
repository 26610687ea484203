"""The whole-file params check: a misspelt top-level section is named with a did-you-mean by every
stage, by the `check` stage that DVC runs on any params.yaml edit, and by `hpc-lm check`, which
also checks every key of every section and lists every faulty section at once."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from lib.cli.check import SCHEMAS, main as check_main
from lib.core.errors import UserError
from lib.core.params import SECTIONS, ParamsError, check_file
from tests.pipeline_helpers import ROOT, env


def write(tmp_path, data: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shipped() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_shipped_params_pass(capsys):
    assert check_main(["--params", str(ROOT / "params.yaml")]) == 0
    assert "ok (9 sections, the seed and the engine" in capsys.readouterr().out
    assert set(SCHEMAS) | {"seed", "engine"} == set(SECTIONS)


def test_the_sections_are_those_the_stages_declare():
    """A new stage with a params section is its script, its dvc.yaml entry (``params:``), the
    section's name in ``SECTIONS`` and its dataclass in ``SCHEMAS``: forgetting one fails here,
    before a misspelt or unchecked section could pass silently. The one exception is ``engine``:
    where the data stages run changes no output, so no stage declares it (a switch reruns nothing)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = {str(p).split(".")[0] for s in stages.values() for p in s.get("params", [])}
    assert declared | {"engine"} == set(SECTIONS)
    assert set(SCHEMAS) == declared - {"seed"}


def test_a_misspelt_section_is_named_with_a_guess(tmp_path):
    data = shipped()
    data["pretrian"] = data.pop("pretrain")
    path = write(tmp_path, data)
    with pytest.raises(ParamsError, match=r"pretrian: unknown key; did you mean 'pretrain'\?"):
        check_file(path)


def test_a_missing_section_and_a_bad_seed(tmp_path):
    data = shipped()
    del data["pack"], data["attention"]  # attention is optional: only pack is missing
    with pytest.raises(ParamsError, match=r"missing section pack; add it"):
        check_file(write(tmp_path, data))
    data = shipped()
    data["seed"] = "abc"
    with pytest.raises(ParamsError, match=r"seed: expected an integer"):
        check_file(write(tmp_path, data))


def test_the_command_lists_every_faulty_section(tmp_path):
    data = shipped()
    data["pack"]["dtpye"] = "uint16"
    data["eval"]["max_new_tokens"] = "many"
    with pytest.raises(UserError) as err:
        check_main(["--params", str(write(tmp_path, data))])
    text = str(err.value)
    assert "pack.dtpye: unknown key; did you mean 'dtype'?" in text
    assert "eval.max_new_tokens: expected an integer" in text


def test_the_check_stage_stops_on_a_misspelt_section(tmp_path):
    data = shipped()
    data["pretrian"] = data.pop("pretrain")
    write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "stages.check"], cwd=tmp_path, capture_output=True, text=True,
                          env={**env(), "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: params.yaml: pretrian: unknown key; did you mean 'pretrain'?")
    assert "Traceback" not in proc.stderr
