"""One file per lecture model: its networks, its losses, its training step."""
