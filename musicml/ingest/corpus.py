"""The default corpus: real, public-domain music that needs no network.

music21 ships its corpus inside the wheel; its ABC files (mostly O'Neill's and Ryan's Mammoth
collections, over a thousand files and about 13,000 tunes) seed an empty drop zone.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def music21_abc_files() -> list[Path]:
    """ABC files of music21's bundled corpus, sorted."""
    import music21

    root = Path(music21.__file__).parent / "corpus"
    return sorted(root.rglob("*.abc"))


def seed_drop_zone(raw_dir: Path, *, limit: int | None = None) -> int:
    """Copy the default corpus into ``raw_dir/music21`` if the drop zone holds no score; returns files copied."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if any(p.is_file() and not p.name.startswith(".") for p in raw_dir.rglob("*")):
        return 0
    import music21

    root = Path(music21.__file__).parent / "corpus"
    files = music21_abc_files()[:limit]
    for src in files:
        dst = raw_dir / "music21" / src.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return len(files)
