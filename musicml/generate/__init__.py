"""Generation (asset ``generated_samples``): sampling from a model and the samples it writes."""

from __future__ import annotations

from musicml.generate.sampling import (  # noqa: F401
    generate,
    sample_next,
)
