"""Colorful image colorization (Zhang, Isola & Efros, 2016, "Colorful Image Colorization").

The idea: given the lightness L of a photo, predict its colour (a, b) in CIE Lab. A
grey input is ambiguous (a shirt may be red or blue), so regression with L2,

    min  sum_hw || ab_hw - net(L)_hw ||^2,

predicts the mean of the plausible colours: modes averaged into a greyish brown. The
paper instead classifies: the ab plane is cut into a grid of cells of side 10, the Q
cells in the sRGB gamut become Q classes, and the network gives a distribution Z-hat
over them per pixel, trained with a multinomial cross-entropy against a soft encoding
Z of the true colour (the 5 nearest cell centres, Gaussian weights with sigma 5):

    L_cl = - sum_hw v(Z_hw) sum_q Z_hwq log Z-hat_hwq.

Class rebalancing v: natural images are mostly low-saturation, so each pixel is
weighted by its colour class's rarity, w ~ ((1 - lambda) p~ + lambda / Q)^-1 with p~
the empirical class prior smoothed by a Gaussian of sigma 5 in ab and lambda = 0.5,
normalized so that E_p~[w] = 1; v(Z_hw) = w at the pixel's nearest cell.

To read out one colour, the mean of Z-hat is desaturated (regression's problem again)
and its mode is patchy; the paper's annealed mean interpolates between them:

    H(Z) = sum_q f_T(Z)_q c_q,   f_T(z) = exp(log z / T) / sum exp(log z / T),  T = 0.38,

and f_T of softmax(logits) is softmax(logits / T).

The gamut, computed here rather than downloaded (``ab_bins``): a cell is kept when some
sRGB colour, at any lightness, falls in it. The sRGB cube's image in Lab is a solid whose
top and bottom in L lie on the images of the cube's faces, so the faces, sampled finely,
give every cell. This finds 262 cells, not the paper's 313 (docs/colorization.md: the
variants tried, none gives 313); Q is what is computed.

The network, Zhang et al.'s design at a CPU's scale (``width`` = 16 here, 64 in the
paper): blocks of 3x3 convs with ReLU, each block ending in batch norm; two stride-2
convs take (1, H, W) down to H/4, two dilated convs (dilation 2) widen the receptive
field there without losing resolution, a 4x4 transposed conv brings it to H/2, and a
1x1 conv gives Q logits per pixel at H/2 (the paper: at H/4). The loss is taken at H/2
against the ab averaged over 2x2 pixels; to colorize, the decoded ab is upsampled
bilinearly to H and joined to the full-resolution L. The L2 baseline is the same net
with 2 outputs (ab / 110).

Other deviations: the losses average over pixels where the paper sums (a scale the
learning rate absorbs); the paper trains with Adam, lr 3e-5, betas (0.9, 0.99) and
weight decay 1e-3 for 450k steps on ImageNet, the example with lr 1e-3 and no weight
decay for 1000 steps on 32x32 crops.
"""
from functools import lru_cache

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..data.lab import rgb_to_lab

GRID = 10           # the side of an ab cell
SIGMA = 5.0         # soft encoding's and the prior's smoothing Gaussian
NEIGHBOURS = 5      # cells in the soft encoding
LAMBDA = 0.5        # the uniform share in the rebalancing
TEMPERATURE = 0.38  # the annealed mean's T
AB_SCALE = 110.0    # the L2 net predicts ab / AB_SCALE


# ---------------------------------------------------------------- the ab classes


@lru_cache(maxsize=None)
def ab_bins(grid=GRID, samples=256):
    """The centres (Q, 2), float64, of the ab cells of side ``grid`` that hold an sRGB
    colour at some L, in order of (a, b). The colours looked at are the cube's faces
    at ``samples`` + 1 values per edge."""
    v = np.linspace(0.0, 1.0, samples + 1)
    u, w = (x.ravel() for x in np.meshgrid(v, v, indexing="ij"))
    faces = [np.stack([u, w][:axis] + [np.full_like(u, side)] + [u, w][axis:])
             for axis in range(3) for side in (0.0, 1.0)]
    lab = rgb_to_lab(np.concatenate(faces, axis=1), axis=0)
    cells = np.unique(np.round(lab[1:] / grid).astype(np.int64), axis=1)
    return (cells.T * grid).astype(np.float64)


def nearest_bins(ab, centres, k=1, chunk=4096):
    """Indices (P, k) of the ``k`` cell centres nearest each colour of ``ab`` (P, 2),
    and the squared distances (P, k) to them, nearest first. ``chunk`` colours at a
    time, so that the (chunk, Q) distances stay small."""
    index, d2 = np.empty((len(ab), k), dtype=np.int64), np.empty((len(ab), k))
    for i in range(0, len(ab), chunk):
        d = ((ab[i:i + chunk, None, :] - centres[None]) ** 2).sum(-1)
        near = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(centres) else np.argsort(d, axis=1)
        dk = np.take_along_axis(d, near, axis=1)
        order = np.argsort(dk, axis=1)
        index[i:i + chunk] = np.take_along_axis(near, order, axis=1)
        d2[i:i + chunk] = np.take_along_axis(dk, order, axis=1)
    return index, d2


def soft_encode(ab, centres, k=NEIGHBOURS, sigma=SIGMA):
    """Z (N, Q, H, W) float32 for ab (N, 2, H, W): on each pixel, the ``k`` nearest cells
    weighted by exp(-d^2 / (2 sigma^2)) and normalized to sum 1; 0 elsewhere."""
    n, _, h, w = ab.shape
    pixels = np.asarray(ab, dtype=np.float64).transpose(0, 2, 3, 1).reshape(-1, 2)
    index, d2 = nearest_bins(pixels, centres, k)
    weights = np.exp(-(d2 - d2[:, :1]) / (2 * sigma ** 2))  # shifted by the nearest: no underflow far away
    z = np.zeros((len(pixels), len(centres)))
    np.put_along_axis(z, index, weights / weights.sum(1, keepdims=True), axis=1)
    return z.reshape(n, h, w, -1).transpose(0, 3, 1, 2).astype(np.float32)


def nearest_bin(ab, centres, grid=GRID):
    """The index (P,) of the cell centre nearest each colour of ``ab`` (P, 2). A colour's
    nearest grid point is round(ab / grid) * grid, a kept centre for every sRGB colour;
    only the colours outside every kept cell are searched for."""
    cells = np.round(ab / grid).astype(np.int64)
    keys = np.round(centres / grid).astype(np.int64)
    lo, span = keys.min(0), keys.max(0) - keys.min(0) + 1
    table = np.full(span, -1, dtype=np.int64)
    table[tuple((keys - lo).T)] = np.arange(len(keys))
    at = cells - lo
    inside = ((at >= 0) & (at < span)).all(1)
    index = np.full(len(ab), -1, dtype=np.int64)
    index[inside] = table[tuple(at[inside].T)]
    missing = index < 0
    if missing.any():
        index[missing] = nearest_bins(ab[missing], centres)[0][:, 0]
    return index


def empirical_prior(ab, centres):
    """p (Q,): the share of the pixels of ab (N, 2, H, W) whose nearest cell is each cell."""
    index = nearest_bin(np.asarray(ab, dtype=np.float64).transpose(0, 2, 3, 1).reshape(-1, 2), centres)
    return np.bincount(index, minlength=len(centres)) / len(index)


def rebalancing_weights(prior, centres, lam=LAMBDA, sigma=SIGMA):
    """w (Q,) = ((1 - lam) p~ + lam / Q)^-1, normalized to sum_q p~_q w_q = 1, where p~ is
    ``prior`` smoothed by a Gaussian of ``sigma`` over the cells' distances in ab."""
    d2 = ((centres[:, None] - centres[None]) ** 2).sum(-1)
    smoothed = np.exp(-d2 / (2 * sigma ** 2)) @ prior
    smoothed /= smoothed.sum()
    w = 1.0 / ((1 - lam) * smoothed + lam / len(prior))
    return w / (smoothed @ w)


# ---------------------------------------------------------------- the network


def _block(cin, cout, convs, stride=1, dilation=1):
    """``convs`` 3x3 convs with ReLU (the last one strided), then batch norm: a block of the paper."""
    layers = []
    for i in range(convs):
        s = stride if i == convs - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, s, dilation, dilation), nn.ReLU()]
    return nn.Sequential(*layers, nn.BatchNorm2d(cout))


class ColorizationNet(nn.Module):
    """L (N, 1, H, W), as L / 50 - 1 in [-1, 1] -> (N, out_channels, H/2, W/2): Q logits per
    pixel, or 2 for the L2 baseline. H and W divisible by 4."""

    def __init__(self, out_channels, width=16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(1, w, 2, stride=2),                 # H/2
            _block(w, 2 * w, 2, stride=2),             # H/4
            _block(2 * w, 4 * w, 2),
            _block(4 * w, 4 * w, 2, dilation=2),       # the dilated middle: wider view, same resolution
            nn.Sequential(nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.ReLU(),  # H/2
                          nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.ReLU(), nn.BatchNorm2d(2 * w)))
        self.head = nn.Conv2d(2 * w, out_channels, 1)
        self.out_channels, self.width = out_channels, width

    def forward(self, lightness):
        if lightness.ndim != 4 or lightness.shape[1] != 1 or lightness.shape[2] % 4 or lightness.shape[3] % 4:
            raise ValueError(f"ColorizationNet: expected L of shape (N, 1, H, W) with H and W divisible by 4, "
                             f"got {tuple(lightness.shape)}")
        return self.head(self.features(lightness))


# ---------------------------------------------------------------- losses and decoding


def classification_loss(logits, z, pixel_weights=None):
    """-mean_hw v_hw sum_q Z_hwq log softmax(logits)_hwq (the paper sums over pixels)."""
    per_pixel = -(z * F.log_softmax(logits, dim=1)).sum(dim=1)
    if pixel_weights is not None:
        per_pixel = per_pixel * pixel_weights
    return per_pixel.mean()


def annealed_mean(logits, centres, temperature=TEMPERATURE):
    """ab (N, 2, H, W) = sum_q softmax(logits / T)_q c_q: T = 1 the mean, T -> 0 the mode."""
    p = F.softmax(logits / temperature, dim=1)
    c = Tensor(np.asarray(centres, dtype=logits.dtype)).to(logits.device)
    return (p.permute(0, 2, 3, 1) @ c).permute(0, 3, 1, 2)


def lightness_input(lab):
    """The net's input from Lab (N, 3, H, W): L / 50 - 1, float32."""
    return (lab[:, :1] / 50.0 - 1.0).astype(np.float32)


def train_step(net, optimizer, lightness, ab, centres=None, class_weights=None):
    """One step on a batch: ``lightness`` (N, 1, H, W) the net's input, ``ab`` (N, 2, H, W)
    the true colours. With ``centres`` the classification loss (soft-encoded targets,
    rebalanced by ``class_weights`` if given), without them L2 on ab / AB_SCALE.
    Returns the loss as a float."""
    out = net(lightness)
    target = F.avg_pool2d(ab, 2)  # the colours at the net's H/2
    if centres is None:
        loss = F.mse_loss(out, target / AB_SCALE)
    else:
        ab_half = target.numpy()
        z = Tensor(soft_encode(ab_half, centres)).to(out.device)
        v = None
        if class_weights is not None:
            nearest = z.numpy().argmax(axis=1)  # the pixel's nearest cell (the largest soft weight)
            v = Tensor(class_weights[nearest].astype(np.float32)).to(out.device)
        loss = classification_loss(out, z, v)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def colorize(net, lightness, centres=None, temperature=TEMPERATURE):
    """ab (N, 2, H, W) for ``lightness`` (N, 1, H, W): the annealed mean of the classes with
    ``centres``, the regression output without; upsampled bilinearly from H/2."""
    out = net(lightness)
    ab = out * AB_SCALE if centres is None else annealed_mean(out, centres, temperature)
    return F.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- the paper's measures


def ab_error_auc(predicted, target, thresholds=range(151)):
    """The raw accuracy AuC: the share of pixels whose predicted ab lies within t of the
    true ab (Euclidean), averaged over the thresholds t = 0, 1, ..., 150."""
    error = np.sqrt(((np.asarray(predicted, np.float64) - np.asarray(target, np.float64)) ** 2).sum(1)).ravel()
    t = np.asarray(list(thresholds), dtype=np.float64)
    return float(np.searchsorted(np.sort(error), t, side="right").mean() / error.size)


def mean_chroma(ab):
    """The mean of sqrt(a^2 + b^2) over the pixels of ab (N, 2, H, W): how colourful."""
    return float(np.sqrt((np.asarray(ab, np.float64) ** 2).sum(1)).mean())


def scores(ab, true_ab, kinds=None):
    """The raw AuC and the mean chroma of ``ab`` against ``true_ab``, with a grey guess's
    (ab = 0); with ``kinds`` (one label per crop) also for each kind, under "by_kind"."""
    found = {"crops": len(ab), "auc": ab_error_auc(ab, true_ab), "chroma": mean_chroma(ab),
             "target_chroma": mean_chroma(true_ab), "grey_auc": ab_error_auc(np.zeros_like(true_ab), true_ab)}
    if kinds is not None:
        kinds = np.asarray(kinds)
        found["by_kind"] = {k: scores(ab[kinds == k], true_ab[kinds == k]) for k in sorted(set(kinds.tolist()))}
    return found
