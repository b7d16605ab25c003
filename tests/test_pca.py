"""PCA against a torch twin written in plain torch, and against numpy.linalg.svd and scikit-learn.

The twin loads minigan's buffers; reconstructions and their gradients with
respect to the input agree, and so does the fit (the eigendecomposition, PCA's
only "training step"). The eigendecomposition agrees with the SVD of the
centred data and with sklearn.decomposition.PCA: explained variances, and
components up to sign.
"""
import numpy as np
import pytest
import torch
import torch.nn as tnn
from sklearn.decomposition import PCA as SklearnPCA

import minigan as mg
from minigan.data import load_lfw_subset
from minigan.models import pca


class TorchPCA(tnn.Module):
    def __init__(self, data_dim, k):
        super().__init__()
        self.register_buffer("mean", torch.zeros(data_dim))
        self.register_buffer("components", torch.zeros(k, data_dim))
        self.register_buffer("explained_variance", torch.zeros(k))
        self.register_buffer("total_variance", torch.zeros(()))

    def fit(self, x):
        flat = x.reshape(len(x), -1).double()
        centred = flat - flat.mean(0)
        values, vectors = torch.linalg.eigh(centred.T @ centred / (len(x) - 1))
        values, vectors = values.flip(0)[:len(self.components)], vectors.flip(1)[:, :len(self.components)].T
        signs = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
        self.mean.copy_(flat.mean(0))
        self.components.copy_(vectors * signs)
        self.explained_variance.copy_(values.clamp(min=0))
        self.total_variance.copy_(torch.trace(centred.T @ centred) / (len(x) - 1))

    def forward(self, x, k):
        z = (x.flatten(1) - self.mean) @ self.components[:k].T
        return (z @ self.components[:k] + self.mean).reshape(x.shape)


def _spread_data(n=60, d=12, seed=0):
    """Data with well-separated variances, so every eigenvector is well defined."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = 2.0 ** -np.arange(d / 2, step=0.5)
    return (rng.standard_normal((n, d)) * scales @ basis.T + rng.standard_normal(d)).astype(np.float32)


def _faces():
    faces, _ = load_lfw_subset()
    return faces


def _assert_same_up_to_sign(a, b, atol):
    signs = np.sign((a * b).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(a, b * signs, atol=atol)


def test_state_dict_keys_match_torch_twin():
    assert list(pca.PCA(12, 5).state_dict()) == list(TorchPCA(12, 5).state_dict())


def test_fit_matches_torch_twin_fit():
    x = _spread_data()
    model = pca.PCA(12, 6).fit(mg.tensor(x))
    twin = TorchPCA(12, 6)
    twin.fit(torch.tensor(x))
    for name, buffer in twin.state_dict().items():
        np.testing.assert_allclose(getattr(model, name).numpy(), buffer.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_reconstruction_and_input_gradient_match_torch_twin(k):
    x = _spread_data()
    model = pca.PCA(12, 6).fit(mg.tensor(x))
    twin = TorchPCA(12, 6)
    twin.load_state_dict({name: torch.tensor(v.numpy()) for name, v in model.state_dict().items()})
    probe = np.random.default_rng(1).standard_normal((5, 12)).astype(np.float32)
    xm, xt = mg.tensor(probe, requires_grad=True), torch.tensor(probe, requires_grad=True)
    ym, yt = model(xm, k), twin(xt, k)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    ((ym - xm) ** 2).sum().backward()
    ((yt - xt) ** 2).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_eigendecomposition_matches_svd_of_centred_faces():
    faces = _faces()
    flat = faces.reshape(len(faces), -1).astype(np.float64)
    _, s, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
    model = pca.PCA(flat.shape[1], 20).fit(faces)
    np.testing.assert_allclose(model.explained_variance.numpy(), s[:20] ** 2 / (len(flat) - 1), rtol=1e-5)
    _assert_same_up_to_sign(model.components.numpy(), vt[:20], atol=1e-5)


def test_eigendecomposition_matches_sklearn_pca():
    faces = _faces()
    flat = faces.reshape(len(faces), -1)
    reference = SklearnPCA(n_components=30, svd_solver="full").fit(flat.astype(np.float64))
    model = pca.PCA(flat.shape[1], 30).fit(faces)
    np.testing.assert_allclose(model.explained_variance.numpy(), reference.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(model.explained_variance_ratio(), reference.explained_variance_ratio_,
                               rtol=1e-5)
    np.testing.assert_allclose(model.mean.numpy(), reference.mean_, atol=1e-6)
    _assert_same_up_to_sign(model.components.numpy(), reference.components_, atol=1e-5)
    # codes agree up to the same signs
    codes = model.encode(mg.tensor(faces)).numpy()
    signs = np.sign((model.components.numpy() * reference.components_).sum(1))
    np.testing.assert_allclose(codes, reference.transform(flat) * signs, atol=1e-4)


def test_reconstruction_error_is_the_sum_of_dropped_eigenvalues():
    # Eckart-Young: the squared error left after k components is sum_{i>k} lambda_i
    faces = _faces()
    n, d = len(faces), faces[0].size
    model = pca.PCA(d, n - 1).fit(faces)
    lam = model.explained_variance.numpy().astype(np.float64)
    for k in (1, 10, 50):
        error = pca.reconstruction_error(model, mg.tensor(faces), k) * d * n / (n - 1)
        np.testing.assert_allclose(error, lam[k:].sum(), rtol=1e-3)


def test_components_are_orthonormal_and_sorted():
    model = pca.PCA(625, 40).fit(_faces())
    v = model.components.numpy().astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(40), atol=1e-5)
    assert np.all(np.diff(model.explained_variance.numpy()) <= 0)


def test_too_many_components_is_a_clear_error():
    with pytest.raises(ValueError, match="PCA: n_components"):
        pca.PCA(4, 5)
