"""Principal component analysis by eigendecomposition of the covariance (Pearson 1901,
Hotelling 1933), and eigenfaces (Turk & Pentland, 1991).

The idea: find the k orthonormal directions along which the data varies most.
With the data centred, X_c = X - mean (N rows, D pixels), the covariance is

    C = X_c^T X_c / (N - 1)          (D x D, symmetric, positive semi-definite)

and its eigendecomposition C = V diag(lambda) V^T, eigenvalues sorted in
decreasing order, gives the answer: the principal components are the first k
columns of V, and lambda_i is the variance of the data along component i (the
"explained variance"). Projecting onto them and back,

    z     = V_k^T (x - mean)          (the code: k numbers)
    x_hat = mean + V_k z              (the reconstruction)

gives the rank-k reconstruction with the smallest mean squared error
(Eckart-Young): the error left is the sum of the eigenvalues not kept.
On faces the components, shown as images, are the *eigenfaces*; adding them
one at a time reconstructs a face more and more closely.

The SVD of X_c gives the same thing (X_c = U S V^T, lambda = S^2 / (N - 1));
the lecture derives PCA from the covariance, so that is the computation here.
Each component is defined only up to sign; we fix it so that the entry with
the largest magnitude is positive, so that fits are reproducible.

Deviation: the covariance and its eigendecomposition are computed in float64
and stored in float32 (the eigenvectors of nearby eigenvalues are sensitive to
rounding; float64 makes them agree with numpy.linalg.svd and scikit-learn).
There is nothing to learn by gradient descent: ``fit`` is the training step.
"""
import numpy as np

from .. import backend
from .. import nn
from ..autograd import Tensor


class PCA(nn.Module):
    """PCA of ``data_dim``-dimensional data keeping ``n_components`` components.

    Buffers (in ``state_dict``): ``mean`` (D,), ``components`` (k, D), one
    component per row as in scikit-learn, ``explained_variance`` (k,) and
    ``total_variance`` (the trace of C, for explained-variance ratios).
    """

    def __init__(self, data_dim, n_components):
        super().__init__()
        if not 1 <= n_components <= data_dim:
            raise ValueError(f"PCA: n_components must be in [1, data_dim={data_dim}], got {n_components}")
        self.data_dim, self.n_components = data_dim, n_components
        self.register_buffer("mean", Tensor(np.zeros(data_dim, np.float32)))
        self.register_buffer("components", Tensor(np.zeros((n_components, data_dim), np.float32)))
        self.register_buffer("explained_variance", Tensor(np.zeros(n_components, np.float32)))
        self.register_buffer("total_variance", Tensor(np.zeros((), np.float32)))

    def fit(self, x):
        """Set the buffers from data ``x`` (N, ...) with N >= 2: the mean and the top
        eigenvectors and eigenvalues of the covariance."""
        data = x.array if isinstance(x, Tensor) else x
        xp = backend.get_array_module(data, self.mean.array, op="PCA.fit")
        flat = data.reshape(len(data), -1).astype(np.float64)
        if flat.shape[1] != self.data_dim or len(flat) < 2:
            raise ValueError(f"PCA.fit: expected at least 2 samples of {self.data_dim} values, "
                             f"got shape {tuple(data.shape)}")
        mean = flat.mean(axis=0)
        centred = flat - mean
        covariance = centred.T @ centred / (len(flat) - 1)
        eigenvalues, eigenvectors = xp.linalg.eigh(covariance)  # ascending order
        order = xp.argsort(eigenvalues)[::-1][:self.n_components]
        eigenvalues, components = eigenvalues[order], eigenvectors[:, order].T
        # the sign convention: the largest-magnitude entry of each component is positive
        biggest = components[xp.arange(len(components)), xp.abs(components).argmax(axis=1)]
        components = components * xp.sign(biggest)[:, None]
        self.mean = Tensor(mean.astype(np.float32))
        self.components = Tensor(xp.ascontiguousarray(components, dtype=np.float32))
        # eigh can return tiny negative eigenvalues for a rank-deficient C
        self.explained_variance = Tensor(xp.maximum(eigenvalues, 0).astype(np.float32))
        self.total_variance = Tensor(xp.asarray(xp.trace(covariance), dtype=np.float32))
        return self

    def explained_variance_ratio(self):
        """lambda_i / trace(C) for each kept component, as a NumPy array."""
        return self.explained_variance.numpy() / float(self.total_variance.numpy())

    def encode(self, x, k=None):
        """z = V_k^T (x - mean): the code of each sample, (N, k)."""
        return (x.flatten(1) - self.mean) @ self.components[:k or self.n_components].transpose(0, 1)

    def decode(self, z):
        """x_hat = mean + V_k z, flat (N, D); k is the width of ``z``."""
        return z @ self.components[:z.shape[1]] + self.mean

    def forward(self, x, k=None):
        """The reconstruction of ``x`` from its first ``k`` components, in the shape of ``x``."""
        return self.decode(self.encode(x, k)).reshape(x.shape)


def reconstruction_error(pca, x, k=None):
    """Mean squared error per value of the rank-k reconstruction (a float)."""
    return float(((pca(x, k) - x) ** 2).mean().item())
