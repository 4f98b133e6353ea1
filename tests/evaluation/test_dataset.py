import json

import pytest

from audiocodec.evaluation import EvaluationError
from audiocodec.evaluation.dataset import Item, find_items, select


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_corpus_folder_uses_test_jsonl_with_categories_paths_relative_to_it_and_other_fields(tmp_path):
    _touch(tmp_path / "speech" / "a.flac")
    _touch(tmp_path / "music" / "b.flac")
    _touch(tmp_path / "not_listed.wav")
    lines = [{"path": "speech/a.flac", "category": "speech", "source": "librispeech"},
             {"path": "music/b.flac", "category": "music", "source": "fma"},
             {"path": "gone.flac", "category": "sounds"}]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    items, skipped = find_items(tmp_path)
    assert [(i.name, i.category, i.info) for i in items] == [
        ("speech/a.flac", "speech", {"source": "librispeech"}), ("music/b.flac", "music", {"source": "fma"})]
    assert items[0].path == tmp_path / "speech" / "a.flac"
    assert [s.name for s in skipped] == ["gone.flac"] and "no such file" in skipped[0].reason


def test_manifest_files_and_plain_folders_have_unknown_categories(tmp_path):
    _touch(tmp_path / "x" / "1.wav")
    _touch(tmp_path / "x" / "deeper" / "2.FLAC")
    _touch(tmp_path / "x" / "notes.txt")  # not audio by extension: not listed
    (tmp_path / "list.txt").write_text("x/1.wav\n\nx/deeper/2.FLAC\n")
    (tmp_path / "m.jsonl").write_text('{"path": "x/1.wav"}\n')
    folder, _ = find_items(tmp_path / "x")
    assert [(i.name, i.category) for i in folder] == [("1.wav", "unknown"), ("deeper/2.FLAC", "unknown")]
    listed, _ = find_items(tmp_path / "list.txt")
    assert [i.name for i in listed] == ["x/1.wav", "x/deeper/2.FLAC"]
    assert [i.category for i in find_items(tmp_path / "m.jsonl")[0]] == ["unknown"]


def test_evaluation_and_training_read_a_manifest_alike(tmp_path):
    """One reader: comments, and JSON lines in a .txt list, mean the same to `eval --data` as to training."""
    from audiocodec.training.data import list_audio

    _touch(tmp_path / "x" / "1.wav")
    _touch(tmp_path / "x" / "2.wav")
    (tmp_path / "list.txt").write_text('# held-out speakers\nx/1.wav\n{"path": "x/2.wav", "category": "speech"}\n')
    items, skipped = find_items(tmp_path / "list.txt")
    assert [(i.name, i.category) for i in items] == [("x/1.wav", "unknown"), ("x/2.wav", "speech")] and not skipped
    assert list_audio(tmp_path / "list.txt") == [i.path for i in items]


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "missing", "no such file or directory"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no audio files found"),
    (lambda d: _touch(d / "data.csv"), "expected a folder, a .jsonl manifest or a .txt"),
    (lambda d: (d / "bad.jsonl").write_text('{"path": "a.wav"}\n{oops\n') and d / "bad.jsonl",
     "bad.jsonl:2: not valid JSON"),
    (lambda d: (d / "nopath.jsonl").write_text('{"file": "a.wav"}\n') and d / "nopath.jsonl", "\"path\" string"),
    (lambda d: (d / "blank.txt").write_text("\n\n") and d / "blank.txt", "lists no files"),
])
def test_bad_data_arguments_are_one_line_errors(tmp_path, setup, message):
    with pytest.raises(EvaluationError, match=message):
        find_items(setup(tmp_path))


def test_select_takes_categories_in_turn_and_keeps_the_order():
    items = [Item(None, f"s{i}", "speech") for i in range(5)] + [Item(None, "m0", "music"), Item(None, "x0", "sounds")]
    assert [i.name for i in select(items, 4)] == ["s0", "s1", "m0", "x0"]
    assert select(items, None) == items and select(items, 100) == items
