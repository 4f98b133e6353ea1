"""Gumbel-softmax levels: straight-through sampling, diversity loss, temperature schedule, plain argmax at inference."""

import pytest
import torch

from audiocodec.errors import ConfigError
from audiocodec.quantization import GumbelCodebook, GumbelConfig, QuantizerConfig, build_quantizer
from audiocodec.quantization.gumbel import diversity


def _book_on_codes(bins=4, dimension=3):
    book = GumbelCodebook(dimension, bins, kmeans_init=False)
    with torch.no_grad():
        book.embedding.copy_(10 * torch.eye(bins, dimension) if bins <= dimension else 10 * torch.randn(bins, dimension))
        book.logit_scale.fill_(10.0)
    return book


def test_diversity_loss_is_k_minus_perplexity_over_k():
    book = _book_on_codes(bins=3, dimension=3)
    generator = torch.Generator().manual_seed(0)
    spread = book.embedding.detach().repeat(5, 1)  # every code equally often: perplexity K
    assert diversity(book.sample(spread, 1.0, generator).probabilities / 15).item() == pytest.approx(0.0, abs=1e-4)
    one = book.embedding.detach()[:1].repeat(15, 1)  # one code only: perplexity 1
    assert diversity(book.sample(one, 1.0, generator).probabilities / 15).item() == pytest.approx(2 / 3, abs=1e-4)


def test_sample_is_hard_forward_and_soft_backward():
    book = _book_on_codes()
    book.logit_scale.fill_(0.05)  # soft enough for non-zero gradients
    x = torch.randn(6, 3, requires_grad=True)
    sample = book.sample(x, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(sample.quantized.detach(), book.embedding.detach()[sample.codes], atol=1e-5)
    sample.quantized.sum().backward()
    assert x.grad.abs().sum() > 0 and book.embedding.grad.abs().sum() > 0


def test_noise_picks_other_codes_when_logits_are_flat_and_temperature_only_softens():
    book = _book_on_codes()
    x = torch.randn(400, 3)
    nearest = book.encode(x)
    book.logit_scale.fill_(1e-3)  # flat logits: the Gumbel noise decides
    flat = book.sample(x, 1.0, torch.Generator().manual_seed(0)).codes
    book.logit_scale.fill_(100.0)  # peaked logits: the nearest code wins despite the noise
    sharp = book.sample(x, 1.0, torch.Generator().manual_seed(0)).codes
    assert (flat != nearest).float().mean() > 0.3
    assert (sharp != nearest).float().mean() < 0.05
    # the temperature changes the soft probabilities (the gradient), never the hard sample
    cold = book.sample(x, 1e-2, torch.Generator().manual_seed(0)).codes
    assert torch.equal(cold, sharp)


def test_gumbel_quantizer_trains_and_infers_with_argmax():
    config = QuantizerConfig(kind="gumbel", n_q=2, bins=8, kmeans_factor=2,
                             gumbel=GumbelConfig(temperature_start=2.0, temperature_end=0.5, temperature_decay=0.5))
    q = build_quantizer(4, config).train()
    assert all(isinstance(level, GumbelCodebook) for level in q.levels)
    optimizer = torch.optim.Adam(q.parameters(), lr=1e-2)
    temperatures = []
    for i in range(6):
        x = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(i))
        out = q(x)
        if "temperature" in out.metrics:
            temperatures.append(out.metrics["temperature"])
            loss = out.loss + (out.quantized - x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            assert q.levels[0].embedding.grad.abs().sum() > 0
    assert temperatures == sorted(temperatures, reverse=True) and temperatures[-1] == 0.5
    q.eval()
    x = torch.randn(2, 4, 16)
    out = q(x)
    assert torch.equal(out.codes, q.encode(x))
    assert torch.equal(out.quantized, q.decode(out.codes))


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="kind"):
        QuantizerConfig(kind="lfq")
