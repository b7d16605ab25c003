"""Data sets that work offline, and the loader that batches them."""
from .digits import load_digits
from .loader import DataLoader
from .toy import TOY_DATA, grid, grid_modes, mode_metrics, moons, ring, ring_modes, swiss_roll
