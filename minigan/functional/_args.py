"""Argument helpers the ops share (and nn's layers, which take the same arguments).

Private to minigan: ``pair`` reads a size argument the way torch does, ``shape_str``
writes a shape into an error message.
"""
import operator


def pair(value, name, op):
    """An int or a 1- or 2-sequence of ints as (height, width), as torch accepts them.

    ``name`` and ``op`` are the argument and the op (or layer) an error names.
    """
    values = tuple(value) if hasattr(value, "__len__") and not isinstance(value, str) else (value,)
    try:
        values = tuple(map(operator.index, values))  # ints (NumPy's too), never a float cut short
    except TypeError:
        raise TypeError(f"{op}(): argument '{name}' must be an int or a tuple of ints, "
                        f"not {type(value).__name__} {value!r}") from None
    if len(values) == 1:
        return values * 2
    if len(values) != 2:
        raise RuntimeError(f"{op}: expected {name} to be a single integer value or a list of 2 "
                           f"values, but got {name}={list(values)}")
    return values


def shape_str(shape):
    """``(2, 3)``: a shape as an error message shows it, whatever ints it holds."""
    return str(tuple(int(s) for s in shape))
