"""Shared fixtures: the real corpora beside the checkout (``../shared/corpora``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("MUSICML_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))


def corpus_path(*parts: str) -> Path:
    """Path inside the shared corpora; skips the calling test when it is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real corpus not found at {path} (set MUSICML_CORPORA or place ../shared/corpora)")
    return path


@pytest.fixture
def corpora() -> Path:
    """Root of the shared real corpora (skips the test when absent)."""
    return corpus_path()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread, and steadily on a shared, loaded CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
