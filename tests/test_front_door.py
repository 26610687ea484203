"""The one front door, `hpc-lm`: --help answers without importing torch, every subcommand is wired
to its module, the old `python -m` entry points still work, a bad count is a usage error, and
chat keeps its commands away from the model."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from fixtures_tiny import tiny_model, tiny_tokenizer, write_model_dirs
from lib.cli import chat
from lib.cli.main import COMMANDS
from tests.pipeline_helpers import ROOT, env
from tests.test_cli import args, expected_reply
from lib.tokenizer.chat import Message



def python(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env(), input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    tok = tiny_tokenizer()
    return write_model_dirs(tmp_path_factory.mktemp("door"), tiny_model(tok.vocab_size, max_seq_len=256, spread=3.0))


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["chat", "--help"], ["check", "--help"],
                                  ["report", "--help"]])
def test_help_does_not_import_torch(argv):
    """What makes --help take seconds is torch's import; the front door and the chat/generate
    flags must answer without it."""
    code = ("import sys\nfrom lib.cli.main import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)" % (argv,))
    proc = python("-c", code)
    assert proc.stderr.strip().endswith("NO TORCH"), proc.stderr
    assert "usage: hpc-lm" in proc.stdout


def test_the_installed_command_lists_every_subcommand():
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "hpc-lm"), "--help"], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name in ("generate", "chat", "serve", "export", "verify", "import", "report", "check"):
        assert f"  {name} " in proc.stdout
    assert set(COMMANDS) == {"generate", "chat", "serve", "export", "verify", "import", "report", "check"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_names_itself_as_typed(name):
    """`hpc-lm export --help` must say `usage: hpc-lm export`, not the module path behind it."""
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "hpc-lm"), name, "--help"], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: hpc-lm {name}"), proc.stdout[:200]


def test_every_subcommand_module_has_a_main():
    import importlib
    for name, (module, _) in COMMANDS.items():
        assert callable(importlib.import_module(module).main), name


def test_unknown_command_is_a_usage_error():
    proc = python("-m", "lib.cli", "trian")
    assert proc.returncode == 2 and "invalid choice: 'trian'" in proc.stderr


def test_negative_max_new_tokens_is_refused(dirs):
    for argv in (["-m", "lib.cli", "generate"], ["-m", "lib.cli.generate"]):  # front door and old alias
        proc = python(*argv, "--model", str(dirs[0]), "--tokenizer", str(dirs[1]), "--max-new-tokens", "-5",
                      "--prompt", "x")
        assert proc.returncode == 2, proc.stderr
        assert "--max-new-tokens: must be at least 1, got -5" in proc.stderr


def test_chat_through_the_front_door(dirs):
    proc = python("-m", "lib.cli", "chat", *args(dirs), stdin="What is MPI?\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected_reply(dirs, [Message("user", "What is MPI?")]) + "\n"


def test_chat_never_sends_a_command_to_the_model(dirs, capsys):
    out = io.StringIO()
    chat.main(args(dirs), stdin=io.StringIO("/help\n/frobnicate\nWhat is MPI?\n"), stdout=out)
    # the first turn the model sees is the question: /help and the typo never became turns
    assert out.getvalue() == expected_reply(dirs, [Message("user", "What is MPI?")]) + "\n"
    err = capsys.readouterr().err  # scripted chat: notes on stderr, stdout holds only replies
    assert "commands: /help" in err and "unknown command /frobnicate" in err


def test_a_user_error_through_the_front_door_is_one_line():
    proc = python("-m", "lib.cli", "generate", "--model", "/nonexistent", "--prompt", "x")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: /nonexistent: model directory not found") and "Traceback" not in proc.stderr
