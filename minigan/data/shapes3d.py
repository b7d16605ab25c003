"""Chairs, tables and lamps built from boxes and cylinders, rendered by a small NumPy rasterizer:
the offline stand-in for the rendered CAD chairs of Dosovitskiy, Springenberg & Brox (2015).

Each object instance is a triangle mesh (every face with its own colour), centred on the origin
with y up, inside the unit sphere. A view is an orthographic camera at ``azimuth`` degrees around
the vertical axis and ``elevation`` degrees above the horizon, looking at the origin. Rendering:

1. project every vertex: camera coordinates x (right), y (up), z (towards the camera);
2. flat shading: each triangle one colour, albedo * (ambient + diffuse * max(0, n . l)) with n
   its outward normal and l a light fixed in the camera's frame (above, left, in front);
3. z-buffer: every pixel centre takes the colour of the nearest triangle that covers it
   (barycentric coordinates >= 0; depth interpolated linearly, exact for an orthographic camera);
   the silhouette mask is the set of pixels some triangle covers.

The paper's "transformation parameters" are the camera's too: ``zoom`` scales the image about
its centre, ``shift`` moves the object (a fraction of the image's width), ``brightness``
multiplies every colour; ``(1, (0, 0), 1)`` is the plain view.

Images are float32 (3, S, S) in [-1, 1] on a black background (-1): the paper's segmented-out
image x * s. Masks are float32 (1, S, S) in {0, 1}. Rendering is deterministic (no random numbers).

The data set (``load_shapes3d``): every instance at every azimuth of a 15-degree grid and at
three elevations; every fourth azimuth (15, 75, 135, ... degrees) is held out, so each held-out
view lies 15 degrees from the nearest training azimuth, a view the training set never showed.
"""
from functools import lru_cache
from typing import NamedTuple

import numpy as np

AZIMUTHS = tuple(range(0, 360, 15))      # degrees: 24 azimuths
ELEVATIONS = (10, 20, 30)                # degrees above the horizon
HELD_OUT_AZIMUTHS = AZIMUTHS[1::4]       # every fourth azimuth, never trained on
TRAIN_AZIMUTHS = tuple(a for a in AZIMUTHS if a not in HELD_OUT_AZIMUTHS)
LIGHT = np.array([-0.4, 0.6, 0.7]) / np.linalg.norm([-0.4, 0.6, 0.7])   # in the camera's frame
AMBIENT, DIFFUSE = 0.35, 0.65
EXTENT = 0.96  # the image spans [-EXTENT, EXTENT] of the camera's x and y at zoom 1 (objects: radius 0.95)


class Mesh(NamedTuple):
    """Triangles (T, 3, 3) with their outward unit normals (T, 3) and albedos (T, 3) in (0, 1]."""
    triangles: np.ndarray
    normals: np.ndarray
    colours: np.ndarray


def merge(*meshes):
    return Mesh(*(np.concatenate(parts) for parts in zip(*meshes)))


def normalized(mesh, radius=0.95):
    """``mesh`` moved so that its bounding box is centred on the origin and scaled so that its
    farthest vertex is ``radius`` away: every object fills the frame at every view."""
    points = mesh.triangles.reshape(-1, 3)
    centred = mesh.triangles - (points.min(0) + points.max(0)) / 2
    return mesh._replace(triangles=centred * radius / np.linalg.norm(centred.reshape(-1, 3), axis=1).max())


def _polygons(polygons, colour):
    """Convex planar polygons (each a list of vertices, counter-clockwise seen from outside)
    -> a Mesh of their fan triangulations."""
    triangles, normals = [], []
    for poly in polygons:
        poly = np.asarray(poly, dtype=np.float64)
        n = np.cross(poly[1] - poly[0], poly[2] - poly[0])
        n = n / np.linalg.norm(n)
        for i in range(1, len(poly) - 1):
            triangles.append(poly[[0, i, i + 1]])
            normals.append(n)
    return Mesh(np.array(triangles), np.array(normals), np.tile(np.asarray(colour, np.float64), (len(triangles), 1)))


def box(center, size, colour):
    """An axis-aligned box: ``center`` (x, y, z), ``size`` (width, height, depth); 12 triangles."""
    c, h = np.asarray(center, np.float64), np.asarray(size, np.float64) / 2
    corner = lambda sx, sy, sz: c + h * (sx, sy, sz)  # noqa: E731
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            u, v = (axis + 1) % 3, (axis + 2) % 3  # (u, v, axis) is right-handed
            quad = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                s = np.zeros(3)
                s[axis], s[u], s[v] = sign, du * sign, dv
                quad.append(corner(*s))
            faces.append(quad)
    return _polygons(faces, colour)


def cylinder(base, radius, height, colour, segments=16, top_radius=None):
    """A vertical cylinder (a frustum with ``top_radius``) standing on ``base`` (x, y, z):
    ``segments`` side quads and two polygonal caps."""
    top_radius = radius if top_radius is None else top_radius
    angles = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack([np.cos(angles), np.zeros(segments), -np.sin(angles)], 1)  # counter-clockwise from above
    b = np.asarray(base, np.float64)
    bottom, top = b + radius * ring, b + top_radius * ring + (0, height, 0)
    sides = [[bottom[i], bottom[(i + 1) % segments], top[(i + 1) % segments], top[i]] for i in range(segments)]
    return merge(_polygons(sides, colour), _polygons([top, bottom[::-1]], colour))


# ---------------------------------------------------------------- the objects


def chair(seat_width, seat_depth, seat_height, back_height, leg, round_legs, arms, colours):
    """A seat on four legs with a back; ``arms``: two armrests on posts. Floor at y = -0.8."""
    seat_colour, leg_colour, back_colour = colours
    floor, t = -0.8, 0.06  # the seat's thickness
    y = floor + seat_height
    parts = [box((0, y + t / 2, 0), (seat_width, t, seat_depth), seat_colour)]
    if back_height:
        parts.append(box((0, y + t + back_height / 2, -seat_depth / 2 + 0.04), (seat_width, back_height, 0.08),
                         back_colour))
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (seat_width / 2 - leg), sz * (seat_depth / 2 - leg)
            parts.append(cylinder((x, floor, z), leg, seat_height, leg_colour, 8) if round_legs else
                         box((x, floor + seat_height / 2, z), (2 * leg, seat_height, 2 * leg), leg_colour))
        if arms:
            x = sx * (seat_width / 2 - 0.03)
            parts += [box((x, y + t + 0.25, 0), (0.06, 0.05, seat_depth), back_colour),
                      box((x, y + t + 0.12, seat_depth / 2 - 0.05), (0.05, 0.25, 0.05), back_colour)]
    return merge(*parts)


def table(top_width, top_depth, height, leg, round_top, pedestal, colours):
    """A top on four legs or one pedestal with a foot. Floor at y = -0.8."""
    top_colour, leg_colour = colours
    floor, t = -0.8, 0.07
    y = floor + height
    parts = [cylinder((0, y - t, 0), top_width / 2, t, top_colour, 24) if round_top else
             box((0, y - t / 2, 0), (top_width, t, top_depth), top_colour)]
    if pedestal:
        parts += [cylinder((0, floor, 0), leg, height - t, leg_colour, 12),
                  cylinder((0, floor, 0), 0.3, 0.05, leg_colour, 16)]
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (top_width / 2 - 2 * leg), sz * (top_depth / 2 - 2 * leg)
                parts.append(box((x, floor + (height - t) / 2, z), (2 * leg, height - t, 2 * leg), leg_colour))
    return merge(*parts)


def lamp(base_radius, pole_height, shade_bottom, shade_top, shade_height, arm, colours):
    """A round base, a pole, and a shade (a frustum); ``arm``: the shade hangs from a horizontal
    arm instead of sitting on the pole. Floor at y = -0.8."""
    base_colour, shade_colour = colours
    floor = -0.8
    top = floor + 0.06 + pole_height
    parts = [cylinder((0, floor, 0), base_radius, 0.06, base_colour, 16),
             cylinder((0, floor + 0.06, 0), 0.035, pole_height, base_colour, 8)]
    x = 0.0
    if arm:
        x = arm
        parts.append(box((arm / 2, top - 0.02, 0), (arm, 0.04, 0.04), base_colour))
    parts.append(cylinder((x, top - shade_height, 0), shade_bottom, shade_height, shade_colour, 16, shade_top))
    return merge(*parts)


WOOD, DARK, RED, BLUE, GREEN, CREAM, STEEL, YELLOW = (
    (0.72, 0.5, 0.3), (0.3, 0.25, 0.22), (0.8, 0.2, 0.15), (0.2, 0.35, 0.8),
    (0.25, 0.6, 0.3), (0.9, 0.85, 0.7), (0.6, 0.62, 0.66), (0.95, 0.8, 0.2))

# (name, category, mesh): each instance its own proportions and parts
INSTANCES = tuple((name, category, normalized(mesh)) for name, category, mesh in (
    ("kitchen chair", "chair", chair(0.8, 0.75, 0.8, 0.8, 0.04, False, False, (WOOD, WOOD, WOOD))),
    ("bar stool", "chair", chair(0.6, 0.6, 1.2, 0.3, 0.035, True, False, (RED, STEEL, RED))),
    ("armchair", "chair", chair(1.0, 0.9, 0.6, 0.7, 0.06, False, True, (BLUE, DARK, BLUE))),
    ("high-back chair", "chair", chair(0.7, 0.7, 0.7, 1.05, 0.04, False, False, (GREEN, DARK, GREEN))),
    ("stool", "chair", chair(0.6, 0.6, 0.75, 0.0, 0.05, True, False, (YELLOW, STEEL, YELLOW))),
    ("office chair", "chair", chair(0.85, 0.8, 0.75, 0.85, 0.035, True, True, (DARK, STEEL, RED))),
    ("dining table", "table", table(1.5, 0.9, 1.0, 0.05, False, False, (WOOD, WOOD))),
    ("café table", "table", table(1.0, 1.0, 1.05, 0.06, True, True, (CREAM, DARK))),
    ("coffee table", "table", table(1.4, 1.0, 0.5, 0.06, False, False, (DARK, STEEL))),
    ("floor lamp", "lamp", lamp(0.3, 1.2, 0.3, 0.2, 0.35, 0.0, (STEEL, CREAM))),
    ("desk lamp", "lamp", lamp(0.35, 0.7, 0.35, 0.12, 0.3, 0.0, (DARK, RED))),
    ("arc lamp", "lamp", lamp(0.25, 1.1, 0.25, 0.1, 0.25, 0.5, (STEEL, YELLOW))),
))
CATEGORIES = ("chair", "table", "lamp")


# ---------------------------------------------------------------- the camera and the rasterizer


def camera(azimuth, elevation):
    """Rows: the camera's right, up and towards-the-camera unit vectors in world coordinates,
    for a camera at ``azimuth`` degrees around y (0: looking along -z) and ``elevation`` above."""
    a, e = np.deg2rad(azimuth), np.deg2rad(elevation)
    towards = np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    right = np.array([np.cos(a), 0.0, -np.sin(a)])
    return np.stack([right, np.cross(towards, right), towards])


def render(mesh, azimuth, elevation, size=32, zoom=1.0, shift=(0.0, 0.0), brightness=1.0):
    """One view of ``mesh``: (image (3, size, size) in [-1, 1], mask (1, size, size) in {0, 1})."""
    R = camera(azimuth, elevation)
    cam = mesh.triangles @ R.T                             # (T, 3 vertices, xyz)
    scale = size / 2 * zoom / EXTENT
    px = (cam[..., 0] + shift[0] * 2 * EXTENT / zoom) * scale + size / 2   # columns
    py = size / 2 - (cam[..., 1] - shift[1] * 2 * EXTENT / zoom) * scale   # rows, y up
    depth = cam[..., 2]
    shade = AMBIENT + DIFFUSE * np.clip(mesh.normals @ R.T @ LIGHT, 0, None)
    colours = np.clip(mesh.colours * shade[:, None] * brightness, 0, 1)

    centres = np.arange(size) + 0.5
    cx, cy = np.meshgrid(centres, centres)                 # (size, size): the pixel centres
    cx, cy = cx.ravel()[None], cy.ravel()[None]            # (1, P)
    x0, x1, x2 = px[:, :1], px[:, 1:2], px[:, 2:]
    y0, y1, y2 = py[:, :1], py[:, 1:2], py[:, 2:]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)   # twice the signed area, (T, 1)
    area = np.where(np.abs(area) < 1e-12, np.nan, area)    # edge-on triangles cover nothing
    w0 = ((x1 - cx) * (y2 - cy) - (x2 - cx) * (y1 - cy)) / area   # barycentric coordinates (T, P)
    w1 = ((x2 - cx) * (y0 - cy) - (x0 - cx) * (y2 - cy)) / area
    w2 = 1 - w0 - w1
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    z = w0 * depth[:, :1] + w1 * depth[:, 1:2] + w2 * depth[:, 2:]
    z = np.where(inside, z, -np.inf)
    nearest = z.argmax(0)                                  # the z-buffer: the nearest covering triangle
    covered = inside.any(0)
    image = np.where(covered[:, None], colours[nearest], 0.0)  # (P, 3), black background
    image = (image.T.reshape(3, size, size) * 2 - 1).astype(np.float32)
    return image, covered.reshape(1, size, size).astype(np.float32)


# ---------------------------------------------------------------- the data set


class Shapes3D(NamedTuple):
    """Every instance at every view: images (N, 3, S, S), masks (N, 1, S, S), and per view its
    instance (N,) (the paper's "class"), category (N,), azimuth and elevation (N,) in degrees,
    and ``train`` (N,) bool: False for the held-out azimuths."""
    images: np.ndarray
    masks: np.ndarray
    instance: np.ndarray
    category: np.ndarray
    azimuth: np.ndarray
    elevation: np.ndarray
    train: np.ndarray
    names: tuple


def load_shapes3d(size=32, azimuths=AZIMUTHS, elevations=ELEVATIONS):
    """Render every instance of ``INSTANCES`` at every (azimuth, elevation); ``train`` marks the
    views whose azimuth is not in ``HELD_OUT_AZIMUTHS``. The arrays are read-only: a process
    renders each set of views once and shares it."""
    if size < 8:
        raise ValueError(f"load_shapes3d: size must be at least 8 pixels, got {size}")
    return _load(int(size), tuple(float(a) for a in azimuths), tuple(float(e) for e in elevations))


@lru_cache(maxsize=8)
def _load(size, azimuths, elevations):
    views = [(i, a, e) for i in range(len(INSTANCES)) for e in elevations for a in azimuths]
    rendered = [render(INSTANCES[i][2], a, e, size) for i, a, e in views]
    instance, azimuth, elevation = (np.array(column) for column in zip(*views))
    data = Shapes3D(
        images=np.stack([r[0] for r in rendered]), masks=np.stack([r[1] for r in rendered]),
        instance=instance.astype(np.int64),
        category=np.array([CATEGORIES.index(INSTANCES[i][1]) for i in instance], np.int64),
        azimuth=azimuth.astype(np.float64), elevation=elevation.astype(np.float64),
        train=~np.isin(azimuth % 360, HELD_OUT_AZIMUTHS), names=tuple(name for name, _, _ in INSTANCES))
    for array in data[:-1]:
        array.setflags(write=False)
    return data
