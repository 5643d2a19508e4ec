"""The non-neuron layers of sinabs.layers (3.1.3) against sinabs itself: same values
(torch.equal), same straight-through gradients, same RNG consumption."""

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.layers as sl
import torch
import torch.nn as nn

import sinabs_fast.layers as fl

AUX_LAYERS = [
    "NeuromorphicReLU", "QuantizeLayer", "SumPool2d", "SpikingMaxPooling2dLayer",
    "Img2SpikeLayer", "Sig2SpikeLayer", "Merge", "ChannelShift", "Cropping2dLayer",
]


def test_every_public_sinabs_layer_of_this_family_exists():
    public = [name for name in dir(sl) if not name.startswith("_")]
    for name in AUX_LAYERS:
        assert name in public  # the list is sinabs' own
        assert name in fl.__all__ and hasattr(fl, name)
    assert issubclass(fl.SumPool2d, nn.LPPool2d)


@pytest.mark.parametrize("name", AUX_LAYERS)
def test_constructor_signatures_match(name):
    import inspect

    ours = inspect.signature(getattr(fl, name).__init__)
    theirs = inspect.signature(getattr(sl, name).__init__)
    assert [(p.name, p.default, p.kind) for p in ours.parameters.values()] == \
        [(p.name, p.default, p.kind) for p in theirs.parameters.values()]


def _both(name, *args, **kwargs):
    return getattr(fl, name)(*args, **kwargs), getattr(sl, name)(*args, **kwargs)


def _run_with_grad(layer, x, loss=lambda y: (y * torch.arange(y.numel()).view_as(y)).sum()):
    x = x.detach().clone().requires_grad_(True)
    y = layer(x)
    loss(y).backward()
    return y, x.grad


# ------------------------------------------------------------------------ NeuromorphicReLU


def test_neuromorphic_relu_sinabs_case():
    ours, theirs = _both("NeuromorphicReLU")
    x = torch.tensor([-5.5, -3.23, 2.3, 0.0])
    y, g = _run_with_grad(ours, x, lambda y: 2 * y.sum())
    y_ref, g_ref = _run_with_grad(theirs, x, lambda y: 2 * y.sum())
    assert torch.equal(y, torch.tensor([0.0, 0.0, 2.0, 0.0]))
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)
    # Straight-through: the gradient is relu's (zero at x = 0 and below, 2 above).
    assert torch.equal(g, torch.tensor([0.0, 0.0, 2.0, 0.0]))
    y, g = _run_with_grad(ours, torch.tensor([-5.5, -3.23, 2.3, 0.6]), lambda y: 2 * y.sum())
    assert torch.equal(y, torch.tensor([0.0, 0.0, 2.0, 0.0]))
    assert torch.equal(g, torch.tensor([0.0, 0.0, 2.0, 2.0]))
    assert torch.equal(ours.activity, theirs.activity)


def test_neuromorphic_relu_sinabs_test_quantize():
    # sinabs tests/test_quantize.py: rand(20) in [0, 1) floors to 0, gradient still flows.
    x = torch.rand(20)
    for layer in _both("NeuromorphicReLU", quantize=True, fanout=1, stochastic_rounding=False):
        y, g = _run_with_grad(layer, x, lambda y: (40 * y.sum() - 100) ** 2)
        assert (40 * y).sum() == 0 and g.sum() != 0


@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("fanout", [1, 3.5])
def test_neuromorphic_relu_matches_sinabs(quantize, stochastic, training, fanout):
    ours, theirs = _both("NeuromorphicReLU", quantize=quantize, fanout=fanout,
                         stochastic_rounding=stochastic)
    ours.train(training), theirs.train(training)
    x = torch.randn(6, 3, 5) * 4
    torch.manual_seed(11)
    y, g = _run_with_grad(ours, x, lambda y: (y * y).sum() + ours.activity * 3)
    torch.manual_seed(11)
    y_ref, g_ref = _run_with_grad(theirs, x, lambda y: (y * y).sum() + theirs.activity * 3)
    assert torch.equal(y, y_ref)
    assert torch.equal(g, g_ref)
    assert torch.equal(ours.activity, theirs.activity)
    # Same RNG consumption: the next draw agrees too.
    torch.manual_seed(11)
    ours(x)
    after_ours = torch.rand(4)
    torch.manual_seed(11)
    theirs(x)
    assert torch.equal(after_ours, torch.rand(4))


def test_neuromorphic_relu_stochastic_rounding_sinabs_test():
    x = torch.rand(20)
    torch.manual_seed(3)
    y, g = _run_with_grad(fl.NeuromorphicReLU(stochastic_rounding=True), x,
                          lambda y: (40 * y.sum() - 100) ** 2)
    assert (40 * y).sum() > 0 and g.sum() != 0
    torch.manual_seed(3)
    y_ref, g_ref = _run_with_grad(sl.NeuromorphicReLU(stochastic_rounding=True), x,
                                  lambda y: (40 * y.sum() - 100) ** 2)
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)


def test_neuromorphic_relu_float64_and_activity_grad():
    x = torch.randn(4, 7, dtype=torch.float64) * 3
    ours, theirs = _both("NeuromorphicReLU", fanout=2)
    y, g = _run_with_grad(ours, x, lambda y: ours.activity)
    y_ref, g_ref = _run_with_grad(theirs, x, lambda y: theirs.activity)
    assert y.dtype == torch.float64
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)


# ------------------------------------------------------------------------ QuantizeLayer


@pytest.mark.parametrize("quantize", [True, False])
def test_quantize_layer_matches_sinabs(quantize):
    ours, theirs = _both("QuantizeLayer", quantize=quantize)
    x = torch.randn(3, 4, 5) * 5
    y, g = _run_with_grad(ours, x)
    y_ref, g_ref = _run_with_grad(theirs, x)
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)
    assert torch.equal(y, x.floor() if quantize else x)
    assert fl.QuantizeLayer(False)(x) is x


# ------------------------------------------------------------------------ SumPool2d


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3), dict(kernel_size=(2, 3), stride=1),
    dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=(3, 2), stride=(1, 2)),
])
def test_sum_pool_matches_sinabs(kwargs):
    ours, theirs = _both("SumPool2d", **kwargs)
    assert repr(ours) == repr(theirs)
    x = torch.randn(2, 3, 9, 10)
    y, g = _run_with_grad(ours, x)
    y_ref, g_ref = _run_with_grad(theirs, x)
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)
    # It is a window sum (to within an ulp-ish rounding of avg_pool * area).
    k = kwargs["kernel_size"]
    kh, kw = (k, k) if isinstance(k, int) else k
    stride = kwargs.get("stride") or (kh, kw)
    if not kwargs.get("ceil_mode"):
        window_sum = nn.functional.avg_pool2d(x, (kh, kw), stride, divisor_override=1)
        torch.testing.assert_close(y, window_sum, rtol=0, atol=1e-5)


def test_sum_pool_gradient_is_zero_where_window_sums_to_zero():
    x = torch.ones(1, 1, 4, 4)
    x[..., :2, :2] = torch.tensor([[1.0, -1.0], [2.0, -2.0]])  # this window sums to exactly 0
    ours, theirs = _both("SumPool2d", 2)
    y, g = _run_with_grad(ours, x, lambda y: y.sum())
    y_ref, g_ref = _run_with_grad(theirs, x, lambda y: y.sum())
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)
    assert y[0, 0, 0, 0] == 0
    assert torch.equal(g[..., :2, :2], torch.zeros(1, 1, 2, 2))
    assert torch.equal(g[..., 2:, 2:], torch.ones(1, 1, 2, 2))


# ------------------------------------------------------------------------ SpikingMaxPooling2d


def test_spiking_maxpool_sinabs_cases():
    inp = torch.zeros((2, 2, 10, 10))
    assert fl.SpikingMaxPooling2dLayer(pool_size=(2, 2), strides=(2, 2))(inp).shape == \
        (2, 2, 5, 5)
    lyr = fl.SpikingMaxPooling2dLayer(pool_size=(2, 3), strides=None)
    x = (torch.rand(10, 1, 2, 3) > 0.8).float()
    x[:, 0, 0, 2] = 1
    assert lyr(x).sum().item() == 10.0


@pytest.mark.parametrize("kwargs", [
    dict(pool_size=(2, 2)), dict(pool_size=(2, 3), strides=(1, 1)),
    dict(pool_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1)),
    dict(pool_size=(2, 2), padding=(0, 1, 1, 0)), dict(pool_size=[2, 2], padding=[0, 0, 0, 0]),
])
def test_spiking_maxpool_matches_sinabs(kwargs):
    ours, theirs = _both("SpikingMaxPooling2dLayer", **kwargs)
    assert repr(ours) == repr(theirs)
    x = (torch.rand(12, 3, 8, 9) > 0.7).float() * torch.randint(1, 3, (12, 3, 8, 9))
    y, g = _run_with_grad(ours, x)
    y_ref, g_ref = _run_with_grad(theirs, x)
    assert torch.equal(y, y_ref) and torch.equal(g, g_ref)
    assert torch.equal(ours.spikes_number, theirs.spikes_number) and ours.tw == theirs.tw
    assert ours.get_output_shape((3, 8, 9)) == theirs.get_output_shape((3, 8, 9))
    assert tuple(y.shape[1:]) == ours.get_output_shape((3, 8, 9))


def test_spiking_maxpool_output_shape_too_small():
    for layer in _both("SpikingMaxPooling2dLayer", pool_size=(4, 4)):
        with pytest.raises(Exception):
            layer.get_output_shape((1, 3, 8))


# ------------------------------------------------------------------------ to-spike layers


@pytest.mark.parametrize("kwargs", [
    dict(tw=10), dict(tw=7, max_rate=300, norm=1.0), dict(tw=5, squeeze=True),
    dict(tw=6, norm=1.0, negative_spikes=True), dict(tw=4, squeeze=True, negative_spikes=True),
])
def test_img2spike_matches_sinabs_with_equal_seeds(kwargs):
    img = (torch.rand(1, 2, 16, 16) * 2 - 0.5) * (1.0 if kwargs.get("norm") == 1.0 else 255)
    ours, theirs = _both("Img2SpikeLayer", (2, 16, 16), **kwargs)
    torch.manual_seed(5)
    y = ours(img)
    next_ours = torch.rand(3)
    torch.manual_seed(5)
    y_ref = theirs(img)
    assert torch.equal(y, y_ref) and y.dtype == y_ref.dtype
    assert torch.equal(next_ours, torch.rand(3))  # same RNG consumption
    assert torch.equal(ours.spikes_number, theirs.spikes_number) and ours.tw == theirs.tw
    assert ours.get_output_shape((2, 16, 16)) == theirs.get_output_shape((2, 16, 16))


def test_img2spike_sinabs_cases():
    spikes = fl.Img2SpikeLayer(image_shape=(2, 64, 64), tw=10, max_rate=1000)(
        torch.rand(2, 64, 64))
    assert spikes.shape == (10, 2, 64, 64)
    image = 255.0 * torch.rand(3, 20, 20, dtype=torch.float64)
    rates = fl.Img2SpikeLayer((3, 20, 20), tw=10000, squeeze=True)(image.float()).mean(0)
    assert torch.allclose(rates.double(), image / 255.0, atol=0.025)
    data = 2 * torch.rand(3, 20, 20) - 1
    layer = fl.Img2SpikeLayer((3, 20, 20), tw=10000, squeeze=True, negative_spikes=True, norm=1.0)
    assert torch.allclose(layer(data).mean(0), data, atol=0.025)


@pytest.mark.parametrize("kwargs", [
    dict(), dict(tw=3), dict(tw=4, norm_level=2.5), dict(tw=2, spk_out=False),
])
def test_sig2spike_matches_sinabs_with_equal_seeds(kwargs):
    signal = torch.rand(5, 11) * 2
    ours, theirs = _both("Sig2SpikeLayer", 5, **kwargs)
    torch.manual_seed(9)
    y = ours(signal)
    next_ours = torch.rand(3)
    torch.manual_seed(9)
    y_ref = theirs(signal)
    assert torch.equal(y, y_ref)
    assert torch.equal(next_ours, torch.rand(3))
    assert torch.equal(ours.spikes_number, theirs.spikes_number)
    assert y.shape == ours.get_output_shape((5, 11)) == theirs.get_output_shape((5, 11))


# ------------------------------------------------------------------------ Merge, shift, crop


@pytest.mark.parametrize("shapes", [
    ((100, 1, 20, 20), (100, 1, 20, 20)), ((100, 1, 5, 6), (100, 10, 5, 5)),
    ((3, 4), (5, 2)), ((2, 3, 4), (2, 3, 7)),
])
def test_merge_matches_sinabs(shapes):
    a = (torch.rand(shapes[0]) > 0.5).float()
    b = (torch.rand(shapes[1]) > 0.5).float()
    ours, theirs = _both("Merge")
    out = ours(a, b)
    assert torch.equal(out, theirs(a, b))
    assert out.shape == tuple(max(s1, s2) for s1, s2 in zip(*shapes))
    assert out.sum() == a.sum() + b.sum()
    # Independent reference: each input sits in the top-left corner of a zero tensor.
    ref = torch.zeros(out.shape)
    ref[tuple(slice(0, s) for s in a.shape)] += a
    ref[tuple(slice(0, s) for s in b.shape)] += b
    assert torch.equal(out, ref)
    a_g, b_g = a.clone().requires_grad_(), b.clone().requires_grad_()
    (ours(a_g, b_g) * 2).sum().backward()
    assert torch.equal(a_g.grad, torch.full_like(a, 2.0))


def test_merge_rejects_different_ranks():
    with pytest.raises(AssertionError):
        fl.Merge()(torch.zeros(2, 3), torch.zeros(2, 3, 1))


@pytest.mark.parametrize("kwargs", [
    dict(), dict(channel_shift=14), dict(channel_shift=2, channel_axis=-1),
    dict(channel_shift=3, channel_axis=-4),
])
def test_channel_shift_matches_sinabs(kwargs):
    x = torch.rand(2, 10, 5, 5)
    ours, theirs = _both("ChannelShift", **kwargs)
    assert ours.padding == theirs.padding
    out = ours(x)
    assert torch.equal(out, theirs(x))
    axis, shift = kwargs.get("channel_axis", -3), kwargs.get("channel_shift", 0)
    assert out.shape[axis] == x.shape[axis] + shift
    assert torch.equal(out.narrow(axis, shift, x.shape[axis]), x)


@pytest.mark.parametrize("cropping", [((0, 0), (0, 0)), ((2, 3), (3, 2)), ((1, 0), (0, 4))])
def test_cropping_matches_sinabs(cropping):
    x = torch.randn(4, 5, 30, 50)
    ours, theirs = _both("Cropping2dLayer", cropping)
    out = ours(x)
    assert torch.equal(out, theirs(x))
    (t, b), (l, r) = cropping
    assert torch.equal(out, x[:, :, t:30 - b, l:50 - r])
    assert ours.get_output_shape((5, 30, 50)) == theirs.get_output_shape((5, 30, 50)) \
        == tuple(out.shape[1:])
    assert ours.out_shape == theirs.out_shape and ours.channels_in == theirs.channels_in == 5
    assert torch.equal(ours.spikes_number, theirs.spikes_number) and ours.tw == theirs.tw == 4
    assert fl.Cropping2dLayer().get_output_shape((5, 25, 45)) == (5, 25, 45)
