"""One file per lecture model: its networks, its losses, its training step.

``latent.py`` is the one shared piece: the prior z ~ N(0, I) the models sample from.
"""
