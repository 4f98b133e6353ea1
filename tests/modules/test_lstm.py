import pytest
import torch
from torch import nn

from audiocodec.modules import ConvLSTM, LayerwiseLSTM


@pytest.mark.parametrize("with_state", [False, True])
def test_layerwise_lstm_computes_what_the_stack_does(with_state):
    torch.manual_seed(0)
    stacked = nn.LSTM(16, 16, num_layers=3).double()
    layerwise = LayerwiseLSTM(stacked)
    x = torch.randn(25, 4, 16, dtype=torch.double)
    state = (torch.randn(3, 4, 16, dtype=torch.double), torch.randn(3, 4, 16, dtype=torch.double))
    expected_y, (expected_h, expected_c) = stacked(x, state if with_state else None)
    y, (h, c) = layerwise(x, state if with_state else None)
    for got, expected in ((y, expected_y), (h, expected_h), (c, expected_c)):
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_layerwise_lstm_carries_state_across_chunks_like_the_stack():
    torch.manual_seed(0)
    stacked = nn.LSTM(8, 8, num_layers=2)
    layerwise = LayerwiseLSTM(stacked)
    x = torch.randn(30, 2, 8)
    whole, _ = stacked(x)
    first, state = layerwise(x[:12])
    second, _ = layerwise(x[12:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, atol=1e-6, rtol=0)


def test_only_a_plain_stack_can_run_layerwise():
    with pytest.raises(ValueError, match="unidirectional"):
        LayerwiseLSTM(nn.LSTM(8, 8, num_layers=2, bidirectional=True))
    block = ConvLSTM(8, num_layers=1)
    block.run_layerwise()  # a single layer already gets the persistent kernel: nothing to split
    assert isinstance(block.lstm, nn.LSTM)
    block = ConvLSTM(8, num_layers=2)
    block.run_layerwise()
    block.run_layerwise()
    assert isinstance(block.lstm, LayerwiseLSTM) and len(block.lstm.layers) == 2
    block.run_layerwise(False)
    assert isinstance(block.lstm, nn.LSTM) and block.lstm.num_layers == 2


def test_splitting_and_restacking_keep_the_weights_and_the_random_state():
    torch.manual_seed(0)
    stacked = nn.LSTM(8, 8, num_layers=2)
    state = torch.get_rng_state()
    layerwise = LayerwiseLSTM(stacked)
    again = layerwise.stacked()
    assert torch.equal(torch.get_rng_state(), state)  # no random initialisation drawn and thrown away
    assert isinstance(again, nn.LSTM) and again.num_layers == 2
    for name, value in stacked.state_dict().items():
        assert torch.equal(again.state_dict()[name], value)


class _FlagRecorder(torch.nn.Module):
    """Wraps an LSTM and records whether oneDNN was enabled when it ran."""

    def __init__(self, lstm):
        super().__init__()
        self.lstm, self.seen = lstm, []

    def forward(self, x, state=None):
        self.seen.append(torch.backends.mkldnn.enabled)
        return self.lstm(x, state)


def test_short_inference_runs_pytorchs_own_lstm_kernel_and_restores_the_flag():
    """oneDNN's LSTM has a fixed cost per call that dominates on a frame or two (modules/lstm.py `_kernel_for`)."""
    from audiocodec.modules.lstm import SHORT_SEQUENCE

    block = ConvLSTM(16, num_layers=2)
    reference = block.lstm
    block.lstm = recorder = _FlagRecorder(reference)
    assert torch.backends.mkldnn.enabled
    short, long = torch.randn(1, 16, SHORT_SEQUENCE), torch.randn(1, 16, SHORT_SEQUENCE + 1)
    with torch.inference_mode():
        y, state = block.resume(short, None)
        expected, expected_state = reference(short.permute(2, 0, 1))
        torch.testing.assert_close(y, (expected + short.permute(2, 0, 1)).permute(1, 2, 0))
        torch.testing.assert_close(state, expected_state)
        block(long)
        with pytest.raises(RuntimeError):  # a failing call leaves the flag as it found it
            block(torch.randn(1, 15, 3))
    block(short)  # with autograd: training keeps oneDNN, twice as fast there
    assert recorder.seen == [False, True, False, True] and torch.backends.mkldnn.enabled
