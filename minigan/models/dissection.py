"""GAN dissection (Bau, Zhu, Strobelt, Zhou, Tenenbaum, Freeman & Torralba, 2019,
"GAN Dissection: Visualizing and Understanding Generative Adversarial Networks").

The idea: a generator's hidden units are not an opaque code. Some unit u of a middle
layer switches on exactly where the generated image shows a tree, another where it
shows a roof. Dissection finds them; intervention proves they cause what they show.

Dissection (Section 3.1). Take the activation map r_u(z) of unit u at the chosen layer,
upsample it bilinearly to the image's size, and threshold it at t_u, the value that
the unit exceeds in the top 1% of all its (upsampled) positions over many samples:
P(r_u > t_u) = 0.01 (the paper's quantile, NetDissect's too). A segmentation network
labels every pixel of the generated images with a concept c. The unit's agreement with
the concept is the intersection over union over all samples z,

    IoU_{u,c} = |{r_u(z) > t_u} and {s_c(G(z))}| / |{r_u(z) > t_u} or {s_c(G(z))}|,

and the units of a concept are those with the largest IoU with it.

Intervention (Section 3.2). Split G at the layer, G(z) = f(r), r = h(z), and change r
on a set U of units: ablation forces them to 0 everywhere, insertion forces them to a
constant k inside a patch P,

    r' = r with r'_{U,P} = k   (ablation: P = everywhere, k = 0),

and the effect is measured by segmenting f(r'): the share of a concept's pixels that
ablation removes, against ablating as many units drawn at random; and the share of a
patch that insertion turns into the concept. The paper's finding on insertion: it
depends on where. Doors appear where the generator "thinks" a door can be (on a
building), and not in the sky or on a tree, because later layers veto them.

What is dissected here (the paper: ProGAN on LSUN at 256x256, ADE20K's segmenter, 336
concepts; its layer4 is 8x8):

  * G is the DCGAN generator of ``dcgan.py`` (imported, with D and the training step),
    trained on the rendered scenes of ``minigan.data.scenes`` at 32x32 in colour;
  * the layer is the output of one of G's ReLUs; ``layer=2`` (the default) is the 8x8
    one, the paper's choice of a middle layer;
  * the segmenter is a small fully convolutional network trained here on the renderer's
    (image, label map) pairs, the six concepts of ``SCENE_CONCEPTS``;
  * insertion's constant k (the paper forces the units to a constant) is, per unit, its
    mean upsampled activation over the pixels the segmenter labels as the concept, over
    the dissected samples.

Bilinear upsampling is torch's (align_corners=False). All the measuring runs G and the
segmenter in eval mode (batch norm's running statistics), without a graph.
"""
import contextlib

import numpy as np

import minigan as mg
from minigan import functional as F
from minigan import nn

from .dcgan import Discriminator, Generator, train_step as gan_step  # noqa: F401  (the GAN dissected)

QUANTILE = 0.99  # t_u: the unit is "on" in its top 1% of positions
IOU_DETECTOR = 0.04  # NetDissect's threshold for calling a unit a detector of its best concept

# ---------------------------------------------------------------- the segmenter


class Segmenter(nn.Module):
    """Images (N, channels, S, S) -> per-pixel logits (N, n_concepts, S, S).

    Three 3x3 conv + batch norm + ReLU layers with dilations 1, 2, 4 (a 15-pixel view
    at full resolution: a trunk and a roof have the same brown, what lies around
    them tells them apart), then a 1x1 conv to the concepts' logits."""

    def __init__(self, n_concepts, channels=3, width=32):
        super().__init__()
        layers, cin = [], channels
        for dilation in (1, 2, 4):
            layers += [nn.Conv2d(cin, width, 3, 1, dilation, dilation=dilation, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU()]
            cin = width
        layers.append(nn.Conv2d(width, n_concepts, 1))
        self.net = nn.Sequential(*layers)
        self.n_concepts, self.channels = n_concepts, channels

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Segmenter: expected images (N, {self.channels}, H, W), got {tuple(x.shape)}")
        return self.net(x)


def segmentation_loss(logits, labels):
    """Per-pixel cross-entropy, averaged over pixels: logits (N, C, H, W), labels (N, H, W)."""
    return F.cross_entropy(logits, labels)


def segmenter_step(segmenter, optimizer, images, labels):
    """One optimizer step on a batch of rendered (image, label map) pairs; returns the loss."""
    loss = segmentation_loss(segmenter(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"seg_loss": loss.item()}


def segment(segmenter, images, device="cpu", batch_size=500):
    """The segmenter's labels (N, H, W) int64 for NumPy images (N, C, H, W)."""
    with nn.evaluating(segmenter), mg.no_grad():
        out = [segmenter(mg.tensor(images[i:i + batch_size], device=device)).numpy().argmax(1)
               for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, *images.shape[2:]), np.int64)


# ---------------------------------------------------------------- the layer and its units


def layer_module(G, layer):
    """G's ``layer``-th ReLU (1-based): its output is the layer's units (at 32x32: 1 -> 4x4,
    2 -> 8x8, 3 -> 16x16)."""
    relus = [m for m in G.net if isinstance(m, nn.ReLU)]
    if not 1 <= layer <= len(relus):
        raise ValueError(f"dissection: layer must be in 1..{len(relus)} (G's ReLUs), got {layer!r}")
    return relus[layer - 1]


def generate(G, z, layer, device="cpu", batch_size=500):
    """Images G(z) (N, C, S, S) and the layer's activations r(z) (N, U, h, w), NumPy, G in eval mode."""
    seen = []
    handle = layer_module(G, layer).register_forward_hook(lambda module, args, out: seen.append(out.numpy()))
    try:
        with nn.evaluating(G), mg.no_grad():
            images = [G(mg.tensor(z[i:i + batch_size], device=device)).numpy() for i in range(0, len(z), batch_size)]
    finally:
        handle.remove()
    return np.concatenate(images), np.concatenate(seen)


def upsample(activations, size):
    """Bilinear upsampling of unit maps (N, U, h, w) to (N, U, size, size), as torch's
    ``interpolate(..., mode='bilinear', align_corners=False)``."""
    with mg.no_grad():
        return F.interpolate(mg.tensor(activations), size=(size, size), mode="bilinear",
                             align_corners=False).numpy()


def dissect(activations, labels, n_concepts, quantile=QUANTILE):
    """Every unit against every concept.

    ``activations`` (N, U, h, w) at the layer, ``labels`` (N, S, S) the concepts of the
    same N images. Returns a dict of NumPy arrays:
      threshold (U,)        t_u, the ``quantile`` of the unit's upsampled activations;
      iou (U, n_concepts)   IoU_{u,c} over all N images;
      mean_on (U, n_concepts)  the unit's mean upsampled activation on the concept's
                            pixels (insertion's constant k).
    One unit at a time: N x S x S values per unit, not per layer."""
    if activations.ndim != 4 or labels.ndim != 3 or len(activations) != len(labels):
        raise ValueError(f"dissect: expected activations (N, U, h, w) and labels (N, S, S) of the same N, got "
                         f"{activations.shape} and {labels.shape}")
    if not 0 < quantile < 1:
        raise ValueError(f"dissect: quantile must be in (0, 1), got {quantile!r}")
    units, size = activations.shape[1], labels.shape[-1]
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n_concepts)  # |s_c|, summed over images
    threshold, iou, mean_on = np.zeros(units), np.zeros((units, n_concepts)), np.zeros((units, n_concepts))
    for u in range(units):
        r = upsample(activations[:, u:u + 1], size).ravel()
        threshold[u] = np.quantile(r, quantile)
        on = r > threshold[u]
        intersection = np.bincount(flat[on], minlength=n_concepts)
        union = on.sum() + area - intersection
        iou[u] = intersection / np.maximum(union, 1)
        mean_on[u] = np.bincount(flat, weights=r, minlength=n_concepts) / np.maximum(area, 1)
    return {"threshold": threshold, "iou": iou, "mean_on": mean_on}


def top_units(iou, concept, k):
    """The ``k`` units with the largest IoU with ``concept``, best first."""
    return np.argsort(-iou[:, concept], kind="stable")[:k]


# ---------------------------------------------------------------- intervention


@contextlib.contextmanager
def intervene(G, layer, units, value=0.0, patch=None):
    """Within the block, G's ``layer`` outputs r' = r except r'_{u, P} = k_u for the
    ``units`` u: ``value`` is one k for all or one per unit; ``patch`` is (rows, cols),
    two slices of the layer's grid (None: everywhere). Ablation is the default (k = 0)."""
    units = np.asarray(units, dtype=np.int64).ravel()
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), units.shape)

    def hook(module, args, r):
        if len(units) and not 0 <= units.min() <= units.max() < r.shape[1]:
            raise ValueError(f"intervene: units must be in [0, {r.shape[1]}), got {units.tolist()}")
        mask, k = np.zeros((1,) + tuple(r.shape[1:]), np.float32), np.zeros((1, r.shape[1], 1, 1), np.float32)
        rows, cols = patch if patch is not None else (slice(None), slice(None))
        mask[0, units, rows, cols] = 1  # the units inside the patch
        k[0, units, 0, 0] = values
        mask = mg.tensor(mask, device=r.device)
        return r * (1 - mask) + mg.tensor(k, device=r.device) * mask

    handle = layer_module(G, layer).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def ablation_effect(G, segmenter, z, layer, units, concept, device="cpu"):
    """Segment G(z) with and without ``units`` (ablated): the concept's pixels before, after,
    and the share removed, 1 - after / before (NaN where there were none)."""
    before, _ = generate(G, z, layer, device)
    with intervene(G, layer, units):
        after, _ = generate(G, z, layer, device)
    n_before = int((segment(segmenter, before, device) == concept).sum())
    n_after = int((segment(segmenter, after, device) == concept).sum())
    removed = 1 - n_after / n_before if n_before else float("nan")  # nothing to remove: undefined
    return {"pixels_before": n_before, "pixels_after": n_after, "removed": removed}


def patch_pixels(patch, scale):
    """A patch (rows, cols) on the layer's grid as slices of the image (``scale`` pixels a cell)."""
    return tuple(slice(s.start * scale, s.stop * scale) for s in patch)


def insertion_effect(G, segmenter, z, layer, units, values, concept, patch, device="cpu"):
    """Insert ``units`` at ``values`` in ``patch`` (a (rows, cols) pair of slices of the
    layer's grid). Per sample: ``context``, the concept most of the patch showed before;
    ``before`` and ``after``, the share of the patch's pixels segmented as ``concept``."""
    images, r = generate(G, z, layer, device)
    with intervene(G, layer, units, values, patch):
        inserted, _ = generate(G, z, layer, device)
    rows, cols = patch_pixels(patch, images.shape[-1] // r.shape[-1])
    seg_before = segment(segmenter, images, device)[:, rows, cols].reshape(len(z), -1)
    seg_after = segment(segmenter, inserted, device)[:, rows, cols].reshape(len(z), -1)
    context = np.array([np.bincount(s, minlength=segmenter.n_concepts).argmax() for s in seg_before])
    return {"context": context, "before": (seg_before == concept).mean(1), "after": (seg_after == concept).mean(1)}
