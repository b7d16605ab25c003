"""Plumbing every example needs: image grids, plots, metrics, checkpoints, progress bars.

Nothing here imports the autograd engine: a Tensor is accepted as anything with a
``.array`` array (see ``to_numpy``), so these helpers work on plain arrays too.
"""
from .audio import save_spectrograms, save_wav
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .common import atomic_save, atomic_write, remove_stale_temporaries, save_npz, to_numpy
from .images import make_grid, save_image, save_points
from .metrics import write_metrics
from .plots import save_curves, save_losses, save_scatters
from .progress import progress

__all__ = ["CheckpointError", "atomic_save", "atomic_write", "load_checkpoint", "make_grid",
           "progress", "remove_stale_temporaries", "save_checkpoint", "save_curves", "save_image", "save_losses",
           "save_npz", "save_points", "save_scatters", "save_spectrograms", "save_wav", "to_numpy", "write_metrics"]
