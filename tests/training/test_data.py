import numpy as np
import soundfile as sf
import torch

from audiocodec.training.data import BatchPrefetcher, SegmentDataset


def test_mp3_segments_are_exact_slices_of_the_decoded_file(tmp_path):
    """libsndfile's MP3 seeking lands off by up to a few hundred samples and decodes some wrongly; segments of an
    MP3 must be slices of the whole decoded file, as every other format's are."""
    rate = 44100
    wav = np.zeros(rate * 4, dtype=np.float32)
    wav[rate:] = 0.2 * np.sin(np.arange(rate * 3) / 3)  # a tone after a second of silence
    sf.write(tmp_path / "tone.mp3", wav, rate, format="MP3", subtype="MPEG_LAYER_III")
    whole = torch.from_numpy(sf.read(tmp_path / "tone.mp3", dtype="float32")[0])
    size = rate // 2
    dataset = SegmentDataset(tmp_path, rate, 1, segment=size)
    for epoch in range(6):
        segment = dataset.segment_of(0, epoch)[0]
        loudest = int(segment.abs().argmax())  # offsets where that sample matches, then the whole segment
        offsets = (whole[loudest : len(whole) - size + loudest + 1] == segment[loudest]).nonzero().flatten()
        assert any(torch.equal(whole[o : o + size], segment) for o in offsets.tolist()), f"epoch {epoch}"


def test_prefetched_batches_equal_batches_loaded_in_the_step(tmp_path):
    rate = 8000
    rng = np.random.default_rng(1)
    for i in range(5):
        sf.write(tmp_path / f"noise{i}.wav", (0.1 * rng.standard_normal(rate)).astype(np.float32), rate)
    dataset = SegmentDataset(tmp_path, rate, 1, segment=rate // 4)
    loader = BatchPrefetcher(dataset, workers=2)
    try:
        loader.prefetch(3, [4, 0, 2])
        assert torch.equal(loader.get(3, [4, 0, 2]), torch.stack([dataset.segment_of(i, 3) for i in (4, 0, 2)]))
        loader.prefetch(3, [1, 3])  # asked for something else: that is loaded, not the prefetched batch
        assert torch.equal(loader.get(4, [1, 3]), torch.stack([dataset.segment_of(i, 4) for i in (1, 3)]))
        assert not torch.equal(dataset.segment_of(1, 3), dataset.segment_of(1, 4))
        loader.close()  # as each `Trainer.train` ends; a second call must still prefetch
        loader.prefetch(5, [2])
        assert loader.pending is not None and torch.equal(loader.get(5, [2]), dataset.segment_of(2, 5)[None])
    finally:
        loader.close()


def test_files_with_nan_or_inf_anywhere_are_skipped_and_counted(tmp_path):
    """NaN late in a file passed the silence check (max() passes a NaN over), NaN early made it 'silent', and the
    quantizer then stopped the run at the first bad segment."""
    rate = 8000
    tone = (0.3 * np.sin(np.arange(rate * 16) / 5)).astype(np.float32)
    for name, where, value in (("nan_late", slice(70000, None), np.nan), ("nan_early", slice(0, 10), np.nan),
                               ("inf", slice(None, None, 50), np.inf)):
        bad = tone.copy()
        bad[where] = value
        sf.write(tmp_path / f"{name}.wav", bad, rate, subtype="FLOAT")
    sf.write(tmp_path / "good.wav", tone, rate)
    sf.write(tmp_path / "silent.wav", np.zeros(rate, np.float32), rate)
    dataset = SegmentDataset(tmp_path, rate, 1, 2000)
    assert [path.name for path, *_ in dataset.files] == ["good.wav"]
    assert dataset.skipped == {"unreadable": 0, "empty": 0, "silent": 1, "not finite": 3}


def test_a_malformed_manifest_line_is_one_line_naming_it(tmp_path):
    import pytest

    from audiocodec.errors import AudioCodecError

    for text, message in (('{"path": \n', "manifest.jsonl:1: not valid JSON"),
                          ('# a comment\n{"file": "a.wav"}\n', 'manifest.jsonl:2: expected a JSON object'),
                          ('{"path": 5}\n', 'manifest.jsonl:1: expected a JSON object with a "path"')):
        (tmp_path / "manifest.jsonl").write_text(text)
        with pytest.raises(AudioCodecError, match=message):
            SegmentDataset(tmp_path / "manifest.jsonl", 8000, 1, 2000)
