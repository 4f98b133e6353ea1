"""Outputs are checked before any coding: their folder exists, is one, is writable, and is not the kernel's."""

import os

import pytest

from audiocodec.cli import entry
from audiocodec.errors import AudioCodecError
from audiocodec.io.audio import check_output


@pytest.mark.parametrize("path,message", [
    ("/proc/out.ac", "/proc, which holds the kernel's state"),
    ("/sys/kernel/out.wav", "/sys, which holds the kernel's state"),
    ("/proc/self/../out.ac", "/proc"),
])
def test_outputs_under_proc_or_sys_are_refused(path, message):
    with pytest.raises(AudioCodecError, match=message):
        check_output(path, force=True)


def test_a_missing_folder_a_file_as_folder_and_an_unwritable_folder_are_refused(tmp_path, monkeypatch):
    with pytest.raises(AudioCodecError, match="no such directory"):
        check_output(tmp_path / "missing" / "out.ac", force=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioCodecError, match="is not a directory"):
        check_output(tmp_path / "file" / "out.ac", force=False)

    def refusing(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.TemporaryFile", refusing)  # a read-only folder (root may write anywhere)
    with pytest.raises(AudioCodecError, match="cannot write there .Permission denied"):
        check_output(tmp_path / "out.ac", force=False)


def test_devices_are_still_written_in_place_and_the_check_leaves_nothing_behind(tmp_path):
    check_output("/dev/null", force=False)
    check_output(tmp_path / "out.ac", force=False)
    assert os.listdir(tmp_path) == []


def test_compress_into_proc_fails_before_reading_the_input(capsys, tmp_path):
    status = entry.main(["compress", str(tmp_path / "missing.wav"), "/proc/out.ac"])
    assert status == 1 and "/proc" in capsys.readouterr().err
