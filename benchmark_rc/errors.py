"""Errors raised for bad user input.

A :class:`UserError` carries a message meant for a person: it names the file, the record and
what was expected. The CLI prints it without a traceback and exits with status 2.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, argument, dataset); the message says what and where."""


class DatasetError(UserError, ValueError):
    """An HDF5 dataset does not follow the benchmark_rc schema."""
