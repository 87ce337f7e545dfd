"""Importing files: readers, field mapping, presets, validation and loading."""
