r"""Scores of an image-to-image translation against the held-out truth (pix2pix, CycleGAN).

For outputs G(x) and targets y of the same test inputs x, with the class labels of y:

* **L1**: mean |G(x) - y| over pixels, in the [-1, 1] range of the images. What
  pix2pix's L1 term minimizes; a blurry output that averages the plausible
  translations scores well on it.
* **Accuracy**: the share of outputs the project's classifier puts in the target's
  class (the paper's "FCN-score" idea, with our classifier in place of an FCN).
  The classifier's accuracy on the targets themselves is the ceiling.
* **Classifier-feature FD**: the Fréchet distance between the outputs' and the
  targets' features (``scores.frechet_distance``): how far the outputs are, as a
  set, from real images.
* **Edge energy**: the mean absolute difference of neighbouring pixels,

      E(x) = 1/2 (mean |x[i, j+1] - x[i, j]| + mean |x[i+1, j] - x[i, j]|),

  and its ratio to the targets' E(y). Blur lowers it (ratio < 1); the sharp
  outlines and textures a GAN loss asks for raise it back toward 1.
"""
import numpy as np

from .scores import classifier_fd, conditional_accuracy


def edge_energy(images):
    """E over a batch (N, C, H, W): the mean absolute difference of horizontally and of
    vertically neighbouring pixels, averaged over both directions and the batch."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"edge_energy: expected images (N, C, H, W), got shape {x.shape}")
    horizontal = np.abs(np.diff(x, axis=3)).mean()
    vertical = np.abs(np.diff(x, axis=2)).mean()
    return float((horizontal + vertical) / 2)


def translation_scores(classifier, outputs, targets, labels):
    """All the scores above, as one dict for metrics.json: ``l1``, ``accuracy``,
    ``accuracy_targets`` (the classifier on the truth), ``classifier_fd`` (outputs against
    targets), ``edge_energy``, ``edge_energy_targets`` and ``edge_energy_ratio``."""
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.shape != targets.shape or len(labels) != len(outputs):
        raise ValueError(f"translation_scores: outputs {outputs.shape}, targets {targets.shape} and "
                         f"{len(labels)} labels do not describe the same examples")
    n_classes = classifier.config["n_classes"]
    energy, energy_targets = edge_energy(outputs), edge_energy(targets)
    return {"l1": float(np.abs(outputs.astype(np.float64) - targets).mean()),
            "accuracy": conditional_accuracy(classifier.predict(outputs), labels, n_classes)["accuracy"],
            "accuracy_targets": conditional_accuracy(classifier.predict(targets), labels, n_classes)["accuracy"],
            "classifier_fd": classifier_fd(classifier, targets, outputs),
            "edge_energy": energy, "edge_energy_targets": energy_targets,
            "edge_energy_ratio": energy / energy_targets if energy_targets else float("nan")}
