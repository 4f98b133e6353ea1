"""Residual FSQ: straight-through gradient, codes in range, eval forward = decode(encode), bins = product of the
grid (so the bitrate and the .ac entropy coder work unchanged), and a few training steps of the tiny recipe."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import audiocodec
from audiocodec import Codec
from audiocodec.errors import ConfigError
from audiocodec.quantization import FSQConfig, FSQLevel, QuantizerConfig, ResidualVectorQuantizer, StepInfo

RECIPE = Path(__file__).parents[2] / "recipes" / "tiny_cpu_fsq.yaml"


def test_codes_are_in_range_every_grid_point_is_reachable_and_decode_lies_on_the_grid():
    level = FSQLevel([8, 5, 3], stage=0)
    assert level.bins == 120
    x = torch.cat([torch.randn(20000, 3) * 3, torch.tensor([[-1e6] * 3, [1e6] * 3, [0.0] * 3])])
    codes = level.encode(x)
    assert codes.min() >= 0 and codes.max() < 120
    assert torch.unique(codes).numel() == 120  # no dead codes: the whole grid is used
    assert int(codes[-3]) == 0 and int(codes[-2]) == 119  # the corners
    values = level.decode(torch.arange(120))
    for dim, size in enumerate([8, 5, 3]):  # [-1, 1], evenly spaced (even sizes stop one step short of +1)
        assert torch.allclose(torch.unique(values[:, dim]) * (size // 2), torch.arange(size) - size // 2.0)


def test_later_stages_quantize_on_finer_grids():
    coarse, fine = FSQLevel([8, 5], stage=0), FSQLevel([8, 5], stage=2)
    assert torch.allclose(fine.scale, torch.tensor([1 / 49, 1 / 16]))
    assert torch.allclose(fine.decode(torch.arange(40)).abs().max(0).values,
                          coarse.decode(torch.arange(40)).abs().max(0).values * fine.scale)


def test_gradient_passes_the_rounding_straight_through():
    level = FSQLevel([8, 5], stage=1)
    residual = (torch.randn(64, 2) * 0.1).requires_grad_()
    step = level.train_step(residual, StepInfo(step=0), torch.Generator())
    assert torch.allclose(step.quantized.detach(), level.decode(step.codes), atol=1e-6)  # hard forward
    step.quantized.sum().backward()
    # backward: the derivative of the bound (tanh), as if there were no rounding
    smooth = residual.detach().clone().requires_grad_()
    (level._bound(smooth / level.scale) / (level.grid // 2) * level.scale).sum().backward()
    assert torch.allclose(residual.grad, smooth.grad) and residual.grad.abs().min() > 0
    assert step.loss.item() == 0.0 and step.statistics[0].sum() == 64


def test_quantizer_projects_and_eval_forward_is_decode_of_encode():
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(16, 3, 1000, kind="fsq")
    assert q.project_in.out_features == 4 and q.recent.numel() == 0  # no ring: nothing to initialise or expire
    x = torch.randn(2, 16, 30)
    q.train()
    trained = q(x.clone().requires_grad_())
    trained.quantized.pow(2).mean().backward()
    assert q.project_in.weight.grad.abs().sum() > 0 and q.project_out.weight.grad.abs().sum() > 0
    q.eval()
    out = q(x)
    codes = q.encode(x)
    assert torch.equal(out.codes, codes) and torch.equal(out.codes, trained.codes)
    assert torch.equal(out.quantized, q.decode(codes))
    assert torch.allclose(out.quantized, trained.quantized.detach(), atol=1e-5)
    assert codes.min() >= 0 and codes.max() < 1000


def test_bins_must_be_the_grids_product_and_the_grid_is_part_of_the_model_id():
    with pytest.raises(ConfigError, match=r"bins must be the product of fsq.levels \[8, 5, 5, 5\] \(1000\)"):
        QuantizerConfig(kind="fsq", bins=1024)
    with pytest.raises(ConfigError, match="fsq levels must be"):
        FSQConfig(levels=[1, 4])
    from tests.tiny_models import tiny_config

    ids = []
    for levels in ([4, 2, 2], [2, 4, 2]):
        torch.manual_seed(0)
        config = tiny_config(quantizer=QuantizerConfig(kind="fsq", n_q=4, bins=16, fsq=FSQConfig(levels=levels)))
        ids.append(Codec(config).model_id())
    assert ids[0] != ids[1]  # same shapes, same weights, different codes


def test_an_fsq_codec_compresses_to_ac_files_and_back(tmp_path):
    from tests.tiny_models import tiny_config

    torch.manual_seed(0)
    codec = Codec(tiny_config(quantizer=QuantizerConfig(kind="fsq", n_q=4, bins=16, fsq=FSQConfig(levels=[4, 4]))))
    codec.save_pretrained(tmp_path / "model")
    loaded = Codec.from_pretrained(tmp_path / "model")
    assert loaded.model_id() == codec.model_id()
    wav = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000).astype(np.float32)
    for bandwidth in loaded.bandwidths:
        data = audiocodec.compress(wav[None], 8000, loaded, bandwidth=bandwidth)
        frames = math.ceil(8000 / 8)
        assert len(data) < frames * 4 * math.log2(16) / 8 + 200  # at most the raw codes, plus the header
        assert audiocodec.decompress(data, loaded)[0].shape[-1] == 8000


def test_a_few_training_steps_of_the_tiny_fsq_recipe(tmp_path):
    import soundfile as sf

    from audiocodec.training.config import load_config
    from audiocodec.training.trainer import Trainer

    t = np.arange(8000) / 8000
    for folder, files in (("train", 4), ("valid", 2)):
        (tmp_path / folder).mkdir()
        for i in range(files):
            tone = 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t)
            sf.write(tmp_path / folder / f"clip{i}.wav", tone.astype(np.float32), 8000)
    config = load_config(RECIPE)
    config.data.train, config.data.valid = str(tmp_path / "train"), str(tmp_path / "valid")
    config.output_dir = str(tmp_path / "run")
    config.optim.max_steps = 4
    config.valid_every = config.checkpoint_every = 4
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.model.quantizer.state_dict().items()}
    trainer.train()
    after = trainer.model.quantizer.state_dict()
    assert trainer.step == 4
    assert not torch.equal(before["project_in.weight"], after["project_in.weight"])  # learnt by gradient
    assert (tmp_path / "run").is_dir()
