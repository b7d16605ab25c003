"""The PatchGAN discriminators against torch twins written after pix2pix's networks.py
(``tests/twins/train_pix2pix_torch.py``), at every ``--patch``, and their receptive
fields against the closed form r(n) = 9 * 2^n - 2 and against the footprint of one
logit's gradient on the input.
"""
import numpy as np
import pytest
import torch

import minigan as mg
from minigan.models import patchgan
from minigan.testing import assert_forward_backward_match, assert_normal_init, load_into_twin
from twins import train_pix2pix_torch as twin

torch.set_num_threads(1)
NDF = 4


def _pair(patch, norm="batch", in_channels=2, image_size=32, seed=0):
    """A discriminator and its torch twin with the same weights, both in float64 (a bias
    before a norm gets a gradient of zero plus float32 round-off, which no rtol fits)."""
    mg.manual_seed(seed)
    D = patchgan.patch_discriminator(in_channels, patch, NDF, norm, image_size)
    return D.double(), load_into_twin(D, twin.patch_discriminator(in_channels, patch, NDF, norm, image_size)).double()


@pytest.mark.parametrize("norm", ["batch", "instance", None])
@pytest.mark.parametrize("patch", patchgan.PATCHES)
def test_state_dict_keys_match_torch_twin(patch, norm):
    D, tD = _pair(patch, norm)
    assert list(D.state_dict()) == list(tD.state_dict())
    assert [tuple(v.shape) for v in D.state_dict().values()] == [tuple(v.shape) for v in tD.state_dict().values()]


@pytest.mark.parametrize("norm", ["batch", "instance", None])
@pytest.mark.parametrize("patch", patchgan.PATCHES)
def test_forward_and_gradients_match_torch_twin(patch, norm):
    D, tD = _pair(patch, norm)
    assert_forward_backward_match(D, tD, np.random.default_rng(1).uniform(-1, 1, (3, 2, 32, 32)))


@pytest.mark.parametrize("patch", patchgan.PATCHES)
def test_eval_mode_matches_torch_twin(patch):
    D, tD = _pair(patch)
    x = np.random.default_rng(3).uniform(-1, 1, (4, 2, 32, 32))
    D(mg.tensor(x * 2 + 0.5)), tD(torch.tensor(x * 2 + 0.5))  # move the running statistics
    D.eval(), tD.eval()
    np.testing.assert_allclose(D(mg.tensor(x)).numpy(), tD(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("patch,logits", [(1, 32), (16, 14), (34, 6), (70, 2), ("image", 1)])
def test_logit_map_at_32x32(patch, logits):
    # conv output size floor((S + 2p - k) / s) + 1, by hand: 32 -> 16 -> 8 -> 4 (k4 s2 p1), then 4 -> 3 -> 2 (k4 s1 p1)
    D, _ = _pair(patch)
    assert D(mg.zeros(2, 2, 32, 32, dtype=mg.float64)).shape == (2, 1, logits, logits)


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_receptive_field_is_the_closed_form(n_layers):
    D = patchgan.NLayerDiscriminator(1, NDF, n_layers)
    assert patchgan.receptive_field(D) == 9 * 2 ** n_layers - 2
    strides = [m.stride[0] for m in D.modules() if isinstance(m, mg.nn.Conv2d)]
    assert strides == [2] * n_layers + [1, 1]  # n stride-2 layers then two stride-1
    assert patchgan.receptive_field(patchgan.PixelDiscriminator(1, NDF)) == 1


@pytest.mark.parametrize("patch", [1, 16, 34])
def test_one_logits_gradient_covers_exactly_its_receptive_field(patch):
    """A centre logit's gradient on the input is non-zero exactly on a patch x patch square
    (LeakyReLU passes some gradient everywhere; no norm, so samples and pixels do not mix)."""
    size = 2 * patch + 8
    mg.manual_seed(0)
    D = patchgan.patch_discriminator(1, patch, NDF, norm=None)
    x = mg.tensor(np.random.default_rng(0).standard_normal((1, 1, size, size)).astype(np.float32),
                  requires_grad=True)
    out = D(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows, cols = np.nonzero(x.grad.numpy()[0, 0])
    assert rows.max() - rows.min() + 1 == patch == cols.max() - cols.min() + 1
    assert patchgan.receptive_field(D) == patch


def test_image_discriminator_sees_the_whole_image():
    D = patchgan.ImageDiscriminator(1, 32, NDF)
    assert patchgan.receptive_field(D) == 1 + 3 * (1 + 2 + 4 + 8) == 46  # three 4x4 s2 convs, then a 4x4 one
    x = mg.tensor(np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32), requires_grad=True)
    D.eval()
    D(x).sum().backward()
    assert (x.grad.numpy() != 0).all()


def test_no_norm_on_the_first_layer_and_leaky_relu_02():
    D = patchgan.NLayerDiscriminator(2, NDF, 3)
    layers = list(D.model)
    assert isinstance(layers[0], mg.nn.Conv2d) and isinstance(layers[1], mg.nn.LeakyReLU)
    assert layers[0].bias is not None  # the first conv keeps its bias: no norm follows it
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, mg.nn.LeakyReLU))
    assert sum(isinstance(m, mg.nn.BatchNorm2d) for m in layers) == 3
    channels = [m.out_channels for m in layers if isinstance(m, mg.nn.Conv2d)]
    assert channels == [NDF, 2 * NDF, 4 * NDF, 8 * NDF, 1]


def test_init_is_normal_0_002():
    mg.manual_seed(0)
    assert_normal_init(patchgan.NLayerDiscriminator(2, 64, 3), 0.02)
    assert_normal_init(patchgan.patch_discriminator(2, 1, 64), 0.02)


def test_bad_arguments_name_what_was_wrong():
    with pytest.raises(ValueError, match="patch"):
        patchgan.patch_discriminator(2, patch=8)
    with pytest.raises(ValueError, match="norm"):
        patchgan.NLayerDiscriminator(2, norm="layer")
    with pytest.raises(ValueError, match="power of two"):
        patchgan.ImageDiscriminator(2, image_size=28)
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        patchgan.NLayerDiscriminator(2, NDF)(mg.zeros(1, 1, 32, 32))
