"""Event-token throughput on POP909: the project's EventCodec beside miditok's own loop.

Both sides use the same miditok tokenizer (the project's REMI configuration unless ``--kind``),
the same files, in the same process, alternating rounds (best round kept), so the ratio holds on
a loaded machine:

- ``miditok``: ``tokenizer.encode(path)`` per file (miditok's loop: it reads the file itself);
- ``codec_scores``: ``EventCodec.encode_score`` per file read with symusic (the same work plus
  the codec's copy of the Score);
- ``codec_documents``: ``EventCodec.encode_documents`` over the files' MIDI text, which is what
  the ``token_shards`` asset runs (MIDI text -> Score -> events, BOS and format token).

Prints JSON: files/s and tokens/s per path and the ratios to miditok's loop. ``--compression``
instead prints tokens per note of every kind, without and with miditok's BPE (``--bpe-vocab``,
trained on the first ``--bpe-train`` files, measured on the others).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import symusic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicml.formats.midi import text as miditext  # noqa: E402
from musicml.tokenizers.events import EVENT_KINDS, EventCodec  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "corpora" / "midi" / "pop909"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of .mid files (POP909)")
    ap.add_argument("--limit", type=int, default=909, help="files to use (sorted by name)")
    ap.add_argument("--kind", default="remi", choices=sorted(EVENT_KINDS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--compression", action="store_true", help="tokens per note per kind, with and without BPE")
    ap.add_argument("--bpe-vocab", type=int, default=4096)
    ap.add_argument("--bpe-train", type=int, default=100)
    args = ap.parse_args()
    files = sorted(args.dir.glob("*.mid"))[: args.limit]
    if not files:
        sys.exit(f"no .mid files in {args.dir} (the shared POP909 corpus; pass --dir)")
    if args.compression:
        print(json.dumps(compression(files, args.bpe_train, args.bpe_vocab), indent=2))
        return
    codec = EventCodec.train([], [], kind=args.kind)
    tok = codec.tok
    scores = [symusic.Score(str(p)) for p in files]
    texts = [miditext.encode(s) for s in scores]
    warnings.simplefilter("ignore")

    def miditok_loop() -> int:
        return sum(len(tok.encode(p).ids) for p in files)

    def codec_scores() -> int:
        return sum(len(codec.encode_score(symusic.Score(str(p)))) for p in files)

    def codec_documents() -> int:
        return sum(len(d) - 2 for d in codec.encode_documents(["midi"] * len(texts), texts))

    runs = {"miditok": miditok_loop, "codec_scores": codec_scores, "codec_documents": codec_documents}
    best: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            tokens[name] = fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    out = {
        "benchmark": "bench_events", "kind": args.kind, "files": len(files), "rounds": args.rounds,
        "notes": sum(s.note_num() for s in scores), "vocab_size": codec.vocab_size,
        "python": platform.python_version(),
        **{name: {"seconds": round(best[name], 3), "files_per_s": round(len(files) / best[name], 1),
                  "tokens": tokens[name], "tokens_per_s": round(tokens[name] / best[name])} for name in runs},
        "codec_scores_vs_miditok": round(best["miditok"] / best["codec_scores"], 3),
        "codec_documents_vs_miditok": round(best["miditok"] / best["codec_documents"], 3),
    }
    print(json.dumps(out, indent=2))


def compression(files: list[Path], n_train: int, vocab: int) -> dict:
    """Tokens per note of each kind on the files after the first ``n_train``, with and without BPE."""
    warnings.simplefilter("ignore")
    if len(files) <= n_train:
        sys.exit(f"--compression needs more than --bpe-train={n_train} files")
    texts = [miditext.encode(symusic.Score(str(p))) for p in files]
    train, held = texts[:n_train], texts[n_train:]
    notes = sum(miditext.decode(t).note_num() for t in held)
    out: dict = {"benchmark": "bench_events --compression", "train_files": n_train, "eval_files": len(held),
                 "eval_notes": notes, "bpe_vocab": vocab}
    for kind in sorted(EVENT_KINDS):
        row = {}
        for bpe in (False, True):
            codec = EventCodec.train(["midi"] * len(train), train, kind=kind, bpe=bpe, vocab_size=vocab)
            t0 = time.perf_counter()
            n = sum(len(d) - 2 for d in codec.encode_documents(["midi"] * len(held), held))
            key = "bpe" if bpe else "base"
            row[key] = {"vocab_size": codec.vocab_size, "tokens_per_note": round(n / notes, 3),
                        "encode_s": round(time.perf_counter() - t0, 2)}
        out[kind] = row
    return out


if __name__ == "__main__":
    main()
