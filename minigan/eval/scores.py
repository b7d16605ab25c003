r"""Scores of generated samples, read off the project's evaluation classifier.

* **Conditional accuracy**: for a conditional model, the share of samples drawn for
  class y that the classifier labels y. Near the classifier's own test accuracy
  means the generator obeys its label.
* **Class coverage**: how many classes the samples hit (a class counts when at least
  ``min_share`` of the samples are predicted in it) and the entropy of the
  predicted-class histogram, H = -sum_k p_k log p_k (nats). A collapsed generator
  hits one class, H = 0; a balanced one over K classes reaches H = log K.
* **Classifier-feature Fréchet distance** (FD): fit a Gaussian to the classifier's
  penultimate-layer features of real images (mu_r, Sigma_r) and of samples
  (mu_g, Sigma_g); the squared 2-Wasserstein distance between the two Gaussians is

      FD = |mu_r - mu_g|^2 + tr(Sigma_r + Sigma_g - 2 (Sigma_r Sigma_g)^{1/2}).

  This is FID's formula (Heusel et al. 2017) on *our* classifier's features, not on
  Inception's: the numbers are not FIDs and compare only with each other, for the
  same classifier, real set and number of samples (the estimate is biased upward
  at small N).
* **Within-class distance** (no classifier): the mean pixel distance between two
  images of the same class. Samples of a conditional generator that obeys its label
  but ignores its noise (collapse within a class) score near 0; held-out real images
  of each class give the value to compare with.
"""
import numpy as np


def class_histogram(predicted, n_classes):
    """How many samples fall in each class, (n_classes,) int64."""
    return np.bincount(np.asarray(predicted, dtype=np.int64), minlength=n_classes)


def conditional_accuracy(predicted, labels, n_classes=None):
    """Share of samples whose predicted class is the class they were drawn for, and the same per class."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape:
        raise ValueError(f"conditional_accuracy: {predicted.shape[0]} predictions for {labels.shape[0]} labels")
    n_classes = n_classes or int(max(predicted.max(initial=0), labels.max(initial=0))) + 1
    correct = predicted == labels
    per_class = [float(correct[labels == k].mean()) if (labels == k).any() else None for k in range(n_classes)]
    return {"accuracy": float(correct.mean()), "accuracy_per_class": per_class}


def class_coverage(predicted, n_classes, min_share=0.01):
    """Classes hit by at least ``min_share`` of the samples, and the predicted-class entropy (nats)."""
    counts = class_histogram(predicted, n_classes)
    p = counts / max(counts.sum(), 1)
    nonzero = p[p > 0]
    return {"classes_hit": int((p >= min_share).sum()) if counts.sum() else 0,
            "classes_total": int(n_classes),
            "class_entropy": float(-(nonzero * np.log(nonzero)).sum()),
            "class_entropy_max": float(np.log(n_classes)),
            "class_histogram": counts.tolist()}


def feature_statistics(features):
    """Mean and covariance (unbiased, as numpy.cov) of features (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"feature_statistics: need features (N >= 2, D), got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}) for two Gaussians.

    S1 S2 is not symmetric, but it is similar to A S2 A with A = S1^{1/2}
    (A^{-1} (A S2 A) A = S1 S2), so tr (S1 S2)^{1/2} = sum_i sqrt(eig_i(A S2 A)), with
    A S2 A symmetric positive semi-definite: two ``eigh`` calls, real results, no
    complex round-off that ``scipy.linalg.sqrtm`` can produce for singular
    covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"frechet_distance: shapes mu {mu1.shape}, {mu2.shape}, sigma {sigma1.shape}, "
                         f"{sigma2.shape} do not describe two Gaussians of one dimension")
    root = _sqrt_psd(sigma1)
    middle = root @ sigma2 @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def classifier_fd(classifier, real, samples, batch_size=500):
    """The Fréchet distance between ``real`` images and ``samples`` in the classifier's feature space."""
    return frechet_distance(*feature_statistics(classifier.embed(real, batch_size)),
                            *feature_statistics(classifier.embed(samples, batch_size)))


def score_samples(classifier, samples, labels=None, real=None, min_share=0.01):
    """All the scores that apply, as one dict for metrics.json.

    ``labels``: the classes the samples were drawn for (conditional models).
    ``real``: real images for the Fréchet distance (e.g. the test split).
    """
    n_classes = classifier.config["n_classes"]
    predicted = classifier.predict(samples)
    scores = class_coverage(predicted, n_classes, min_share)
    if labels is not None:
        scores.update(conditional_accuracy(predicted, labels, n_classes))
    if real is not None:
        scores["classifier_fd"] = frechet_distance(*feature_statistics(classifier.embed(real)),
                                                   *feature_statistics(classifier.embed(samples)))
    return scores


def within_class_distance(images, labels):
    """The mean Euclidean distance between two different images of the same label,
    averaged over the labels present."""
    per_class = []
    for k in np.unique(labels):
        flat = images[labels == k].reshape(int((labels == k).sum()), -1).astype(np.float64)
        d2 = (flat ** 2).sum(1)[:, None] - 2 * flat @ flat.T + (flat ** 2).sum(1)[None]
        n = len(flat)
        per_class.append(np.sqrt(np.maximum(d2, 0)).sum() / max(n * (n - 1), 1))
    return float(np.mean(per_class))
