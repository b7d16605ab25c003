"""Procedurally rendered outdoor scenes with known concept masks, for GAN dissection.

Bau et al. dissect generators trained on LSUN scenes, and label the concepts in the
generated images with a segmentation network trained on ADE20K. Here the scenes are
drawn by a small renderer, so every pixel's concept is known exactly: a segmenter
trained on (image, label map) pairs learns it from truth, not from another model.

A scene, back to front (the painter's algorithm, so each pixel's label is the concept
drawn last over it, which is the one visible):

  sky    a vertical gradient from a deep blue at the top to a paler blue at the horizon;
  cloud  0-2 white-grey ellipses in the sky;
  grass  the ground below the horizon (at 40-65% of the height), a green gradient;
  house  0-2 houses standing on the ground: a wall rectangle (beige, brick, grey or
         yellow) with a dark window, then a roof triangle (dark red, brown or slate);
  tree   0-3 trees standing on the ground: a brown trunk under a dark-green crown.

Objects standing on the ground are drawn by depth: one whose base is higher in the
picture (further away) first. Trees and houses stand on the grass; nothing grows in
the sky, which is what the insertion experiment of the dissection asks the generator.

``render_scenes(n, seed)`` returns images (n, 3, S, S) float32 in [-1, 1] and label
maps (n, S, S) int64 with values indexing ``SCENE_CONCEPTS``.
"""
import numpy as np

SCENE_CONCEPTS = ("sky", "cloud", "grass", "tree", "wall", "roof")
SKY, CLOUD, GRASS, TREE, WALL, ROOF = range(len(SCENE_CONCEPTS))

_WALLS = np.array([[0.85, 0.75, 0.55], [0.70, 0.30, 0.20], [0.60, 0.60, 0.62], [0.90, 0.80, 0.30]])
_ROOFS = np.array([[0.55, 0.10, 0.10], [0.40, 0.25, 0.12], [0.25, 0.28, 0.35]])


def _jitter(rng, colour, amount=0.06):
    return np.clip(colour + rng.uniform(-amount, amount, 3), 0, 1)


def _paint(image, labels, mask, colour, concept):
    image[:, mask] = colour[:, None]
    labels[mask] = concept


def _house(rng, image, labels, rows, cols, base, size):
    s = size / 32  # the sizes below are for 32x32 scenes
    w, h = rng.uniform(6, 11) * s, rng.uniform(4, 7) * s
    x0 = rng.uniform(-w / 3, size - 2 * w / 3)
    wall = (cols >= x0) & (cols < x0 + w) & (rows >= base - h) & (rows < base)
    _paint(image, labels, wall, _jitter(rng, _WALLS[rng.integers(len(_WALLS))]), WALL)
    wx, wy = x0 + w * rng.uniform(0.2, 0.6), base - h * rng.uniform(0.55, 0.8)
    window = wall & (cols >= wx) & (cols < wx + 2 * s) & (rows >= wy) & (rows < wy + 2 * s)
    image[:, window] = _jitter(rng, np.array([0.15, 0.2, 0.3]), 0.04)[:, None]  # part of the wall
    top, overhang, height = base - h, 1.0 * s, rng.uniform(3, 6) * s
    half = (w / 2 + overhang) * (1 - (top - rows) / height)  # the triangle's half-width at each row
    roof = (rows < top) & (rows >= top - height) & (np.abs(cols + 0.5 - (x0 + w / 2)) < half)
    _paint(image, labels, roof, _jitter(rng, _ROOFS[rng.integers(len(_ROOFS))]), ROOF)


def _tree(rng, image, labels, rows, cols, base, size):
    s = size / 32
    x, trunk_h, r = rng.uniform(0, size), rng.uniform(2, 5) * s, rng.uniform(2.5, 5) * s
    trunk = (np.abs(cols + 0.5 - x) < rng.uniform(0.5, 1.2) * s) & (rows >= base - trunk_h) & (rows < base)
    cy = base - trunk_h - r * 0.7
    crown = ((cols + 0.5 - x) / r) ** 2 + ((rows + 0.5 - cy) / (r * rng.uniform(1.0, 1.4))) ** 2 < 1
    _paint(image, labels, trunk, _jitter(rng, np.array([0.40, 0.26, 0.13]), 0.05), TREE)
    _paint(image, labels, crown, _jitter(rng, np.array([0.10, 0.38, 0.12]), 0.07), TREE)


def render_scene(rng, size=32):
    """One scene: (image (3, S, S) in [0, 1], labels (S, S) int64)."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    image, labels = np.empty((3, size, size)), np.empty((size, size), np.int64)
    horizon = rng.uniform(0.4, 0.65) * size
    t = (rows / horizon).clip(0, 1)  # 0 at the top, 1 at the horizon
    top, bottom = _jitter(rng, np.array([0.15, 0.35, 0.80])), _jitter(rng, np.array([0.60, 0.80, 0.95]))
    _paint(image, labels, rows >= 0, top, SKY)
    image[:] = top[:, None, None] * (1 - t) + bottom[:, None, None] * t
    for _ in range(rng.integers(0, 3)):
        cx, cy = rng.uniform(0, size), rng.uniform(0.1, 0.7) * horizon
        rx, ry = rng.uniform(3, 7) * size / 32, rng.uniform(1.5, 3) * size / 32
        cloud = (((cols + 0.5 - cx) / rx) ** 2 + ((rows + 0.5 - cy) / ry) ** 2 < 1) & (rows < horizon)
        _paint(image, labels, cloud, _jitter(rng, np.array([0.93, 0.93, 0.95]), 0.04), CLOUD)
    ground = rows >= horizon
    near, far = _jitter(rng, np.array([0.25, 0.55, 0.15])), _jitter(rng, np.array([0.50, 0.75, 0.30]))
    g = ((rows - horizon) / (size - horizon)).clip(0, 1)
    _paint(image, labels, ground, far, GRASS)
    image[:, ground] = (far[:, None, None] * (1 - g) + near[:, None, None] * g)[:, ground]
    things = [_house] * rng.integers(0, 3) + [_tree] * rng.integers(0, 4)
    bases = rng.uniform(horizon + 1, size + 2, len(things))  # a base below the frame: cut off at the bottom
    for i in np.argsort(bases):  # the furthest first
        things[i](rng, image, labels, rows, cols, bases[i], size)
    return image, labels


def render_scenes(n, seed=0, size=32):
    """``n`` scenes drawn from ``seed``: images (n, 3, S, S) float32 in [-1, 1] and label
    maps (n, S, S) int64 (indices into ``SCENE_CONCEPTS``)."""
    if int(n) != n or n < 0:
        raise ValueError(f"render_scenes: n must be an integer >= 0, got {n!r}")
    if int(size) != size or size < 8:
        raise ValueError(f"render_scenes: size must be an integer >= 8, got {size!r}")
    rng = np.random.default_rng(seed)
    images, labels = np.empty((n, 3, size, size), np.float32), np.empty((n, size, size), np.int64)
    for i in range(int(n)):
        image, labels[i] = render_scene(rng, int(size))
        images[i] = image * 2 - 1
    return images, labels
