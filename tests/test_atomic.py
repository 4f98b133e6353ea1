"""Outputs are written atomically, with the permissions an ordinary write would give them."""

import os
import stat

import numpy as np
import pytest

from audiocodec.io.atomic import atomic_path
from audiocodec.io.audio import write_audio, write_bytes
from tiny_models import tiny_codec


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def test_new_outputs_get_the_usual_permissions_not_owner_only(tmp_path):
    expected = 0o666 & ~umask()
    write_bytes(tmp_path / "a.ac", b"ACDC")
    write_audio(tmp_path / "a.wav", np.zeros((1, 100), np.float32), 8000)
    tiny_codec().save_pretrained(tmp_path / "model")
    for path in (tmp_path / "a.ac", tmp_path / "a.wav", tmp_path / "model" / "model.safetensors",
                 tmp_path / "model" / "config.json"):
        assert mode(path) == expected, path


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "a.ac"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o640


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "a.ac"
    target.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"precious" and os.listdir(tmp_path) == ["a.ac"]


def test_a_symbolic_link_is_written_through(tmp_path):
    (tmp_path / "real.ac").write_bytes(b"old")
    (tmp_path / "link.ac").symlink_to("real.ac")
    write_bytes(tmp_path / "link.ac", b"new")
    assert (tmp_path / "link.ac").is_symlink() and (tmp_path / "real.ac").read_bytes() == b"new"


def test_files_written_together_are_replaced_together_or_not_at_all(tmp_path):
    from audiocodec.io.atomic import atomic_paths

    first, second = tmp_path / "weights", tmp_path / "config"
    first.write_text("old weights")
    second.write_text("old config")
    with pytest.raises(RuntimeError):
        with atomic_paths(first, second) as (a, b):
            open(a, "w").write("new weights")
            raise RuntimeError("the second file could not be made")  # a full disk, a failed recount, Ctrl-C
    assert (first.read_text(), second.read_text()) == ("old weights", "old config")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "weights"]  # no temporary file left
    with atomic_paths(first, second) as (a, b):
        open(a, "w").write("new weights")
        open(b, "w").write("new config")
    assert (first.read_text(), second.read_text()) == ("new weights", "new config")


def test_a_model_folder_replaces_its_links_instead_of_writing_into_another_model(tmp_path):
    tiny_codec().save_pretrained(tmp_path / "source")
    before = (tmp_path / "source" / "model.safetensors").read_bytes()
    (tmp_path / "linked").mkdir()  # as in a cache whose snapshots link to shared files
    (tmp_path / "linked" / "model.safetensors").symlink_to(tmp_path / "source" / "model.safetensors")
    tiny_codec(n_filters=6).save_pretrained(tmp_path / "linked")
    assert (tmp_path / "source" / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "linked" / "model.safetensors").is_symlink()


def test_stopping_signals_wait_for_the_renames_even_with_other_threads():
    """A second thread (torch's, the data loader's) must not receive, and so let through, a Ctrl-C between the
    renames of a model's two files."""
    import signal
    import threading
    import time

    from audiocodec.io.atomic import _signals_held

    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with _signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # long enough for a handler to run, were the signal let through
                done.append("renamed")
        assert done == ["renamed"]  # and the interrupt came after, not lost
    finally:
        stop.set()
        worker.join()


def test_a_failed_write_names_the_file_and_leaves_no_temporary_file(tmp_path):
    from audiocodec.io.atomic import atomic_paths

    with pytest.raises(OSError, match="weights"):
        with atomic_paths(tmp_path / "weights", tmp_path / "config") as (a, b):
            raise OSError(28, "No space left on device", a)
    assert not list(tmp_path.iterdir())
