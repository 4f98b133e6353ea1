import numpy as np
import soundfile as sf
import torch

from audiocodec.training.data import SegmentDataset


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
        dataset.epoch = epoch
        segment = dataset[0][0]
        loudest = int(segment.abs().argmax())  # offsets where that sample matches, then the whole segment
        offsets = (whole[loudest : len(whole) - size + loudest + 1] == segment[loudest]).nonzero().flatten()
        assert any(torch.equal(whole[o : o + size], segment) for o in offsets.tolist()), f"epoch {epoch}"
