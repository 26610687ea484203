"""`hpc-lm serve`'s command line: the default host is loopback, a public one warns, the key comes
from the environment, and an exported Hugging Face directory serves the same model."""
from __future__ import annotations

import pytest
import uvicorn

from lib.cli import serve as cli
from lib.core.errors import UserError
from lib.hf.export import export_model
from lib.infer.generate import generate
from tests.fixtures_tiny import write_model_dirs


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: calls.append((app, host, port)))
    yield calls
    for app, _, _ in calls:
        app.state.served.engine.close()


def test_loopback_by_default_and_public_host_warns(tmp_path, started, capsys, monkeypatch):
    model_dir, tok_dir = write_model_dirs(tmp_path)
    monkeypatch.delenv("HPCLM_API_KEY", raising=False)
    cli.main(["--model", str(model_dir), "--tokenizer", str(tok_dir)])
    assert started[-1][1:] == ("127.0.0.1", 8000)
    assert "warning" not in capsys.readouterr().err
    cli.main(["--model", str(model_dir), "--tokenizer", str(tok_dir), "--host", "0.0.0.0", "--port", "9"])
    err = capsys.readouterr().err
    assert started[-1][1] == "0.0.0.0" and "warning: --host 0.0.0.0" in err and "no --api-key" in err
    assert started[-1][0].state.served.api_key is None


def test_api_key_from_the_environment(tmp_path, started, monkeypatch):
    model_dir, tok_dir = write_model_dirs(tmp_path)
    monkeypatch.setenv("HPCLM_API_KEY", "sesame")
    cli.main(["--model", str(model_dir), "--tokenizer", str(tok_dir)])
    assert started[-1][0].state.served.api_key == "sesame"


def test_hf_export_directory_serves_the_same_model(tmp_path, started):
    model_dir, tok_dir = write_model_dirs(tmp_path)
    export_model(model_dir, tok_dir, tmp_path / "hf")
    cli.main(["--model", str(tmp_path / "hf"), "--tokenizer", str(tmp_path / "nowhere")])
    cli.main(["--model", str(model_dir), "--tokenizer", str(tok_dir)])
    (hf_app, _, _), (ours_app, _, _) = started
    assert hf_app.state.served.name == "hf"
    prompt = [2, 10, 11, 12]
    a, b = (generate(app.state.served.engine.model, prompt, 12, set()) for app in (hf_app, ours_app))
    assert a == b
    assert hf_app.state.served.tokenizer.sha256 == ours_app.state.served.tokenizer.sha256


def test_not_a_model_directory(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        cli.main(["--model", str(tmp_path)])


def test_external_attention_model_is_refused(tmp_path):
    import json
    model_dir, tok_dir = write_model_dirs(tmp_path)
    meta = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**meta, "attention": {"mode": "external"}}))
    with pytest.raises(UserError, match="attention.mode 'external'"):
        cli.main(["--model", str(model_dir), "--tokenizer", str(tok_dir)])
