"""sRGB <-> CIE Lab, the colour space of colorization: L is the lightness the network
sees, (a, b) the colour it predicts.

The formulas are scikit-image's (``skimage.color.rgb2lab`` / ``lab2rgb``): sRGB with
its gamma curve, the sRGB primaries' XYZ matrix, and the D65 white of the 2-degree
observer. The tests compare both directions with scikit-image's functions.

    rgb (in [0, 1]) --undo gamma--> linear rgb --M--> XYZ --/white, cube root--> L, a, b

    L = 116 f(Y/Yn) - 16,  a = 500 (f(X/Xn) - f(Y/Yn)),  b = 200 (f(Y/Yn) - f(Z/Zn)),
    f(t) = t^(1/3) above (6/29)^3, else the line 7.787 t + 16/116 that meets it there.

L runs over [0, 100]; a and b over about [-110, 110] for sRGB colours. Every function
takes arrays (NumPy or CuPy) with the three channels on ``axis`` (1 for batches of
shape (N, 3, H, W), the layout of the loaders) and computes in float64.
"""
import numpy as np

from .. import backend

XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],   # sRGB's primaries and D65 white
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])  # (Xn, Yn, Zn), the 2-degree observer
_EPSILON = 0.008856     # (6/29)^3: below it f is the line
_SLOPE = 7.787          # (29/6)^2 / 3: the line's slope


def _channels(x, axis, name):
    xp = backend.get_array_module(x, op=name)
    x = xp.asarray(x, dtype=xp.float64)
    if x.ndim == 0 or x.shape[axis] != 3:
        raise ValueError(f"{name}: expected 3 channels on axis {axis}, got shape {tuple(x.shape)}")
    return xp, xp.moveaxis(x, axis, -1)


def _mix(matrix, x, xp):
    """The 3x3 ``matrix`` applied to the channels of ``x`` (channels last)."""
    return x @ xp.asarray(matrix.T)


def rgb_to_lab(rgb, axis=1):
    """sRGB in [0, 1] -> Lab (L in [0, 100], a and b about [-110, 110]), float64."""
    xp, c = _channels(rgb, axis, "rgb_to_lab")
    linear = xp.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)  # undo the sRGB gamma
    t = _mix(XYZ_FROM_RGB, linear, xp) / xp.asarray(WHITE_D65)
    f = xp.where(t > _EPSILON, xp.cbrt(t), _SLOPE * t + 16.0 / 116.0)
    lab = xp.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                   axis=-1)
    return xp.moveaxis(lab, -1, axis)


def lab_to_linear_rgb(lab, axis=1, clip_z=True):
    """Lab -> sRGB before the gamma curve and before clipping: a colour is in the sRGB
    gamut when all three values lie in [0, 1]. As scikit-image, f(Z/Zn) below 0 is set
    to 0 unless ``clip_z`` is False."""
    xp, c = _channels(lab, axis, "lab_to_linear_rgb")
    fy = (c[..., 0] + 16.0) / 116.0
    fz = fy - c[..., 2] / 200.0
    f = xp.stack([fy + c[..., 1] / 500.0, fy, xp.maximum(fz, 0.0) if clip_z else fz], axis=-1)
    t = xp.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / _SLOPE)  # 0.2068966 = 6/29: f's inverse
    return xp.moveaxis(_mix(RGB_FROM_XYZ, t * xp.asarray(WHITE_D65), xp), -1, axis)


def lab_to_rgb(lab, axis=1):
    """Lab -> sRGB in [0, 1] (out-of-gamut colours clipped, as scikit-image), float64."""
    xp = backend.get_array_module(lab, op="lab_to_rgb")
    c = lab_to_linear_rgb(lab, axis)
    safe = xp.maximum(c, 0.0031308)  # the power's argument stays positive where its branch is unused
    return xp.clip(xp.where(c > 0.0031308, 1.055 * safe ** (1 / 2.4) - 0.055, 12.92 * c), 0.0, 1.0)


def in_gamut(lab, axis=1, tolerance=0.0):
    """Whether each Lab colour is an sRGB colour: its linear r, g, b all in [0, 1]."""
    c = lab_to_linear_rgb(lab, axis, clip_z=False)
    return ((c >= -tolerance) & (c <= 1 + tolerance)).all(axis=axis)
