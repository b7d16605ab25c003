"""Autoencoders: linear, bottleneck, sparse and denoising.

An autoencoder is an encoder f and a decoder g trained to reproduce their
input through a code h = f(x):

    min_{f, g}  E_x || x - g(f(x)) ||^2   (+ a penalty on h).

Something must stop it from learning the identity; each kind here uses a
different constraint.

* **Linear** (Baldi & Hornik 1989): f(x) = W_e x + b_e, g(h) = W_d h + b_d with
  k < D code units. The squared error has no local minima other than the
  global one, where the decoder's columns span the same k-dimensional subspace
  as PCA's first k components (Eckart-Young again). The weights themselves
  need not be orthonormal nor the components: only the *subspace* is PCA's, so
  it is compared by the principal angles between the two subspaces (all zero
  when they coincide).
* **Bottleneck**: a narrow nonlinear code (an MLP encoder and decoder, ReLU
  hidden units) learns a curved manifold, where PCA can only learn a flat one.
* **Sparse** (Ng, "Sparse autoencoder", CS294A lecture notes, 2011): a wide
  code of sigmoid units, most of which must stay near 0. The KL penalty
  compares each unit's mean activation rho_hat_j over the batch with a small
  target rho,

      beta * sum_j KL(rho || rho_hat_j) = beta * sum_j [rho log(rho / rho_hat_j)
                                              + (1 - rho) log((1 - rho) / (1 - rho_hat_j))],

  with the notes' rho = 0.05, beta = 3. The L1 alternative is lambda * E|h|.
* **Denoising** (Vincent et al. 2008, "Extracting and composing robust features
  with denoising autoencoders"): corrupt x into x~ and train g(f(x~)) to give
  back the *clean* x, so the code must capture the structure of the data and
  not copy pixels. The paper's corruption is masking noise: a fraction nu of
  the pixels, chosen at random, set to the background (nu = 0.25 here, one of
  the paper's levels). Here the networks are convolutional (strided 4x4 convs
  down, transposed convs up, as in DCGAN).

Deviations: squared error everywhere (the denoising paper used cross-entropy for
binary-like inputs; the squared error is the lecture's objective and matches
PCA's), and Adam (lr 1e-3) instead of plain SGD (faster on every variant, same
minima). The sparse notes' hidden layer has weight decay; here the penalty is
the KL term alone.
"""
import numpy as np

import minigan as mg
from minigan import nn


class LinearAutoencoder(nn.Module):
    """x -> W_e x + b_e (k code units) -> W_d h + b_d, with no nonlinearity."""

    def __init__(self, data_dim, code_dim):
        super().__init__()
        self.encoder = nn.Linear(data_dim, code_dim)
        self.decoder = nn.Linear(code_dim, data_dim)

    def forward(self, x):
        return self.decoder(self.encoder(x.flatten(1))).reshape(x.shape)

    def subspace(self):
        """The decoder's columns (D, k) as a NumPy array: they span what the autoencoder reconstructs."""
        return self.decoder.weight.numpy()


class MLPAutoencoder(nn.Module):
    """An MLP encoder to a code of ``code_dim`` units and a mirrored MLP decoder.

    ``code`` is the code units' activation: "linear" for a bottleneck, "sigmoid"
    for a sparse autoencoder (activations in (0, 1), as the KL penalty needs).
    """

    def __init__(self, data_dim, code_dim, hidden=(128,), code="linear"):
        super().__init__()
        if code not in ("linear", "sigmoid"):
            raise ValueError(f"MLPAutoencoder: code must be 'linear' or 'sigmoid', got {code!r}")
        self.encoder = nn.mlp((data_dim, *hidden, code_dim), nn.ReLU)
        if code == "sigmoid":
            self.encoder.append(nn.Sigmoid())
        self.decoder = nn.mlp((code_dim, *reversed(hidden), data_dim), nn.ReLU)

    def forward(self, x):
        """The reconstruction of ``x`` and its code: (x_hat, h)."""
        h = self.encoder(x.flatten(1))
        return self.decoder(h).reshape(x.shape), h


class ConvAutoencoder(nn.Module):
    """Convolutional encoder (4x4 convs, stride 2, halving the size) and decoder
    (4x4 transposed convs, stride 2, doubling it); tanh output for images in [-1, 1]."""

    def __init__(self, channels=1, widths=(32, 64)):
        super().__init__()
        layers, width = [], channels
        for w in widths:
            layers += [nn.Conv2d(width, w, 4, 2, 1), nn.ReLU()]
            width = w
        self.encoder = nn.Sequential(*layers)
        layers = []
        for w in list(reversed(widths))[1:] + [channels]:
            layers += [nn.ConvTranspose2d(width, w, 4, 2, 1), nn.ReLU()]
            width = w
        layers[-1] = nn.Tanh()
        self.decoder = nn.Sequential(*layers)

    def forward(self, x):
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------- losses and penalties


def reconstruction_loss(x_hat, x):
    """The squared error per image, averaged over the batch: E ||x - x_hat||^2."""
    return ((x_hat - x) ** 2).flatten(1).sum(1).mean()


def kl_sparsity(code, rho=0.05):
    """sum_j KL(rho || rho_hat_j), rho_hat_j the mean activation of code unit j over the batch."""
    rho_hat = code.mean(0).clamp(1e-6, 1 - 1e-6)
    return (rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()).sum()


def l1_sparsity(code):
    """E_x sum_j |h_j|: the L1 penalty on the code."""
    return code.abs().sum(1).mean()


def masking_noise(x, fraction=0.25, background=-1.0):
    """Vincent et al.'s corruption: each pixel independently, with probability
    ``fraction``, is set to the background value (-1, black, in [-1, 1])."""
    keep = mg.rand(*x.shape, device=x.device) >= fraction
    return mg.where(keep, x, mg.full_like(x, background))


def gaussian_noise(x, std=0.5):
    """Additive isotropic Gaussian corruption, x + std * eps (clipped to [-1, 1])."""
    return (x + std * mg.randn(*x.shape, device=x.device)).clamp(-1.0, 1.0)


# ---------------------------------------------------------------- training steps


def _step(optimizer, loss, parts):
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}


def train_step(model, optimizer, x):
    """Linear or bottleneck autoencoder: one step on E ||x - g(f(x))||^2."""
    x_hat = model(x)
    x_hat = x_hat[0] if isinstance(x_hat, tuple) else x_hat
    return _step(optimizer, reconstruction_loss(x_hat, x), {})


def sparse_train_step(model, optimizer, x, penalty="kl", beta=3.0, rho=0.05):
    """Sparse autoencoder: reconstruction + beta * KL(rho || rho_hat), or + beta * E|h| with penalty='l1'."""
    x_hat, code = model(x)
    if penalty == "kl":
        sparsity = kl_sparsity(code, rho)
    elif penalty == "l1":
        sparsity = l1_sparsity(code)
    else:
        raise ValueError(f"sparse_train_step: penalty must be 'kl' or 'l1', got {penalty!r}")
    reconstruction = reconstruction_loss(x_hat, x)
    return _step(optimizer, reconstruction + beta * sparsity,
                 {"reconstruction": reconstruction, "sparsity": sparsity})


def denoising_train_step(model, optimizer, x, corrupt=masking_noise):
    """Denoising autoencoder: reconstruct the clean x from corrupt(x)."""
    return _step(optimizer, reconstruction_loss(model(corrupt(x)), x), {})


# ---------------------------------------------------------------- comparing with PCA


def principal_angles(a, b):
    """The principal angles (radians, ascending) between the column spans of ``a``
    (D, k) and ``b`` (D, l) (Björck & Golub 1973): orthonormalize both by QR, then
    the cosines are the singular values of Q_a^T Q_b."""
    qa, _ = np.linalg.qr(np.asarray(a, dtype=np.float64))
    qb, _ = np.linalg.qr(np.asarray(b, dtype=np.float64))
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.sort(np.arccos(np.clip(cosines, -1.0, 1.0)))
