"""Evaluation (asset ``model_evaluation``), in one place: bits per byte (:mod:`.bpb`), bits per
note (:mod:`.bpn`), validity of generated samples (:mod:`.validity`), musical metrics and their
overlapping areas (:mod:`.musical`), and the step that computes and records them (:mod:`.run`)."""

from __future__ import annotations

from musicml.evaluate.bpb import (  # noqa: F401
    SplitNLL,
    bits_per_byte,
    loss_and_bytes,
    split_nll,
    token_counts,
    unigram_bpb,
    unigram_nll,
)
from musicml.evaluate.bpn import bits_per_note  # noqa: F401
