"""minigan: a minimal deep-learning framework for learning generative image models."""
from setuptools import find_packages, setup

setup(
    name="minigan",
    version="0.1.0",
    description="Autograd on NumPy/CuPy, Triton kernels, and every model of a course on "
                "generative image models, checked against PyTorch.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # the repository's kernels/ installs as minigan.kernels (a top-level ``kernels`` is taken on PyPI)
    packages=find_packages(include=["minigan", "minigan.*"]) + ["minigan.kernels"],
    package_dir={"minigan.kernels": "kernels"},
    # the evaluation classifiers' weights, trained by `python -m minigan.eval.train_classifier`, and the
    # texture feature network's, by `python -m minigan.models.feature_training`
    package_data={"minigan.eval": ["weights/*.safetensors"], "minigan.models": ["weights/*.safetensors"]},
    python_requires=">=3.10",
    install_requires=["numpy>=1.24"],
    extras_require={
        # torch is the test oracle; install its CPU build first (see README)
        "test": ["torch>=2.1", "hypothesis>=6.80", "pytest>=7", "triton>=3.6; platform_system=='Linux'",
                 "pillow", "tqdm", "matplotlib", "safetensors", "scikit-learn", "scipy", "scikit-image",
                 "mlxtend"],
        "gpu": ["cupy-cuda12x", "triton>=3.6"],
        "examples": ["pillow", "tqdm", "matplotlib", "scikit-image", "scikit-learn", "safetensors", "mlxtend"],
    },
)
