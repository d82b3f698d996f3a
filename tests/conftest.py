"""Shared pytest fixtures: tiny, fast settings for digits runs; the `slow` marker (deselected by default)."""
import os
import pytest

os.environ.setdefault('OMP_NUM_THREADS', '2')

TINY = ['--width', '8', '--bank-size', '256', '--batch-size', '64', '--no-progress']


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: the long fault-injection matrix; run it with `-m slow`')


def pytest_collection_modifyitems(config, items):
    "Without an explicit -m, leave the slow tests out (`python -m pytest -q -m slow tests/test_faults.py` runs them)."
    if config.getoption('markexpr'): return
    slow = [i for i in items if i.get_closest_marker('slow')]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [i for i in items if not i.get_closest_marker('slow')]


@pytest.fixture
def tiny_flags():
    return list(TINY)
