import signal
import subprocess
import sys

import pytest

from audiocodec.cli import entry as cli
from audiocodec.errors import AudioReadError


def test_user_error_is_one_line_and_exit_1(monkeypatch, capsys):
    def failing(args):
        raise AudioReadError("input.wav: not an audio file")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_command(parser, failing))
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert err == "audiocodec: error: input.wav: not an audio file\n"


def test_bug_is_reported_without_traceback(monkeypatch, capsys):
    def buggy(args):
        raise RuntimeError("oops")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_command(parser, buggy))
    monkeypatch.delenv("AUDIOCODEC_DEBUG", raising=False)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and "RuntimeError: oops" in err


def test_a_refusing_file_system_is_one_line_and_exit_1(monkeypatch, capsys):
    def full_disk(args):
        raise OSError(28, "No space left on device", "out.ac")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_command(parser, full_disk))
    assert cli.main(["boom"]) == 1
    assert capsys.readouterr().err == "audiocodec: error: out.ac: No space left on device\n"


def test_train_leaves_the_process_group_even_when_it_fails(tmp_path, capsys):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: {train: missing.jsonl}\n")
    try:
        assert cli.main(["train", "--config", str(recipe), "--output-dir", str(tmp_path / "run")]) == 1
        assert not dist.is_initialized()  # destroyed, not left to the interpreter's shutdown
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert "missing.jsonl" in capsys.readouterr().err


def test_no_command_prints_help_and_fails():
    result = subprocess.run([sys.executable, "-m", "audiocodec"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: audiocodec" in result.stderr


def _with_command(parser, func):
    subparsers = next(a for a in parser._actions if a.dest == "command")
    subparsers.add_parser("boom").set_defaults(func=func)
    return parser


def test_version_and_the_bandwidths_help_lists():
    import audiocodec
    from audiocodec import Codec

    version = subprocess.run([sys.executable, "-m", "audiocodec", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"audiocodec {audiocodec.__version__}"
    helped = subprocess.run([sys.executable, "-m", "audiocodec", "compress", "--help"], capture_output=True, text=True)
    listed = ", ".join(f"{b:g}" for b in Codec.from_pretrained("default").bandwidths)
    assert listed in " ".join(helped.stdout.split())


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_an_ending_signal_while_decoding_leaves_no_temporary_file_and_keeps_the_old_output(tmp_path, monkeypatch,
                                                                                           signum, status):
    """Python's default SIGTERM or SIGHUP (a closed terminal) would end the process mid-write, with the temporary
    output left beside the file."""
    import os

    import numpy as np
    import soundfile as sf

    from audiocodec.io.audio import AudioSink

    sf.write(tmp_path / "in.wav", 0.1 * np.random.default_rng(0).standard_normal(24000), 24000)
    assert cli.main(["compress", str(tmp_path / "in.wav"), str(tmp_path / "in.ac")]) == 0
    (tmp_path / "out.wav").write_bytes(b"keep me")
    write = AudioSink.write
    monkeypatch.setattr(AudioSink, "write", lambda sink, block: (write(sink, block),
                                                                 os.kill(os.getpid(), signum)))
    assert cli.main(["decompress", str(tmp_path / "in.ac"), str(tmp_path / "out.wav"), "--force"]) == status
    assert (tmp_path / "out.wav").read_bytes() == b"keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.ac", "in.wav", "out.wav"]
    assert signal.getsignal(signum) is not cli._terminated  # put back
