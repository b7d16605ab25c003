"""Data sets that work offline, the loader that batches them, and batch transforms.

Every image loader returns float32 arrays (N, C, H, W) in [-1, 1] and int64 labels.
"""
from . import transforms
from .digits import load_digits
from .edges2fashion import (Edges2Fashion, UnpairedEdges2Fashion, canny_edges, load_edges2fashion,
                            load_unpaired_edges2fashion)
from .image_folder import image_files, load_image_folder
from .idx import IDXError, read_idx, write_idx
from .images import IMAGES, PHOTOS, TEXTURES, load_image, load_lfw_subset
from .loader import DataLoader
from .mnist import (FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, MNIST_CLASSES, DataNotFoundError,
                    download_idx_dataset, load_fashion_mnist, load_idx_dataset, load_mnist)
from .sneakers2boots import UnpairedDomains, load_sneakers2boots
from .toy import TOY_DATA, grid, grid_modes, mode_metrics, moons, ring, ring_modes, swiss_roll
