"""The codec, its EnCodec compatibility and training on a CUDA GPU. Skipped where there is none (CI has none);
run on a lent GPU machine with `pytest tests/test_cuda.py`."""

import warnings

import pytest
import torch

from audiocodec import Codec, EncodedAudio
from audiocodec.api import compress, decompress
from tests.tiny_models import tiny_codec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture
def exact_fp32():
    """Plain float32 arithmetic: TF32 (cuDNN's default for convolutions) rounds inputs to 10 mantissa bits, which
    is enough to move near-tie codes; exact comparisons need it off."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("variant", ["24khz", "48khz"])
def test_encodec_codes_and_audio_on_cuda(tmp_path, exact_fp32, variant):
    from tests.test_encodec_compat import assert_matches_encodec, encodec_outputs, random_encodec

    reference = random_encodec(variant)
    torch.save(reference.state_dict(), tmp_path / "encodec.th")
    codec = Codec.from_encodec(tmp_path / "encodec.th", variant).cuda().prepare_for_inference()
    reference.cuda()
    wav = 0.1 * torch.randn(3, reference.channels, int(reference.sample_rate * 1.3) + 17, device="cuda")
    bandwidths = (reference.target_bandwidths[0], reference.target_bandwidths[-1])
    assert_matches_encodec(codec, wav, encodec_outputs(reference, wav, bandwidths))


def test_cuda_and_cpu_give_the_same_codes(exact_fp32):
    codec = tiny_codec()
    wav = 0.3 * torch.randn(2, 1, 8000)
    with torch.inference_mode():
        on_cpu = codec.encode(wav)
        from_cpu_codes = codec.decode(on_cpu)
        codec.cuda()
        on_gpu = codec.encode(wav.cuda())
        from_gpu_codes = codec.decode(EncodedAudio(on_cpu.codes.cuda(), None, on_cpu.length)).cpu()
    assert (on_cpu.codes == on_gpu.codes.cpu()).float().mean() >= 0.99
    torch.testing.assert_close(from_gpu_codes, from_cpu_codes, atol=1e-5, rtol=0)


@pytest.mark.parametrize("normalize", [False, True])
def test_library_round_trip_on_cuda(exact_fp32, normalize):
    codec = tiny_codec(normalize=normalize).cuda()
    wav = 0.3 * torch.randn(1, 8000)
    data = compress(wav, codec.config.sample_rate, codec, bandwidth=8.0)
    audio, rate = decompress(data, codec)
    assert rate == codec.config.sample_rate and audio.shape == wav.shape and torch.isfinite(audio).all()
    torch.testing.assert_close(audio, decompress(data, codec.cpu())[0], atol=1e-4, rtol=0)  # as the CPU decodes it


@pytest.mark.parametrize("bf16, kind", [(False, "ema"), (True, "ema"), (True, "gumbel")])
def test_training_steps_on_cuda(tmp_path, bf16, kind):
    from audiocodec.training.trainer import Trainer
    from tests.training.test_trainer import tiny_config

    config = tiny_config(tmp_path, max_steps=12)
    config.bf16, config.device, config.model.quantizer.kind = bf16, "cuda", kind
    trainer = Trainer(config)
    assert trainer.device.type == "cuda"
    trainer.train()
    level = trainer.model.quantizer.levels[0]
    assert level.embedding.is_cuda
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") > 0


def test_more_ranks_than_gpus_is_a_clear_error(monkeypatch):
    from audiocodec.errors import ConfigError
    from audiocodec.training.trainer import training_device

    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count()))
    with pytest.raises(ConfigError, match="start at most"):
        training_device("auto")


def test_metrics_run_on_cuda_tensors():
    from audiocodec.evaluation.metrics import mel_distance, si_sdr, stft_distance

    reference = torch.randn(2, 8000)
    estimate = reference + 0.1 * torch.randn(2, 8000)
    for metric in (lambda a, b: mel_distance(a, b, 8000), stft_distance, si_sdr):
        on_cpu, on_gpu = metric(reference, estimate), metric(reference.cuda(), estimate.cuda())
        torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-4)


def test_training_resumes_on_cuda(tmp_path):
    from audiocodec.training.trainer import Trainer
    from tests.training.test_trainer import tiny_config

    config = tiny_config(tmp_path, max_steps=6)
    config.device, config.checkpoint_every = "cuda", 3
    Trainer(config).train()
    config.optim.max_steps = 9
    resumed = Trainer(config, resume=True)
    assert resumed.step == 6
    resumed.train()
    assert resumed.step == 9 and (tmp_path / "run" / "checkpoint_00000009.pt").exists()
    state = resumed.opt_g.state_dict()["state"]
    assert all(value.is_cuda for entry in state.values() for value in entry.values() if value.dim())


def test_float16_runs_the_lstm_layer_by_layer_on_cuda(exact_fp32):
    # 128 LSTM channels and a batch of 8: the sizes for which PyTorch picks cuDNN's persistent kernel.
    reference = tiny_codec(n_filters=32, lstm=2, causal=True).cuda().prepare_for_inference()
    half = tiny_codec(n_filters=32, lstm=2, causal=True).cuda().prepare_for_inference(dtype=torch.float16)
    wav = 0.3 * torch.randn(8, 1, 8000, device="cuda")
    with torch.inference_mode():
        expected, encoded = reference.encode(wav), half.encode(wav)
        audio, expected_audio = half.decode(encoded), reference.decode(encoded)
        streamed = half.streaming_encoder()
        codes = torch.cat([streamed.push(wav[..., :3000]), streamed.push(wav[..., 3000:]), streamed.flush()], -1)
    assert (encoded.codes == expected.codes).float().mean() > 0.95
    assert (codes == encoded.codes).float().mean() > 0.95
    assert (audio - expected_audio).pow(2).mean() < 1e-3 * expected_audio.pow(2).mean()


def test_device_cuda_prepares_a_model_of_its_own_on_the_gpu():
    """`--device cuda` loads and prepares the model on the GPU; the CPU's shared default stays where it is."""
    from audiocodec.api import default_model
    from audiocodec.cli.common import load_model

    model = load_model(None, "cuda")
    assert model is not default_model() and next(default_model().parameters()).device.type == "cpu"
    assert all(p.is_cuda for p in model.parameters()) and not model.training
    wav = 0.1 * torch.randn(1, 1, 24000)
    with torch.inference_mode():
        codes = model.encode(wav.cuda()).codes.cpu()
        assert (codes == default_model().encode(wav).codes).float().mean() > 0.99  # up to near ties
