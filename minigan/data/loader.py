"""A minimal DataLoader: seeded shuffling, batching, drop_last, augmentation, device transfer."""
import numpy as np

from ..autograd import Tensor
from .. import backend


class DataLoader:
    """Iterate over arrays in batches, like ``torch.utils.data.DataLoader`` on a TensorDataset.

    ``arrays`` share their first dimension; each batch is a tuple of Tensors on
    ``device`` (a single Tensor when one array is given). Shuffling draws from
    its own generator seeded with ``seed`` + epoch, so a resumed run sees the
    same batches as an uninterrupted one (set ``loader.epoch`` when resuming).

    ``transform(batch, rng)``, when given, augments the first array's batch (a
    NumPy array, before it moves to the device), e.g. with the functions of
    ``minigan.data.transforms``; ``rng`` is a generator seeded by (``seed``, epoch),
    apart from the shuffling's, so augmentations are reproducible too.
    """

    def __init__(self, *arrays, batch_size=64, shuffle=True, drop_last=True, seed=0, device="cpu",
                 transform=None):
        if not arrays:
            raise ValueError("DataLoader: give at least one array")
        n = len(arrays[0])
        for a in arrays:
            if len(a) != n:
                raise ValueError(f"DataLoader: arrays have different lengths {[len(a) for a in arrays]}")
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        if drop_last and batch_size > n:
            raise ValueError(f"DataLoader: batch_size {batch_size} exceeds the {n} samples with drop_last")
        self.arrays, self.batch_size, self.shuffle = arrays, batch_size, shuffle
        self.drop_last, self.seed, self.device = drop_last, seed, backend.normalize_device(device)
        self.transform = transform
        self.epoch = 0

    def __len__(self):
        n = len(self.arrays[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.arrays[0])
        order = (np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle
                 else np.arange(n))
        augment_rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            arrays = [a[idx] for a in self.arrays]
            if self.transform is not None:
                arrays[0] = self.transform(arrays[0], augment_rng)
            batch = tuple(Tensor(backend.to_device(np.ascontiguousarray(a), self.device)) for a in arrays)
            yield batch[0] if len(batch) == 1 else batch

    def forever(self):
        """Batches without end, epoch after epoch (for step-based training loops)."""
        while True:
            yield from self
