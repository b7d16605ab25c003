"""Triton kernels for minigan's hot ops, one file per op family.

    bridge.py     arrays -> pointers or torch tensors (zero-copy), launches on CuPy's stream or the interpreter
    bias_act.py   bias + leaky ReLU (StyleGAN2's fused_leaky_relu), forward and backward
    norm.py       instance norm and AdaIN, forward and backward (one kernel family)
    batch_norm.py batch norm in training, forward and backward (statistics split over the batch)
    conv.py       conv2d as an implicit GEMM, its dgrad (by stride phase) and wgrad (split-K);
                  conv_transpose2d is the dgrad with a bias
    layout.py     the NCHW -> NHWC transpose the convolutions read their inputs from
    optim.py      Adam's update of a parameter and its moments in one pass (minigan.optim.Adam)
    ops.py        the minigan Functions built on them (what minigan.dispatch hands the ops)

This directory installs as ``minigan.kernels`` (setup.py's ``package_dir``), and
imports only the engine (minigan.autograd, minigan.backend) and Triton. Which
op runs which kernel is decided in one place, ``minigan/dispatch.py``: on CuPy
arrays unless ``MINIGAN_KERNELS=0``, and on NumPy arrays under Triton's
interpreter (``TRITON_INTERPRET=1 MINIGAN_KERNELS=1``). Each kernel file opens
with its tiling, the bytes and flops of a typical shape, and its measured
times; the tools that produce those numbers live in benchmarks/
(``python -m benchmarks.kernels`` on a GPU, ``python -m benchmarks.sass`` without one).
"""
