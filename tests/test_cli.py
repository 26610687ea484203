"""The command-line tools: generate streams what lib.infer.generate produces, and chat, driven through
stdin, keeps the conversation in the template turn after turn."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_tiny import tiny_model, tiny_tokenizer, write_model_dirs
from lib.tokenizer.chat import Message, decode_reply, prompt_ids
from lib.model.checkpoint import load_model
from lib.cli import chat, generate as generate_cli
from lib.cli.common import run_cli
from lib.core.errors import UserError
from lib.infer.generate import cut_at_stop, generate

ROOT = Path(__file__).resolve().parent.parent
N = 12  # new tokens per reply


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    tok = tiny_tokenizer()
    return write_model_dirs(tmp_path_factory.mktemp("cli"), tiny_model(tok.vocab_size, max_seq_len=256, spread=3.0))


def args(dirs, *extra: str) -> list[str]:
    model_dir, tok_dir = dirs
    return ["--model", str(model_dir), "--tokenizer", str(tok_dir), "--max-new-tokens", str(N), *extra]


def expected_reply(dirs, messages: list[Message], **kw) -> str:
    tok = tiny_tokenizer()
    model = load_model(dirs[0], tokenizer_sha256=tok.sha256)
    ids = generate(model, prompt_ids(tok, messages, model.cfg.max_seq_len, min(N, model.cfg.max_seq_len // 2)), N,
                   {tok.marker("end"), tok.eos_id}, **kw)
    return decode_reply(tok, ids)


def test_generate_prints_the_reply(dirs):
    out = io.StringIO()
    assert generate_cli.main(args(dirs, "--prompt", "What is an MPI rank?"), stdout=out) == 0
    assert out.getvalue() == expected_reply(dirs, [Message("user", "What is an MPI rank?")]) + "\n"


def test_generate_sampling_flags_and_stdin(dirs):
    out = io.StringIO()
    generate_cli.main(args(dirs, "--temperature", "0.9", "--top-p", "0.8", "--seed", "5"),
                      stdin=io.StringIO("OpenMP?\n"), stdout=out)
    assert out.getvalue() == expected_reply(dirs, [Message("user", "OpenMP?")], temperature=0.9, top_p=0.8,
                                            seed=5) + "\n"


def test_generate_raw_with_stop_string(dirs):
    tok = tiny_tokenizer()
    model = load_model(dirs[0])
    prompt = [tok.bos_id] + tok.encode("the MPI rank")
    full = tok.decode(generate(model, prompt, N, {tok.eos_id}))
    stop = full[3:5]
    out = io.StringIO()
    generate_cli.main(args(dirs, "--raw", "--prompt", "the MPI rank", "--stop", stop), stdout=out)
    assert out.getvalue() == cut_at_stop(full, [stop]) + "\n"


def test_user_mistakes_are_one_clear_error(dirs, tmp_path):
    with pytest.raises(UserError, match="nope: model directory not found"):
        generate_cli.main(["--model", str(tmp_path / "nope"), "--tokenizer", str(dirs[1]), "--prompt", "x"])
    with pytest.raises(UserError, match="empty prompt"):
        generate_cli.main(args(dirs), stdin=io.StringIO(""))
    with pytest.raises(UserError, match="top-p"):
        generate_cli.main(args(dirs, "--top-p", "0", "--prompt", "x"), stdout=io.StringIO())


def test_chat_keeps_the_conversation(dirs):
    out = io.StringIO()
    chat.main(args(dirs, "--system", "Be brief.", "--temperature", "1.0"),
              stdin=io.StringIO("What is MPI?\n\nAnd OpenMP?\n/reset\nAnd OpenMP?\n"), stdout=out)
    system = Message("system", "Be brief.")
    first = expected_reply(dirs, [system, Message("user", "What is MPI?")], temperature=1.0)
    second = expected_reply(dirs, [system, Message("user", "What is MPI?"), Message("assistant", first),
                                   Message("user", "And OpenMP?")], temperature=1.0)
    fresh = expected_reply(dirs, [system, Message("user", "And OpenMP?")], temperature=1.0)
    assert second != fresh, "the test needs the history to matter"
    assert out.getvalue() == f"{first}\n{second}\n{fresh}\n"


def test_chat_command_through_stdin(dirs):
    """The real command in a subprocess, stdin a pipe: one reply line per question, then EOF."""
    run = subprocess.run([sys.executable, "-m", "lib.cli.chat", *args(dirs)], input="What is MPI?\n/quit\nignored\n",
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected_reply(dirs, [Message("user", "What is MPI?")]) + "\n"


def test_entry_point_turns_user_errors_into_exit_status_2(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["chat", "--model", "/nonexistent"])
    with pytest.raises(SystemExit) as exit_:
        run_cli(chat.main)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: /nonexistent: model directory not found")
