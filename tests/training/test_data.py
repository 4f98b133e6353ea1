import numpy as np
import soundfile as sf
import torch

from audiocodec.training.data import BatchOrder, SegmentDataset, TrainLoader


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


def test_worker_processes_load_the_batches_of_the_step_and_resume_mid_epoch_exactly(tmp_path):
    """Batches loaded by 2 worker processes equal batches loaded in the step, across epochs; a loader started at a
    later position (a resumed run) continues with exactly the batches an uninterrupted one loads there."""
    rate = 8000
    rng = np.random.default_rng(1)
    for i in range(5):
        sf.write(tmp_path / f"noise{i}.wav", (0.1 * rng.standard_normal(rate)).astype(np.float32), rate)
    dataset = SegmentDataset(tmp_path, rate, 1, segment=rate // 4)
    order = BatchOrder(len(dataset), batch_size=2, rank=0, world=1, seed=3)
    assert order.batches_per_epoch == 2  # 5 files in batches of 2: the sixth batch is epoch 2's first

    def expected(epoch, index):
        return torch.stack([dataset.segment_of(i, epoch) for i in order.batch(epoch, index)])

    positions = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    in_step, workers = TrainLoader(dataset, order, workers=0), TrainLoader(dataset, order, workers=2)
    try:
        in_step.start(0, 0)
        workers.start(0, 0)
        for epoch, index in positions:
            batch = workers.next()
            assert torch.equal(batch, expected(epoch, index)) and torch.equal(batch, in_step.next())
        assert not torch.equal(expected(0, 0), expected(1, 0))  # epochs differ: the test can tell them apart
        workers.close()  # as each `Trainer.train` ends; a later start must start new workers
        workers.start(1, 1)  # where a checkpoint after 3 batches resumes
        for epoch, index in positions[3:]:
            assert torch.equal(workers.next(), expected(epoch, index)), (epoch, index)
        workers.start(0, 2)  # a position past an epoch's end is the next epoch's start
        assert torch.equal(workers.next(), expected(1, 0))
    finally:
        workers.close()


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
