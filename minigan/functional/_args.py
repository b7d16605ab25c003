"""Argument helpers the ops share (and nn's layers, which take the same arguments).

Private to minigan: ``pair`` reads a size argument the way torch does, ``shape_str``
writes a shape into an error message.
"""
import numpy as np


def pair(value, name, op):
    """An int or a 1- or 2-sequence as (height, width), as torch accepts them.

    ``name`` and ``op`` are the argument and the op (or layer) an error names.
    """
    if isinstance(value, str):
        raise TypeError(f"{op}(): argument '{name}' must be an int or a tuple of ints, not str")
    if not hasattr(value, "__len__"):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 2
    if len(value) != 2:
        raise RuntimeError(f"{op}: expected {name} to be a single integer value or a list of 2 "
                           f"values, but got {name}={list(value)}")
    return value


def shape_str(shape):
    """``(2, 3)``: a shape as an error message shows it, whatever ints it holds."""
    return str(tuple(int(s) for s in shape))
