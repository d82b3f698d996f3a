"""Shared pytest fixtures: tiny, fast settings for digits runs."""
import os
import pytest

os.environ.setdefault('OMP_NUM_THREADS', '2')

TINY = ['--width', '8', '--bank-size', '256', '--batch-size', '64', '--no-progress']


@pytest.fixture
def tiny_flags():
    return list(TINY)
