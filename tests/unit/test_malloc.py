"""The allocator setting made at process start."""

from __future__ import annotations

import platform

import pytest

from gateway.malloc import fix_mmap_threshold


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_mmap_threshold_is_fixed_on_glibc() -> None:
    """On glibc, mallopt accepts the threshold."""
    assert fix_mmap_threshold(environ={}) is True


def test_an_operators_malloc_variable_is_left_alone() -> None:
    """With MALLOC_MMAP_THRESHOLD_ set, nothing is changed."""
    assert fix_mmap_threshold(environ={"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
