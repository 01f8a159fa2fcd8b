"""Kinema's diffusers worker: open-weight image-to-video models behind Kinema's remote worker protocol."""

__version__ = "0.1.0"
