"""The autoencoders against torch twins written in plain torch, and the linear one against PCA.

Each twin loads minigan's weights; forward outputs, the loss (with its sparsity
penalty), gradients, and the parameters after Adam steps agree within float32
tolerance. A linear autoencoder trained to convergence spans PCA's subspace:
its principal angles to PCA's components go to zero.
"""
import numpy as np
import pytest
import torch
import torch.nn as tnn

import minigan as mg
from minigan import optim
from minigan.models import autoencoder as ae
from minigan.models.pca import PCA
from minigan.testing import assert_params_match


class TorchLinearAutoencoder(tnn.Module):
    def __init__(self, data_dim, code_dim):
        super().__init__()
        self.encoder = tnn.Linear(data_dim, code_dim)
        self.decoder = tnn.Linear(code_dim, data_dim)

    def forward(self, x):
        return self.decoder(self.encoder(x.flatten(1))).reshape(x.shape), None


class TorchMLPAutoencoder(tnn.Module):
    def __init__(self, data_dim, code_dim, hidden, sigmoid):
        super().__init__()
        layers, width = [], data_dim
        for h in hidden:
            layers += [tnn.Linear(width, h), tnn.ReLU()]
            width = h
        layers += [tnn.Linear(width, code_dim)] + ([tnn.Sigmoid()] if sigmoid else [])
        self.encoder = tnn.Sequential(*layers)
        layers, width = [], code_dim
        for h in reversed(hidden):
            layers += [tnn.Linear(width, h), tnn.ReLU()]
            width = h
        self.decoder = tnn.Sequential(*layers, tnn.Linear(width, data_dim))

    def forward(self, x):
        h = self.encoder(x.flatten(1))
        return self.decoder(h).reshape(x.shape), h


class TorchConvAutoencoder(tnn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = tnn.Sequential(tnn.Conv2d(1, 4, 4, 2, 1), tnn.ReLU(), tnn.Conv2d(4, 6, 4, 2, 1), tnn.ReLU())
        self.decoder = tnn.Sequential(tnn.ConvTranspose2d(6, 4, 4, 2, 1), tnn.ReLU(),
                                      tnn.ConvTranspose2d(4, 1, 4, 2, 1), tnn.Tanh())

    def forward(self, x):
        return self.decoder(self.encoder(x)), None


def torch_loss(twin, x, target, kind, beta=3.0, rho=0.05):
    x_hat, h = twin(x)
    loss = ((x_hat - target) ** 2).flatten(1).sum(1).mean()
    if kind == "kl":
        rho_hat = h.mean(0)
        loss = loss + beta * (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    elif kind == "l1":
        loss = loss + beta * h.abs().sum(1).mean()
    return loss


CASES = {  # name: (minigan model, twin, input shape, penalty)
    "linear": (lambda: ae.LinearAutoencoder(12, 3), lambda: TorchLinearAutoencoder(12, 3), (6, 1, 3, 4), None),
    "bottleneck": (lambda: ae.MLPAutoencoder(12, 3, (8,)), lambda: TorchMLPAutoencoder(12, 3, (8,), False),
                   (6, 1, 3, 4), None),
    "sparse_kl": (lambda: ae.MLPAutoencoder(12, 20, (), "sigmoid"), lambda: TorchMLPAutoencoder(12, 20, (), True),
                  (6, 1, 3, 4), "kl"),
    "sparse_l1": (lambda: ae.MLPAutoencoder(12, 20, (), "sigmoid"), lambda: TorchMLPAutoencoder(12, 20, (), True),
                  (6, 1, 3, 4), "l1"),
    "denoising": (lambda: ae.ConvAutoencoder(1, (4, 6)), TorchConvAutoencoder, (3, 1, 8, 8), "denoise"),
}


def _twins(case, seed=0):
    make, make_twin, shape, penalty = CASES[case]
    mg.manual_seed(seed)
    model, twin = make(), make_twin()
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    return model, twin, shape, penalty


def _minigan_step(case, model, opt, x):
    penalty = CASES[case][3]
    if penalty in ("kl", "l1"):
        return ae.sparse_train_step(model, opt, x, penalty, beta=3.0 if penalty == "kl" else 0.1)
    if penalty == "denoise":
        return ae.denoising_train_step(model, opt, x)
    return ae.train_step(model, opt, x)


def _noise_and_input(case, shape, seed):
    """The batch, and what the model sees (the masked batch for the denoising one:
    the mask is drawn first from the same seed as masking_noise will draw it)."""
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    if CASES[case][3] != "denoise":
        return x, x
    mg.manual_seed(seed)
    keep = mg.rand(*shape).numpy() >= 0.25
    mg.manual_seed(seed)
    return x, np.where(keep, x, -1.0).astype(np.float32)


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_keys_match_torch_twin(case):
    model, twin, _, _ = _twins(case)
    assert list(model.state_dict()) == list(twin.state_dict())


@pytest.mark.parametrize("case", list(CASES))
def test_forward_and_gradients_match_torch_twin(case):
    model, twin, shape, penalty = _twins(case)
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    out = model(mg.tensor(x))
    x_hat, code = out if isinstance(out, tuple) else (out, None)
    t_hat, t_code = twin(torch.tensor(x))
    np.testing.assert_allclose(x_hat.numpy(), t_hat.detach().numpy(), rtol=1e-5, atol=1e-6)
    loss = ae.reconstruction_loss(x_hat, mg.tensor(x))
    if penalty == "kl":
        loss = loss + 3.0 * ae.kl_sparsity(code)
    elif penalty == "l1":
        loss = loss + 3.0 * ae.l1_sparsity(code)
    t_loss = torch_loss(twin, torch.tensor(x), torch.tensor(x), penalty)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)
    loss.backward()
    t_loss.backward()
    assert_params_match(model, twin, rtol=1e-4, grads=True)


@pytest.mark.parametrize("case", list(CASES))
def test_training_steps_match_torch_twin(case):
    model, twin, shape, penalty = _twins(case, seed=2)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    t_opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    for step in range(3):
        x, seen = _noise_and_input(case, shape, seed=10 + step)
        losses = _minigan_step(case, model, opt, mg.tensor(x))
        t_loss = torch_loss(twin, torch.tensor(seen), torch.tensor(x), penalty,
                            beta=3.0 if penalty == "kl" else 0.1)
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        np.testing.assert_allclose(losses["loss"], t_loss.item(), rtol=1e-5)
        assert_params_match(model, twin)


def test_masking_noise_masks_the_given_share_with_the_background():
    x = mg.zeros(200, 1, 8, 8)
    noisy = ae.masking_noise(x, 0.25).numpy()
    assert set(np.unique(noisy)) == {-1.0, 0.0}
    assert abs((noisy == -1).mean() - 0.25) < 0.01


def test_kl_sparsity_is_zero_at_the_target_and_positive_elsewhere():
    np.testing.assert_allclose(ae.kl_sparsity(mg.full((4, 7), 0.05)).item(), 0.0, atol=1e-6)
    assert ae.kl_sparsity(mg.full((4, 7), 0.3)).item() > 0


def test_principal_angles_against_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20, 4)), rng.standard_normal((20, 3))
    np.testing.assert_allclose(ae.principal_angles(a, b), np.sort(scipy_linalg.subspace_angles(a, b)), atol=1e-10)
    # a subspace with itself, under any change of basis: all angles zero
    np.testing.assert_allclose(ae.principal_angles(a, a @ rng.standard_normal((4, 4))), 0, atol=1e-6)


def test_linear_autoencoder_converges_to_pca_subspace():
    # Baldi & Hornik: the minimum of the squared error spans PCA's subspace
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    x = (rng.standard_normal((500, 10)) * np.array([3, 2.5, 2, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1]) @ basis.T)
    x = x.astype(np.float32)
    mg.manual_seed(0)
    model = ae.LinearAutoencoder(10, 3)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(1500):
        ae.train_step(model, opt, mg.tensor(x))
    pca = PCA(10, 3).fit(x)
    angles = ae.principal_angles(model.subspace(), pca.components.numpy().T)
    assert np.degrees(angles).max() < 1.0
