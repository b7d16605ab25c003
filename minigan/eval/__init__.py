"""Scoring samples with a classifier trained by this project (no pretrained network can be
fetched): conditional accuracy, class coverage, and a classifier-feature Fréchet distance.

    from minigan.eval import load_classifier, score_samples
    classifier = load_classifier("digits")
    score_samples(classifier, samples, labels=y, real=load_digits(split="test")[0])
"""
from .classifier import Classifier, load_classifier, read_classifier, save_classifier, weights_path
from .memorization import check_memorization, nearest_neighbours
from .scores import (class_coverage, class_histogram, classifier_fd, conditional_accuracy, feature_statistics,
                     frechet_distance, score_samples, within_class_distance)
from .translation import edge_energy, translation_scores
