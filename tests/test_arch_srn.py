"""SRN architecture (vdeblur.methods.archs.srn): size, shapes, scale recurrence, trainability."""

import pytest
import torch
import torch.nn.functional as F

from nets import n_params
from vdeblur.methods.archs.blocks import ConvLSTMCell, ResBlock
from vdeblur.methods.archs.srn import SRN, SRN_VARIANTS, _SameConv2d


def test_paper_parameter_count():
    n = n_params(SRN(**SRN_VARIANTS["paper"]))
    assert abs(n - 8.06e6) / 8.06e6 < 0.05
    # exact, layer by layer: enc1_1 1,632 + 3x3 ResBlocks (32/64/128) 3,226,944 + enc2_1 51,264
    # + enc3_1 204,928 + ConvLSTM 1,180,160 + decoder ResBlocks 3,226,944 + dec2_4 131,136
    # + dec1_4 32,800 + dec1_0 801
    assert n == 8_056_609
    assert n_params(SRN(**SRN_VARIANTS["color"])) == 6_881_251  # official colour model, no LSTM
    assert SRN().pad_multiple == 16 and n_params(SRN()) == n  # defaults are the paper variant


@pytest.mark.parametrize("variant,hw", [("paper", (16, 16)), ("small", (16, 16)), ("small", (32, 48))])
def test_output_shape_and_all_scales(variant, hw):
    torch.manual_seed(0)
    model = SRN(**SRN_VARIANTS[variant]).eval()
    assert model.pad_multiple == 16
    b = 1 if variant == "paper" else 2
    x = torch.rand(b, 3, *hw)
    with torch.no_grad():
        y = model(x)
        outs = model(x, return_all=True)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert len(outs) == 3
    for i, o in enumerate(outs):
        f = 2 ** (2 - i)
        assert o.shape == (b, 3, hw[0] // f, hw[1] // f)
    assert torch.equal(outs[-1], y)


def test_rejects_sizes_not_multiple_of_pad_multiple():
    with pytest.raises(ValueError, match="multiples of 16"):
        SRN(**SRN_VARIANTS["small"])(torch.rand(1, 3, 24, 32))


def test_grey_variant_restores_each_channel_independently():
    # the paper variant is the official grey model (channels=1), folded over the colour channels
    assert SRN_VARIANTS["paper"]["channels"] == 1
    torch.manual_seed(0)
    model = SRN(**{**SRN_VARIANTS["small"], "channels": 1}).eval()
    x = torch.rand(2, 3, 32, 16)
    with torch.no_grad():
        y = model(x)
        y1 = model(x[:, 1:2])
    torch.testing.assert_close(y[:, 1:2], y1, rtol=1e-4, atol=1e-5)


def test_lstm_state_carried_across_scales():
    torch.manual_seed(0)
    model = SRN(**SRN_VARIANTS["small"]).eval()
    seen_in, seen_out = [], []
    model.lstm.register_forward_pre_hook(lambda m, args: seen_in.append(args[1]))
    model.lstm.register_forward_hook(lambda m, args, out: seen_out.append(out))
    with torch.no_grad():
        model(torch.rand(2, 3, 32, 64))
    assert len(seen_in) == 3
    assert seen_in[0] is None  # zero state at the coarsest scale
    for i in (1, 2):
        h, c = seen_in[i]
        # the bottleneck of scale i is (32, 64) / 2**(2 - i) / 4
        assert h.shape == c.shape == (2, 32, 2 ** (i + 1), 2 ** (i + 2))
        assert h.abs().max() > 0 and c.abs().max() > 0
        prev_h, prev_c = seen_out[i - 1]
        torch.testing.assert_close(h, F.interpolate(prev_h, size=h.shape[-2:], mode="bilinear"))
        torch.testing.assert_close(c, F.interpolate(prev_c, size=c.shape[-2:], mode="bilinear"))


def test_no_lstm_variant_runs():
    model = SRN(**{**SRN_VARIANTS["small"], "lstm": False})
    assert model.lstm is None
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_training_steps_reduce_l1():
    torch.manual_seed(0)
    model = SRN(**SRN_VARIANTS["small"])
    blur = torch.rand(1, 3, 32, 32)
    sharp = (blur * 0.8 + 0.1).clamp(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def loss_fn():
        outs = model(blur, return_all=True)
        return sum(F.l1_loss(o, F.interpolate(sharp, size=o.shape[-2:], mode="bilinear")) for o in outs)

    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = loss_fn()
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = loss_fn().item()
    assert final < 0.7 * first


def test_same_conv_matches_tensorflow_padding():
    torch.manual_seed(0)
    conv = _SameConv2d(2, 3, 5, stride=2)
    x = torch.rand(1, 2, 8, 12)
    # TF "SAME", stride 2, 5x5, even size: one pixel before, two after
    ref = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(conv(x), ref)
    assert conv(x).shape == (1, 3, 4, 6)


def test_resblock_and_convlstm_cell():
    torch.manual_seed(0)
    rb = ResBlock(4, 3)
    torch.nn.init.zeros_(rb.conv2.weight)
    torch.nn.init.zeros_(rb.conv2.bias)
    x = torch.rand(1, 4, 6, 6)
    torch.testing.assert_close(rb(x), x)

    cell = ConvLSTMCell(4, 5, 3)
    h, c = cell(x)
    assert h.shape == c.shape == (1, 5, 6, 6)
    z = torch.zeros(1, 5, 6, 6)
    torch.testing.assert_close(cell(x, (z, z))[0], h)
    # gate order i, j, f, o and forget bias 1, as BasicConvLSTMCell
    prev = (torch.rand(1, 5, 6, 6), torch.rand(1, 5, 6, 6))
    i, j, f, o = cell.conv(torch.cat([x, prev[0]], 1)).chunk(4, 1)
    c_ref = prev[1] * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
    h2, c2 = cell(x, prev)
    torch.testing.assert_close(c2, c_ref)
    torch.testing.assert_close(h2, torch.tanh(c_ref) * torch.sigmoid(o))
