"""Datasets behind one interface (ids per split, image, label map, image-level labels), transforms and loaders."""

from .voc import DatasetError, VOCLayout

__all__ = ["DatasetError", "VOCLayout"]
