"""``minigan.cuda``: what scripts written for torch ask of ``torch.cuda`` (is a GPU there?)."""
from .backend import cuda_available as is_available  # noqa: F401
