"""The U-Net and the encoder-decoder of pix2pix against torch twins written after its
networks.py (``tests/twins/train_pix2pix_torch.py``): forward, gradients and batch
norm's statistics in float64, dropout's place, the skip's concatenation.
"""
import numpy as np
import pytest
import torch

import minigan as mg
from minigan import nn
from minigan.testing import assert_forward_backward_match, load_into_twin
from twins import train_pix2pix_torch as twin

torch.set_num_threads(1)
NGF = 2


def _pair(skip=True, norm="batch", num_downs=5, dropout=0.5, seed=0):
    mg.manual_seed(seed)
    G = nn.UNet(2, 1, num_downs, NGF, norm, dropout, skip)
    tG = twin.UnetGenerator(2, 1, num_downs, NGF, norm, use_dropout=dropout > 0, skip=skip)
    return G.double(), load_into_twin(G, tG).double()


def _images(n=3, size=32, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2, size, size))


@pytest.mark.parametrize("num_downs", [5, 6])
@pytest.mark.parametrize("norm", ["batch", "instance", None])
@pytest.mark.parametrize("skip", [True, False], ids=["unet", "encoder-decoder"])
def test_state_dict_matches_torch_twin(skip, norm, num_downs):
    G, tG = _pair(skip, norm, num_downs)
    assert [(k, tuple(v.shape)) for k, v in G.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tG.state_dict().items()]


@pytest.mark.parametrize("norm", ["batch", "instance", None])
@pytest.mark.parametrize("skip", [True, False], ids=["unet", "encoder-decoder"])
def test_forward_and_gradients_match_torch_twin_in_training_mode(skip, norm):
    G, tG = _pair(skip, norm, dropout=0.0)  # dropout's masks come from two generators: checked below
    out = assert_forward_backward_match(G, tG, _images(), rtol=1e-8)
    assert out.shape == (3, 1, 32, 32)


@pytest.mark.parametrize("skip", [True, False], ids=["unet", "encoder-decoder"])
def test_eval_mode_with_dropout_matches_torch_twin(skip):
    G, tG = _pair(skip, num_downs=6)
    x = _images(4, 64)
    G(mg.tensor(x * 2))  # move the running statistics (dropout's masks differ: the twin loads the result)
    load_into_twin(G, tG)
    G.eval(), tG.eval()
    np.testing.assert_allclose(G(mg.tensor(x)).numpy(), tG(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-12)


def test_dropout_is_in_the_three_decoder_blocks_after_the_innermost():
    for num_downs in (5, 8):
        G = nn.UNet(1, 1, num_downs, NGF)
        blocks = [m for m in G.modules() if isinstance(m, nn.UnetSkipConnectionBlock)]  # outermost first
        dropping = [i for i, b in enumerate(blocks) if any(isinstance(m, nn.Dropout) for m in b.model)]
        assert dropping == [num_downs - 4, num_downs - 3, num_downs - 2]  # depths 3, 2, 1 from the innermost
        assert all(m.p == 0.5 for m in G.modules() if isinstance(m, nn.Dropout))


def test_dropout_makes_training_mode_stochastic_and_eval_mode_deterministic():
    G = nn.UNet(2, 1, 5, NGF)
    x = mg.tensor(_images().astype(np.float32))
    assert not np.array_equal(G(x).numpy(), G(x).numpy())
    G.eval()
    np.testing.assert_array_equal(G(x).numpy(), G(x).numpy())


def test_no_norm_on_the_outermost_and_innermost_down_convolutions_and_tanh_out():
    G = nn.UNet(2, 1, 5, NGF)
    blocks = [m for m in G.modules() if isinstance(m, nn.UnetSkipConnectionBlock)]
    outer, inner = list(blocks[0].model), list(blocks[-1].model)
    assert isinstance(outer[0], nn.Conv2d) and isinstance(outer[1], nn.UnetSkipConnectionBlock)
    assert isinstance(outer[-1], nn.Tanh)
    assert [type(m) for m in inner[:3]] == [nn.LeakyReLU, nn.Conv2d, nn.ReLU]
    assert inner[0].negative_slope == 0.2
    for b in blocks[1:-1]:  # every other block: LeakyReLU, conv, norm down; ReLU, transposed conv, norm up
        kinds = [type(m) for m in b.model]
        assert kinds[:3] == [nn.LeakyReLU, nn.Conv2d, nn.BatchNorm2d] and kinds[4:7] == [nn.ReLU,
                                                                                            nn.ConvTranspose2d,
                                                                                            nn.BatchNorm2d]
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for m in convs)


def test_a_block_concatenates_its_input_with_its_output():
    G = nn.UNet(2, 1, 5, NGF, norm=None)
    block = [m for m in G.modules() if isinstance(m, nn.UnetSkipConnectionBlock)][1]  # 16 x 16, ngf channels in
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, NGF, 16, 16)).astype(np.float32))
    out = block(x)
    assert out.shape == (2, 2 * NGF, 16, 16)
    np.testing.assert_array_equal(out.numpy()[:, :NGF], x.numpy())
    block.skip = False
    assert block(x).shape == (2, NGF, 16, 16)


def test_encoder_decoder_has_no_skips_so_its_decoder_is_narrower():
    unet, plain = nn.UNet(2, 1, 5, NGF), nn.UNet(2, 1, 5, NGF, skip=False)
    def upsampling_inputs(g):  # the transposed conv's input channels of each block, outermost first
        blocks = [m for m in g.modules() if isinstance(m, nn.UnetSkipConnectionBlock)]
        return [next(m for m in b.model if isinstance(m, nn.ConvTranspose2d)).in_channels for b in blocks]
    with_skips, without = upsampling_inputs(unet), upsampling_inputs(plain)
    # the U-Net's decoder reads its own features and the encoder's: twice the channels, but at the innermost block
    assert with_skips[:-1] == [2 * c for c in without[:-1]] and with_skips[-1] == without[-1] == 8 * NGF
    assert without == [NGF, 2 * NGF, 4 * NGF, 8 * NGF, 8 * NGF]


def test_bad_inputs_name_what_was_wrong():
    with pytest.raises(ValueError, match=r"multiples of 2\^num_downs = 32"):
        nn.UNet(2, 1, 5, NGF)(mg.zeros(1, 2, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        nn.UNet(2, 1, 5, NGF)(mg.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="norm"):
        nn.UNet(2, 1, 5, NGF, norm="layer")
