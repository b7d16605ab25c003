"""The VGG-19 feature network against a plain-torch VGG-19 with torchvision's layer indices."""
import numpy as np
import pytest
import torch

import minigan as mg
from minigan.models import features as vgg
from twins.vgg19_torch import VGG19


def torch_vgg19_features(pool="max"):
    """torchvision's vgg19(), its whole feature stack and a stand-in for the head a real file has."""
    model = VGG19("pool5", pool)
    model.classifier = torch.nn.Sequential(torch.nn.Linear(8, 4))
    return model.eval()


def test_layer_names_match_torchvision_indices():
    assert vgg.LAYERS["conv1_1"] == 0 and vgg.LAYERS["relu1_1"] == 1 and vgg.LAYERS["pool1"] == 4
    assert vgg.LAYERS["relu2_1"] == 6 and vgg.LAYERS["relu3_1"] == 11 and vgg.LAYERS["relu4_1"] == 20
    assert vgg.LAYERS["relu4_2"] == 22 and vgg.LAYERS["relu5_1"] == 29 and vgg.LAYERS["relu5_4"] == 35
    assert vgg.LAYERS["pool5"] == 36 and len(vgg.LAYERS) == 37
    torch_keys = set(torch_vgg19_features().features.state_dict())
    assert set(vgg.VGG19(last="pool5").features.state_dict()) == torch_keys


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_safetensors_file_loads_and_every_layer_matches_torch(tmp_path, pool):
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = torch_vgg19_features(pool)
    for m in model.features:
        if isinstance(m, torch.nn.Conv2d):  # torchvision's own init, so activations stay O(1) to the end
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.normal_(m.bias, 0, 0.1)
    path = tmp_path / "vgg19.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    network = vgg.vgg19(str(path), last="pool5", pool=pool)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    names = [n for n in vgg.LAYERS]
    ours = network(mg.tensor(images), names)
    with torch.no_grad():
        theirs = model(torch.tensor(images), names)
    for name in names:
        a, b = ours[name].numpy(), theirs[name].numpy()
        scale = np.abs(b).max() + 1e-6
        np.testing.assert_allclose(a / scale, b / scale, atol=2e-5, err_msg=name)


def test_features_stop_at_the_deepest_requested_layer_and_gradients_match_torch():
    torch.manual_seed(2)
    model = torch_vgg19_features()
    network = vgg.vgg19(model.state_dict(), last="relu3_1")
    images = np.random.default_rng(3).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    x = mg.tensor(images, requires_grad=True)
    out = network(x, ("relu1_1", "relu3_1"))
    loss = vgg.gram_loss(out, {"relu1_1": mg.zeros(1, 64, 64), "relu3_1": mg.zeros(1, 256, 256)})
    loss.backward()

    tx = torch.tensor(images, requires_grad=True)
    tout = model(tx, ("relu1_1", "relu3_1"))
    tloss = sum(((f.flatten(2) @ f.flatten(2).transpose(1, 2) / f[0, 0].numel()) ** 2).mean() for f in tout.values())
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-3, atol=1e-6 * np.abs(tx.grad.numpy()).max())
    assert all(p.grad is None for p in network.parameters())  # frozen


def test_gram_matrix_matches_torch_and_is_invariant_to_moving_pixels():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(2, 5, 6, 7)).astype(np.float32)
    t = torch.tensor(f).flatten(2)
    expected = (t @ t.transpose(1, 2) / 42).numpy()
    np.testing.assert_allclose(vgg.gram_matrix(mg.tensor(f)).numpy(), expected, rtol=1e-5, atol=1e-6)
    shuffled = f.reshape(2, 5, 42)[:, :, rng.permutation(42)].reshape(2, 5, 6, 7)
    np.testing.assert_allclose(vgg.gram_matrix(mg.tensor(shuffled)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_random_weights_follow_torchvision_init_and_are_seeded():
    a, b = vgg.vgg19(seed=5, last="relu2_1"), vgg.vgg19(seed=5, last="relu2_1")
    np.testing.assert_array_equal(a.features[5].weight.numpy(), b.features[5].weight.numpy())
    w = a.features[5].weight.numpy()  # 128 x 64 x 3 x 3, fan_out = 128 * 9
    assert abs(w.std() - np.sqrt(2 / (128 * 9))) < 0.05 * np.sqrt(2 / (128 * 9))
    assert not np.any(a.features[5].bias.numpy())


def test_bad_input_names_what_was_wrong(tmp_path):
    with pytest.raises(ValueError, match="unknown VGG-19 layer 'relu6_1'"):
        vgg.layer_index("relu6_1")
    network = vgg.vgg19(last="relu2_1")
    with pytest.raises(ValueError, match="deeper than"):
        network(mg.zeros(1, 3, 8, 8), "relu3_1")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        network(mg.zeros(1, 1, 8, 8), "relu1_1")
    with pytest.raises(FileNotFoundError, match="no VGG-19 weights file"):
        vgg.vgg19(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="features.0.weight"):
        vgg.vgg19({"classifier.0.weight": np.zeros((4, 8), np.float32)}, last="relu1_1")
    with pytest.raises(ValueError, match="full widths"):
        vgg.vgg19(str(tmp_path / "missing.safetensors"), width=0.5)
    assert vgg.VGG19(last="relu2_1", width=0.25).features[5].weight.shape == (32, 16, 3, 3)
    with pytest.raises(ValueError, match="pool must be"):
        vgg.VGG19(pool="median")
