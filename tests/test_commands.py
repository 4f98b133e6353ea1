"""The command line as users run it: exit status, one-line messages, files left alone. Commands run in this
process with real pipes and descriptors (tests/cli_runner.py), without a new Python and torch import per call."""

import numpy as np
import pytest
import soundfile as sf

from cli_runner import run, run_cli
from tiny_models import tiny_codec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tiny_codec().save_pretrained(root / "model")
    tiny_codec(n_filters=6).save_pretrained(root / "other")
    t = np.arange(12000) / 16000
    sf.write(root / "in.wav", np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1) * 0.3, 16000)
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "silent0.wav", np.zeros((0, 1)), 16000)
    (root / "text.wav").write_text("not audio at all\n")
    header = bytearray((root / "in.wav").read_bytes())
    header[24:28] = bytes(4)  # a sample rate of 0
    (root / "rate0.wav").write_bytes(header)
    return root


def test_compress_decompress_round_trip_restores_format(files, tmp_path):
    out = run("compress", files / "in.wav", tmp_path / "a.ac", "--model", files / "model", "--bandwidth", 8)
    assert out.returncode == 0, out.stderr
    assert b"kb/s" in out.stderr
    out = run("decompress", tmp_path / "a.ac", tmp_path / "a.flac", "--model", files / "model")
    assert out.returncode == 0, out.stderr
    info = sf.info(tmp_path / "a.flac")
    assert (info.samplerate, info.channels, info.frames) == (16000, 2, 12000)
    out = run("info", tmp_path / "a.ac")
    assert out.returncode == 0 and b"8 kb/s nominal" in out.stdout


def test_info_describes_several_files_as_json_lines_and_reports_bad_ones(files, tmp_path):
    import json

    for name, bandwidth in (("low.ac", 4), ("high.ac", 8)):
        out = run("compress", files / "in.wav", tmp_path / name, "--model", files / "model", "-b", bandwidth)
        assert out.returncode == 0, out.stderr
    (tmp_path / "bad.ac").write_bytes(b"not a compressed file")
    out = run("info", "--json", tmp_path / "low.ac", tmp_path / "bad.ac", tmp_path / "high.ac")
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [row["file"] for row in rows] == [str(tmp_path / "low.ac"), str(tmp_path / "high.ac")]
    low, high = rows
    assert (low["nominal_kbps"], high["nominal_kbps"], low["codebooks"], high["codebooks"]) == (4, 8, 1, 2)
    assert (low["original_rate"], low["original_channels"], low["seconds"]) == (16000, 2, 0.75)
    assert low["bytes"] == (tmp_path / "low.ac").stat().st_size and low["payload_bytes"] < low["bytes"]
    assert low["kbps"] == 8 * low["bytes"] / low["seconds"] / 1000
    assert low["model_origin"] is None  # not a default model's file
    _one_line_error(out, f"{tmp_path / 'bad.ac'}: ")
    text = run("info", tmp_path / "low.ac", tmp_path / "high.ac").stdout.decode()
    assert text.startswith(f"{tmp_path / 'low.ac'}:\nmodel: ") and text.count("kb/s nominal") == 2


def test_standard_input_and_output(files):
    wav_bytes = (files / "in.wav").read_bytes()
    compressed = run("compress", "-", "-", "--model", files / "model", stdin=wav_bytes)
    assert compressed.returncode == 0 and compressed.stdout.startswith(b"ACDC")
    decoded = run("decompress", "-", "-", "--model", files / "model", stdin=compressed.stdout)
    assert decoded.returncode == 0 and decoded.stdout.startswith(b"RIFF")


@pytest.mark.parametrize("name,message", [
    ("missing.wav", "no such file"),
    ("empty.wav", "not a readable audio file"),
    ("silent0.wav", "holds no audio"),
    ("text.wav", "not a readable audio file"),
    ("rate0.wav", "rate0.wav: not a readable audio file (the header is incomplete: a sample rate of 0?)"),
])
def test_bad_audio_inputs(files, tmp_path, name, message):
    out = run("compress", files / name, tmp_path / "x.ac", "--model", files / "model")
    err = out.stderr.decode()
    assert out.returncode == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.ac").exists()


def test_a_damaged_mp3_is_not_called_missing(tmp_path):
    from audiocodec.errors import AudioReadError
    from audiocodec.io.audio import read_audio

    (tmp_path / "fake.mp3").write_bytes(b"ID3" + bytes(100))  # libsndfile: "File does not exist or is not a regular
    with pytest.raises(AudioReadError, match=r"fake.mp3: not a readable audio file \(damaged or unsupported data\)$"):
        read_audio(tmp_path / "fake.mp3")  # file (possibly a pipe?)"


def test_existing_output_is_kept_without_force(files, tmp_path):
    target = tmp_path / "keep.ac"
    target.write_bytes(b"precious")
    out = run("compress", files / "in.wav", target, "--model", files / "model")
    assert out.returncode == 1 and b"--force" in out.stderr and target.read_bytes() == b"precious"
    assert run("compress", files / "in.wav", target, "--model", files / "model", "--force").returncode == 0
    assert target.read_bytes().startswith(b"ACDC")


def test_damaged_and_foreign_files(files, tmp_path):
    good = tmp_path / "good.ac"
    assert run("compress", files / "in.wav", good, "--model", files / "model").returncode == 0
    (tmp_path / "cut.ac").write_bytes(good.read_bytes()[:-7])
    for source, message in ((tmp_path / "cut.ac", b"truncated"), (files / "in.wav", b"not an audiocodec file")):
        out = run("decompress", source, tmp_path / "o.wav", "--model", files / "model")
        assert out.returncode == 1 and message in out.stderr and out.stderr.count(b"\n") == 1
    out = run("decompress", good, tmp_path / "o.wav", "--model", files / "other")
    made_by = tiny_codec().model_id().encode()
    assert out.returncode == 1 and b"encoded with model " + made_by in out.stderr
    assert not (tmp_path / "o.wav").exists()


def test_demo_runs_and_reports(tmp_path):
    out = run("demo", "--out-dir", tmp_path / "demo")
    assert out.returncode == 0, out.stderr
    assert b"kb/s" in out.stdout and (tmp_path / "demo" / "sample_decoded.wav").is_file()
    assert b"the embedded default model" in out.stdout and b"log-mel distance" in out.stdout
    (tmp_path / "demo" / "sample.ac").write_bytes(b"the user's own file")
    again = run("demo", "--out-dir", tmp_path / "demo")  # nothing is overwritten without asking
    assert again.returncode != 0 and again.stderr.count(b"\n") == 1 and b"--force" in again.stderr
    assert (tmp_path / "demo" / "sample.ac").read_bytes() == b"the user's own file"
    assert run("demo", "--out-dir", tmp_path / "demo", "--force").returncode == 0
    for bad in ("-", tmp_path / "demo" / "sample.ac" / "sub"):  # standard output; a file where a folder goes
        refused = run("demo", "--out-dir", bad)
        assert refused.returncode == 1 and refused.stderr.count(b"\n") == 1 and b"internal" not in refused.stderr
    assert (tmp_path / "demo" / "sample.ac").read_bytes()[:4] != b"the "


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_training_on_a_missing_gpu_is_one_line(tmp_path):
    from pathlib import Path

    recipe = Path(__file__).parents[1] / "recipes" / "tiny_cpu.yaml"
    out = run("train", "--config", recipe, "--device", "cuda", "--output-dir", tmp_path / "run")
    lines = out.stderr.decode().strip().splitlines()
    assert out.returncode == 1 and lines[-1].startswith("audiocodec: error: device is 'cuda' but PyTorch sees no CUDA")
    assert "Traceback" not in out.stderr.decode() and not (tmp_path / "run").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line(files, tmp_path):
    coded = tmp_path / "a.ac"
    assert run("compress", files / "in.wav", coded, "--model", files / "model").returncode == 0
    for command, source, output in (("compress", files / "in.wav", tmp_path / "b.ac"),
                                     ("decompress", coded, tmp_path / "b.wav")):
        out = run(command, source, output, "--model", files / "model", "--device", "cuda")
        assert out.returncode == 1, command
        assert out.stderr.decode().strip() == "audiocodec: error: --device cuda: PyTorch sees no CUDA GPU"
        assert not output.exists()


def _one_line_error(out, *fragments):
    err = out.stderr.decode()
    assert out.returncode == 1, err
    assert err.count("\n") == 1 and err.startswith("audiocodec: error: ") and "internal" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_output_is_never_the_input_nor_a_folder_name(files, tmp_path):
    source = tmp_path / "same.wav"
    source.write_bytes((files / "in.wav").read_bytes())
    _one_line_error(run("compress", source, source, "--model", files / "model", "--force"), "is the input file")
    assert source.read_bytes() == (files / "in.wav").read_bytes()
    _one_line_error(run("compress", source, f"{tmp_path}/newdir/", "--model", files / "model"), "is a folder")
    assert not (tmp_path / "newdir").exists()
    # Standard input redirected from the output (`compress - same.wav -f < same.wav`) is the input too.
    for command in ("compress", "decompress"):
        with open(source, "rb") as stdin:
            out = run(command, "-", source, "--model", files / "model", "--force", stdin=stdin)
        _one_line_error(out, "is the input file (standard input reads from it)")
        assert source.read_bytes() == (files / "in.wav").read_bytes()


def test_devices_and_fifos_are_written_in_place(files, tmp_path):
    import os
    import threading

    assert run("compress", files / "in.wav", os.devnull, "--model", files / "model").returncode == 0
    coded = tmp_path / "a.ac"
    assert run("compress", files / "in.wav", coded, "--model", files / "model").returncode == 0
    assert run("decompress", coded, os.devnull, "--model", files / "model").returncode == 0
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)  # still the device
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    out = run("decompress", coded, fifo, "--model", files / "model")
    reader.join(timeout=60)
    assert out.returncode == 0, out.stderr
    assert received and received[0].startswith(b"RIFF") and not fifo.is_file()


def test_bad_options_and_rates_are_one_line(files, tmp_path):
    for bandwidth in ("5", "nan", "-1"):
        _one_line_error(run("compress", files / "in.wav", tmp_path / "x.ac", "--model", files / "model", "-b",
                            bandwidth), "is not supported by this model")
    _one_line_error(run("demo", "--out-dir", tmp_path / "demo", "-b", "5"), "is not supported")
    assert not (tmp_path / "demo").exists()
    sf.write(tmp_path / "fast.wav", np.zeros((100, 1)), 400_000)
    _one_line_error(run("compress", tmp_path / "fast.wav", tmp_path / "x.ac", "--model", files / "model"),
                    "fast.wav: sample rate 400000 Hz is out of range")
    assert not (tmp_path / "x.ac").exists()


def test_errors_name_the_files_involved(files, tmp_path):
    good = tmp_path / "good.ac"
    assert run("compress", files / "in.wav", good, "--model", files / "model").returncode == 0
    data = bytearray(good.read_bytes())
    data[-3] ^= 0xFF
    (tmp_path / "flipped.ac").write_bytes(bytes(data))
    _one_line_error(run("decompress", tmp_path / "flipped.ac", tmp_path / "o.wav", "--model", files / "model"),
                    f"{tmp_path / 'flipped.ac'}: ")
    _one_line_error(run("info", tmp_path / "flipped.ac"), f"{tmp_path / 'flipped.ac'}: ")
    dangling = tmp_path / "link.ac"  # a link into a folder that does not exist: the temporary file cannot be made
    dangling.symlink_to(tmp_path / "gone" / "a.ac")
    _one_line_error(run("compress", files / "in.wav", dangling, "--model", files / "model"),
                    f"{dangling}: No such file or directory")


def test_a_damaged_model_config_is_one_line(files, tmp_path):
    import json
    import shutil

    # Sizes far out of range are refused before any layer is built (a dimension of 1e9 asked for 10 TB, 100,000
    # residual layers ran for hours, a compression wider than the layers was an internal error).
    for change in ({"sample_rate": "24000"}, {"sample_rate": 0}, {"ratios": []}, {"quantizer": 5},
                   {"dimension": 10**9}, {"n_residual_layers": 100_000}, {"compress": 10**6}):
        model = tmp_path / "bad"
        shutil.copytree(files / "model", model, dirs_exist_ok=True)
        meta = json.loads((files / "model" / "config.json").read_text())
        meta["config"].update(change)
        (model / "config.json").write_text(json.dumps(meta))
        _one_line_error(run("compress", files / "in.wav", tmp_path / "x.ac", "--model", model),
                        "config.json: not a valid model config")
    meta["config"] = "x"
    (model / "config.json").write_text(json.dumps(meta))
    _one_line_error(run("compress", files / "in.wav", tmp_path / "x.ac", "--model", model), "not a valid model config")


def test_mistakes_with_names_pipes_and_channels_are_caught_early(files, tmp_path):
    model = files / "model"
    _one_line_error(run("compress", files / "in.wav", tmp_path / "out.wav", "--model", model),
                    "compress writes a .ac file, not audio")
    assert not (tmp_path / "out.wav").exists()
    _one_line_error(run("compress", "-", tmp_path / "x.ac", "--model", model, stdin=b""), "standard input: empty")
    _one_line_error(run("info", tmp_path), "is a directory")
    # A 10-channel recording codes (mixed down), but FLAC cannot hold its 10 channels: refused before decoding.
    sf.write(tmp_path / "ten.wav", np.random.default_rng(0).uniform(-0.3, 0.3, (4000, 10)), 16000)
    assert run("compress", tmp_path / "ten.wav", tmp_path / "ten.ac", "--model", model).returncode == 0
    _one_line_error(run("decompress", tmp_path / "ten.ac", tmp_path / "ten.flac", "--model", model),
                    "FLAC holds at most 8 channels and the audio has 10")
    assert not (tmp_path / "ten.flac").exists()
    # A path that is a pipe, as `<(cat file.ac)` gives, reads like a file, for both commands.
    out = run("decompress", "/dev/stdin", tmp_path / "ten.wav", "--model", model, "--force",
              stdin=(tmp_path / "ten.ac").read_bytes())
    assert out.returncode == 0, out.stderr
    assert sf.info(tmp_path / "ten.wav").channels == 10
    out = run("compress", "/dev/stdin", tmp_path / "piped.ac", "--model", model, stdin=(files / "in.wav").read_bytes())
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "piped.ac").read_bytes() == run("compress", files / "in.wav", "-", "--model", model).stdout
    _one_line_error(run("decompress", tmp_path / "ten.ac", tmp_path / "x.wav", "--model", model, "--format", "flac"),
                    "--format is for a folder")


def test_binary_output_to_a_terminal_is_refused_without_force(files, tmp_path):
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        command = ["compress", files / "in.wav", "-", "--model", files / "model"]
        # (the output, under 2 kB, fits the terminal's buffer, which nothing reads)
        with open(follower, "wb", closefd=False) as terminal:
            out = run_cli(*command, stdout=terminal)
            assert out.returncode == 1 and b"standard output is a terminal" in out.stderr
            out = run_cli(*command, "--force", stdout=terminal)
            assert out.returncode == 0, out.stderr
    finally:
        os.close(follower)
        os.close(leader)


def test_audio_beyond_full_scale_gets_a_warning(files, tmp_path):
    t = np.arange(8000) / 16000
    sf.write(tmp_path / "loud.wav", 3.0 * np.sin(2 * np.pi * 440 * t), 16000, subtype="FLOAT")
    out = run("compress", tmp_path / "loud.wav", tmp_path / "loud.ac", "--model", files / "model")
    assert out.returncode == 0 and b"peaks at 3.00, beyond full scale" in out.stderr
    # It is coded 19.8 dB down (+5.8 LUFS to -14) and restored when decoded; info says so.
    info = run("info", tmp_path / "loud.ac").stdout.decode()
    assert "level: coded -19.8 dB" in info and ("range-coded" in info or "fixed-width" in info)
    out = run("compress", files / "in.wav", tmp_path / "quiet.ac", "--model", files / "model")
    assert out.returncode == 0 and b"warning" not in out.stderr


def test_a_folder_is_coded_file_by_file_into_the_same_layout(files, tmp_path):
    model = files / "model"
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "a.wav").write_bytes((files / "in.wav").read_bytes())
    t = np.arange(4000) / 8000
    sf.write(source / "sub" / "b.flac", 0.3 * np.sin(2 * np.pi * 300 * t), 8000)
    (source / "sub" / "broken.wav").write_text("not audio\n")
    (source / "notes.txt").write_text("not picked up\n")
    out = run("compress", source, tmp_path / "coded", "--model", model)
    err = out.stderr.decode()
    # The broken file fails alone, in one line; the others are coded; the run says so and exits 1.
    assert out.returncode == 1 and "Traceback" not in err
    assert "broken.wav: not a readable audio file" in err and "2 file(s) compressed" in err and "1 failed" in err
    coded = sorted(p.relative_to(tmp_path / "coded").as_posix() for p in (tmp_path / "coded").rglob("*.ac"))
    assert coded == ["a.ac", "sub/b.ac"]
    # A second run is refused as a whole while outputs exist, and nothing is touched.
    before = (tmp_path / "coded" / "a.ac").stat().st_mtime_ns
    _one_line_error(run("compress", source, tmp_path / "coded", "--model", model), "2 output(s) already exist")
    assert (tmp_path / "coded" / "a.ac").stat().st_mtime_ns == before
    (source / "sub" / "broken.wav").unlink()
    assert run("compress", source, tmp_path / "coded", "--model", model, "--force").returncode == 0
    out = run("decompress", tmp_path / "coded", tmp_path / "decoded", "--model", model, "--format", "flac")
    assert out.returncode == 0, out.stderr
    assert (sf.info(tmp_path / "decoded" / "a.flac").channels, sf.info(tmp_path / "decoded" / "a.flac").frames) == (
        2, 12000)
    assert (sf.info(tmp_path / "decoded" / "sub" / "b.flac").samplerate) == 8000
    # Two inputs that would share an output name are refused before anything is written.
    (source / "sub" / "b.wav").write_bytes((files / "in.wav").read_bytes())
    _one_line_error(run("compress", source, tmp_path / "again", "--model", model), "would both be written to")
    assert not (tmp_path / "again").exists()
    _one_line_error(run("compress", source, "-", "--model", model), "not to standard output")
    _one_line_error(run("compress", source, tmp_path / "all.ac", "--model", model), "output must be a folder")
    # A link to a folder elsewhere is followed, once, and its files keep the link's path.
    (source / "sub" / "b.wav").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sf.write(elsewhere / "c.wav", 0.3 * np.sin(2 * np.pi * 500 * t), 8000)
    (source / "linked").symlink_to(elsewhere)
    (elsewhere / "back").symlink_to(source)  # a loop
    assert run("compress", source, tmp_path / "linked_out", "--model", model).returncode == 0
    coded = sorted(p.relative_to(tmp_path / "linked_out").as_posix() for p in (tmp_path / "linked_out").rglob("*.ac"))
    assert coded == ["a.ac", "linked/c.ac", "sub/b.ac"]


def test_a_link_in_the_output_folder_to_an_input_is_refused_even_with_force(tmp_path):
    """Written through, the link would replace the recording with the other file's bytes."""
    from audiocodec.cli.folders import plan
    from audiocodec.errors import AudioCodecError

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"a recording")
    (tmp_path / "in" / "b.wav").write_bytes(b"another")
    (tmp_path / "out" / "a.ac").symlink_to(tmp_path / "in" / "b.wav")
    with pytest.raises(AudioCodecError, match=r"out/a.ac: is the input file .*in/b.wav \(a link to it\)"):
        plan(tmp_path / "in", str(tmp_path / "out"), {".wav"}, ".ac", force=True)
    (tmp_path / "out" / "a.ac").unlink()
    (tmp_path / "out" / "a.ac").symlink_to(tmp_path / "elsewhere.ac")
    (tmp_path / "elsewhere.ac").write_bytes(b"an old output")
    assert len(plan(tmp_path / "in", str(tmp_path / "out"), {".wav"}, ".ac", force=True)) == 2


def test_a_cut_mp3_is_coded_with_a_warning_and_its_real_duration(files, tmp_path):
    """An MP3's length comes from its header (an estimate for some), so a shortfall is reported, not refused."""
    path = tmp_path / "half.mp3"
    sf.write(path, 0.3 * np.sin(np.arange(32000) * 0.06), 16000, format="MP3")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = run("compress", path, tmp_path / "half.ac", "--model", files / "model")
    err = out.stderr.decode()
    assert out.returncode == 0 and "where its header announces 2.00 s: is it cut short?" in err
    coded = sf.info(path).frames  # libsndfile's announced length, against the summary's
    assert coded == 32000 and " for 2.00 s of audio" not in err and " s of audio at " in err


def test_file_names_that_are_not_utf8_are_read_and_written(files, tmp_path):
    """Latin-1 names from old archives are legal on Linux; soundfile encoded str paths strictly and refused them."""
    import os

    latin = os.fsdecode(b"caf\xe9")
    (tmp_path / f"{latin}.wav").write_bytes((files / "in.wav").read_bytes())
    model = files / "model"
    assert run("compress", tmp_path / f"{latin}.wav", tmp_path / f"{latin}.ac", "--model", model).returncode == 0
    out = run("decompress", tmp_path / f"{latin}.ac", tmp_path / f"{latin}.flac", "--model", model)
    assert out.returncode == 0, out.stderr
    assert sf.info(os.fsencode(tmp_path / f"{latin}.flac")).frames == 12000


def test_a_file_that_is_not_a_ac_file_is_judged_on_its_first_bytes(tmp_path):
    """decompress /dev/zero read until memory ran out; info on a 1 GB file held it whole to say it was not one."""
    from audiocodec.cli.common import read_input_bytes

    with open(tmp_path / "big.bin", "wb") as handle:
        handle.truncate(1 << 30)  # sparse: no disk used
    assert read_input_bytes(tmp_path / "big.bin") == b"\0\0\0\0"
    assert read_input_bytes("/dev/zero") == b"\0\0\0\0"
    (tmp_path / "a.ac").write_bytes(b"ACDC and the rest")
    assert read_input_bytes(tmp_path / "a.ac") == b"ACDC and the rest"


def test_devices_and_empty_names_are_refused_as_inputs(files, tmp_path):
    """/dev/zero was copied (to memory, then to disk) until something ran out; "" is the current folder."""
    model = files / "model"
    _one_line_error(run("compress", "/dev/zero", tmp_path / "z.ac", "--model", model), "/dev/zero: is a device")
    with open("/dev/zero", "rb") as zero:
        out = run("compress", "-", tmp_path / "z.ac", "--model", model, stdin=zero)
    _one_line_error(out, "standard input is a terminal or a device")
    _one_line_error(run("compress", "", tmp_path / "out", "--model", model), "an empty input name")
    _one_line_error(run("decompress", files / "in.wav", "", "--model", model), "an empty output name")
    assert sorted(tmp_path.iterdir()) == []


def test_a_folder_where_an_output_file_goes_is_refused_before_any_work(tmp_path):
    from audiocodec.cli.folders import plan
    from audiocodec.errors import AudioCodecError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"a recording")
    (tmp_path / "out" / "a.ac").mkdir(parents=True)
    with pytest.raises(AudioCodecError, match=r"out/a.ac: is a folder where an output file goes"):
        plan(tmp_path / "in", str(tmp_path / "out"), {".wav"}, ".ac", force=True)


def test_an_output_folder_that_is_not_writable_is_refused_before_any_work(tmp_path, monkeypatch):
    """Root writes anywhere, so the refusal the file system would give is played by `os.access`."""
    import os

    from audiocodec.cli import folders
    from audiocodec.errors import AudioCodecError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"a recording")
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(folders.os, "access", lambda path, mode: os.fspath(path) != str(tmp_path / "out"))
    with pytest.raises(AudioCodecError, match=r"out: permission denied: the output folder is not writable"):
        folders.plan(tmp_path / "in", str(tmp_path / "out"), {".wav"}, ".ac", force=False)
