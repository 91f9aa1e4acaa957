"""FractalGen-MIDI as a model family: a coarse-to-fine generator over piano rolls.

A roll is ``128 pitches x T steps`` (16th notes) of classes: 0 = silence, ``1..velocity_bins``
= a sounding cell of that velocity bin. Three levels, each a small transformer over the units
of its parent's unit, then a per-pixel categorical head:

- level 0: the roll's 16x16 patches (8 pitch rows x T/16 time columns), conditioned on a label
  token (the score's format; 0 = the unconditional token);
- level 1: the 4x4 sub-patches of one patch; level 2: the 16 pixels of one sub-patch. A child is
  conditioned on its parent's output for that unit and for its four neighbours (for AR parents
  only the two neighbours earlier in the scan, so nothing leaks);
- the head: logits over ``velocity_bins + 1`` classes per pixel.

Each level is ``mar`` (masked: a truncated-normal mask ratio on [0, 1], at least one unit
masked, cosine schedule at sampling) or ``ar`` (causal) by config. Units are always ordered
column-major (all pitches of a time column before the next column), so an AR level is
time-causal. Training loss is cross-entropy at the head over the real (unpadded) cells that
every level masked; padded cells enter as silence with a "padding" flag and carry no loss.

Classifier-free guidance: the label is dropped to the unconditional token at rate
``cond_drop`` in training; sampling runs both branches and uses
``uncond + cfg * (cond - uncond)`` at the head (cfg 0: unconditional, 1: conditional).
Then ``sparsity_bias`` is added to the silence logit (positive: sparser rolls) and the logits
are divided by ``temperature`` (higher: more random).

Known cells (a prefix, or everything outside an inpainting range) are fed as context: a unit
whose cells are all known is visible from the start and never generated; the head keeps every
known cell exactly. Likelihood (:meth:`FractalGen.nll`) runs the sampler teacher-forced, which
gives the exact NLL of the data under one random generation order (an upper bound in bits).

Sizes (exact, tested): ``tiny`` 128x64 rolls, 271,689 parameters; ``gpu`` 128x256 rolls,
29,284,361 parameters (widths 512/256/128, depths 8/4/2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

PITCHES = 128
UNIT = (16, 4, 1)  # unit side (cells) at each level: patches, sub-patches, pixels
FORMAT_LABELS = {"midi": 1, "abc": 2, "atex": 3}  # 0: the unconditional token


@dataclass
class FractalConfig:
    roll_len: int = 64  # steps of a training roll (a multiple of 16); longer samples use windows
    velocity_bins: int = 8  # classes = velocity_bins + 1, class 0 = silence
    num_labels: int = 4  # condition labels including 0 = unconditional
    widths: list[int] = field(default_factory=lambda: [64, 48, 32])
    depths: list[int] = field(default_factory=lambda: [3, 2, 1])
    heads: list[int] = field(default_factory=lambda: [4, 4, 2])
    kinds: list[str] = field(default_factory=lambda: ["mar", "mar", "mar"])  # per level: mar | ar
    num_iter: list[int] = field(default_factory=lambda: [4, 4, 4])  # MAR sampling steps per level
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    cond_drop: float = 0.1  # rate at which training replaces the label by the unconditional token
    mask_std: float = 0.25  # mask ratio ~ N(1, mask_std) truncated to [0, 1]

    def __post_init__(self) -> None:
        if self.roll_len <= 0 or self.roll_len % 16:
            raise ValueError(f"roll_len must be a positive multiple of 16, got {self.roll_len}")
        for name in ("widths", "depths", "heads", "kinds", "num_iter"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"{name} needs one value per level (3), got {getattr(self, name)}")
        if bad := [k for k in self.kinds if k not in ("mar", "ar")]:
            raise ValueError(f"level kinds must be 'mar' or 'ar', got {bad}")
        if any(w % h for w, h in zip(self.widths, self.heads)):
            raise ValueError(f"widths {self.widths} must be divisible by heads {self.heads}")
        if self.velocity_bins < 1 or self.num_labels < 1:
            raise ValueError("velocity_bins and num_labels must be >= 1")

    @property
    def classes(self) -> int:
        return self.velocity_bins + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FractalConfig:
        d = {k: v for k, v in d.items() if k not in ("vocab_size", "seq_len")}  # registry extras
        if unknown := set(d) - {f.name for f in fields(cls)}:
            raise ValueError(f"unknown FractalConfig keys: {sorted(unknown)}")
        return cls(**{k: list(v) if isinstance(v, tuple) else v for k, v in d.items()})

    @classmethod
    def preset(cls, name: str, **overrides) -> FractalConfig:
        """``tiny`` (CPU, 128x64 rolls) or ``gpu`` (the original's ~30M size, 128x256 rolls)."""
        presets = {
            "tiny": {},
            "gpu": {"roll_len": 256, "widths": [512, 256, 128], "depths": [8, 4, 2], "heads": [8, 4, 4],
                    "num_iter": [8, 4, 4]},
        }
        if name not in presets:
            raise ValueError(f"unknown fractal preset {name!r}; known: {sorted(presets)}")
        return cls.from_dict({**presets[name], **overrides})


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, cfg: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + cfg * (cond - uncond)``."""
    return uncond + cfg * (cond - uncond)


def to_classes(velocity: torch.Tensor, bins: int) -> torch.Tensor:
    """Velocities in [0, 1] to classes: 0 stays silence, (0, 1] -> 1..bins."""
    return torch.ceil(velocity.clamp(0, 1) * bins).long()


def split_units(cells: torch.Tensor, side: int) -> torch.Tensor:
    """``(N, H, W)`` cell indices to ``(N, units, side, side)``, units in column-major order."""
    n, h, w = cells.shape
    gh, gw = h // side, w // side
    return cells.reshape(n, gh, side, gw, side).permute(0, 3, 1, 2, 4).reshape(n, gw * gh, side, side)


class Level(nn.Module):
    """One level's transformer over the units of a region (bidirectional for MAR, causal for AR)."""

    def __init__(self, cfg: FractalConfig, k: int):
        super().__init__()
        d, side = cfg.widths[k], UNIT[k]
        self.k, self.side, self.ar = k, side, cfg.kinds[k] == "ar"
        region = PITCHES if k == 0 else UNIT[k - 1]
        self.gh = region // side
        self.gw_max = cfg.roll_len // 16 if k == 0 else self.gh
        self.content = nn.Linear(2 * side * side, d)  # (value, is-real) of every cell of a unit
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.start = nn.Parameter(torch.zeros(d))
        self.pos_p = nn.Embedding(self.gh, d)
        self.pos_t = nn.Embedding(self.gw_max, d)
        self.pitch = nn.Embedding(PITCHES, d) if k else None  # absolute pitch of the unit's top row
        if k == 0:
            self.label = nn.Embedding(cfg.num_labels, d)
        else:
            parent = cfg.widths[k - 1]
            self.cond_proj = nn.Linear(parent, d)
            self.cond_slot = nn.Parameter(torch.randn(5, d) * 0.02)  # self, p-1, t-1, p+1, t+1
            self.edge = nn.Parameter(torch.zeros(parent))  # stands for a neighbour off the region
        layer = nn.TransformerEncoderLayer(d, cfg.heads[k], int(cfg.mlp_ratio * d), cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.depths[k], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, values: torch.Tensor, real: torch.Tensor, visible: torch.Tensor,
                cond: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs ``(N, units, d)``: ``values``/``real`` are ``(N, units, cells)``, ``visible``
        ``(N, units)`` (MAR: which units show their content), ``cond`` ``(N, c, d)``, ``pitch``
        ``(N, units)`` the absolute pitch of each unit's top row (levels 1 and 2)."""
        n, u, _ = values.shape
        x = self.content(torch.cat([values * real, real], dim=-1))
        if self.ar:
            x = torch.cat([self.start.expand(n, 1, -1), x[:, :-1]], dim=1)
        else:
            x = torch.where(visible[..., None], x, self.mask_token)
        idx = torch.arange(u, device=x.device)
        x = x + self.pos_p(idx % self.gh) + self.pos_t(idx // self.gh)
        if self.pitch is not None and pitch is not None:
            x = x + self.pitch(pitch)
        seq = torch.cat([cond, x], dim=1)
        mask = nn.Transformer.generate_square_subsequent_mask(seq.shape[1], device=x.device) if self.ar else None
        return self.norm(self.blocks(seq, mask=mask, is_causal=self.ar))[:, cond.shape[1]:]

    def child_cond(self, out: torch.Tensor, rows: torch.Tensor, units: torch.Tensor,
                   child: Level) -> torch.Tensor:
        """The child's condition tokens ``(M, 5, d_child)`` for units ``units`` of rows ``rows``."""
        n, u, d = out.shape
        gw = u // self.gh
        grid = child.edge.expand(n, gw + 2, self.gh + 2, d).clone()
        grid[:, 1:-1, 1:-1] = out.reshape(n, gw, self.gh, d)
        t, p = units // self.gh + 1, units % self.gh + 1
        offsets = [(0, 0), (0, -1), (-1, 0), (0, 1), (1, 0)]
        toks = [grid[rows, t + dt, p + dp] for dt, dp in offsets]
        if self.ar:  # later neighbours have seen this unit's content: use the edge token instead
            toks[3] = toks[4] = child.edge.expand(len(rows), d)
        return child.cond_proj(torch.stack(toks, dim=1)) + child.cond_slot


@dataclass
class _Ctx:
    """State of one sampling (or teacher-forced likelihood) pass over a canvas."""

    canvas: torch.Tensor  # flat classes of every cell
    known: torch.Tensor  # flat bool: cells fixed from the start
    real: torch.Tensor  # flat float: 1 for real cells, 0 for padding
    done: torch.Tensor  # flat bool: known or generated so far
    n: int  # rolls in the canvas
    steps: int  # T of the canvas (a cell's pitch is cell // T % 128)
    cfg: float = 1.0
    temperature: float = 1.0
    sparsity_bias: float = 0.0
    num_iter: tuple[int, ...] = (4, 4, 4)
    teacher: torch.Tensor | None = None  # flat targets: score them instead of sampling
    logp: torch.Tensor | None = None  # per-roll summed log-probability (teacher mode)
    on_frame: Callable[[int], None] | None = None

    @property
    def doubled(self) -> bool:  # run cond and uncond branches (first half cond)
        return self.teacher is None and self.cfg != 1.0


class FractalGen(nn.Module):
    """The hierarchical masked (or AR) piano-roll generator; see the module docstring."""

    def __init__(self, config: FractalConfig):
        super().__init__()
        self.config = config
        self.levels = nn.ModuleList(Level(config, k) for k in range(3))
        self.head = nn.Linear(config.widths[-1], config.classes)
        self.context_len = None

    # ---- training -------------------------------------------------------------------------

    def forward(self, roll: torch.Tensor, real: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training loss of class rolls ``(B, 128, T)`` (T a multiple of 16, at most roll_len).

        ``real`` ``(B, 128, T)`` marks unpadded cells (default all); ``labels`` ``(B,)`` are
        condition labels (default 0). Returns ``loss`` (mean nats over scored cells), ``cells``
        (scored cells), ``loss_sum`` and per-level ``level{k}_mask_ratio`` / ``level{k}_units``.
        """
        b, h, t = roll.shape
        self._check_shape(h, t)
        dev = roll.device
        real = torch.ones_like(roll, dtype=torch.float32) if real is None else real.float()
        labels = torch.zeros(b, dtype=torch.long, device=dev) if labels is None else labels.long()
        if self.training and self.config.cond_drop > 0:
            labels = torch.where(torch.rand(b, device=dev) < self.config.cond_drop, 0, labels)
        flat_t, flat_r = (roll * (real > 0)).reshape(-1), real.reshape(-1)
        cells = torch.arange(b * h * t, device=dev).reshape(b, h, t)
        cond = self.levels[0].label(labels)[:, None]
        stats: dict[str, torch.Tensor] = {}
        loss_sum, count = self._train_level(0, cells, cond, flat_t, flat_r, stats, t)
        stats.update(loss=loss_sum / count.clamp(min=1), loss_sum=loss_sum, cells=count)
        return stats

    def _train_level(self, k: int, cells: torch.Tensor, cond: torch.Tensor, target: torch.Tensor,
                     real: torch.Tensor, stats: dict, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        level = self.levels[k]
        units = split_units(cells, level.side).flatten(2)  # (N, u, cells)
        n, u, _ = units.shape
        vals, rmask = target[units].float() / self.config.velocity_bins, real[units]
        unit_real = rmask.amax(-1) > 0
        if level.ar:
            chosen = unit_real
            visible = torch.ones_like(chosen)
        else:
            ratio = torch.nn.init.trunc_normal_(torch.empty(n, device=cells.device), 1.0,
                                                self.config.mask_std, 0.0, 1.0)
            n_real = unit_real.sum(1)
            n_mask = torch.clamp(torch.ceil(ratio * n_real), min=1).minimum(n_real)
            prio = torch.where(unit_real, torch.rand(n, u, device=cells.device), -1.0)
            rank = prio.argsort(1, descending=True).argsort(1)
            chosen = (rank < n_mask[:, None]) & unit_real
            visible = ~chosen
            stats[f"level{k}_mask_ratio"] = (n_mask.float() / n_real.clamp(min=1)).mean().detach()
        stats[f"level{k}_units"] = chosen.sum().detach()
        out = level(vals, rmask, visible, cond, units[..., 0] // steps % PITCHES)
        rows, idx = chosen.nonzero(as_tuple=True)
        if k == 2:
            cell = units[rows, idx, 0]
            logits = self.head(out[rows, idx]).float()
            w = real[cell]
            ce = F.cross_entropy(logits, target[cell], reduction="none")
            return (ce * w).sum(), w.sum()
        child_cells = units[rows, idx].reshape(-1, level.side, level.side)
        child_cond = level.child_cond(out, rows, idx, self.levels[k + 1])
        return self._train_level(k + 1, child_cells, child_cond, target, real, stats, steps)

    def _check_shape(self, h: int, t: int) -> None:
        if h != PITCHES or t % 16 or not 0 < t <= self.config.roll_len:
            raise ValueError(f"rolls must be (B, 128, T) with T a multiple of 16 in "
                             f"(0, {self.config.roll_len}], got (., {h}, {t})")

    # ---- sampling -------------------------------------------------------------------------

    def _run_level(self, k: int, cells: torch.Tensor, cond: torch.Tensor, ctx: _Ctx) -> None:
        """Fill the unknown cells of regions ``cells`` ``(N, H, W)`` at level ``k`` and below."""
        level = self.levels[k]
        units = split_units(cells, level.side).flatten(2)
        n, u, _ = units.shape
        dev = cells.device
        known_unit = ctx.known[units].all(-1)
        filled = known_unit.clone()
        if level.ar:
            schedule = [torch.arange(u, device=dev)[None].eq(i).expand(n, u) & ~known_unit for i in range(u)]
        else:
            steps = max(1, int(ctx.num_iter[k]))
            prio = torch.rand(n, u, device=dev)
            n_unknown = (~known_unit).sum(1)
            schedule = []
        for s in range(len(schedule) if level.ar else steps):
            if level.ar:
                chosen = schedule[s]
            else:
                left = torch.floor(n_unknown * math.cos(math.pi / 2 * (s + 1) / steps)).long()
                masked = ~filled
                todo = masked.sum(1) - left
                score = torch.where(masked, prio, -1.0)
                rank = score.argsort(1, descending=True).argsort(1)
                chosen = (rank < todo[:, None]) & masked
            if not chosen.any():
                continue
            vals = ctx.canvas[units].float() / self.config.velocity_bins
            rmask = ctx.real[units] * ctx.done[units]  # not yet generated cells enter as padding
            visible, pitch = filled, units[..., 0] // ctx.steps % PITCHES
            if ctx.doubled:
                vals, rmask, visible = vals.repeat(2, 1, 1), rmask.repeat(2, 1, 1), visible.repeat(2, 1)
                pitch = pitch.repeat(2, 1)
            out = level(vals, rmask, visible, cond, pitch)
            rows, idx = chosen.nonzero(as_tuple=True)
            rows2 = torch.cat([rows, rows + n]) if ctx.doubled else rows
            idx2 = idx.repeat(2) if ctx.doubled else idx
            if k == 2:
                self._emit(out[rows2, idx2], units[rows, idx, 0], ctx)
            else:
                child_cells = units[rows, idx].reshape(-1, level.side, level.side)
                self._run_level(k + 1, child_cells, level.child_cond(out, rows2, idx2, self.levels[k + 1]), ctx)
            filled |= chosen
            if ctx.on_frame:
                ctx.on_frame(k)

    def _emit(self, h: torch.Tensor, cell: torch.Tensor, ctx: _Ctx) -> None:
        logits = self.head(h).float()
        if ctx.doubled:
            cond, uncond = logits.chunk(2)
            logits = guided_logits(cond, uncond, ctx.cfg)
        logits[:, 0] += ctx.sparsity_bias
        logits = logits / ctx.temperature
        known = ctx.known[cell]
        if ctx.teacher is not None:
            value = ctx.teacher[cell]
            lp = torch.log_softmax(logits, -1).gather(1, value[:, None])[:, 0]
            lp = lp * (~known) * ctx.real[cell]
            per_roll = ctx.canvas.numel() // ctx.n
            ctx.logp.index_add_(0, cell // per_roll, lp.double())
        else:
            value = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]
        ctx.canvas[cell] = torch.where(known, ctx.canvas[cell], value)
        ctx.done[cell] = True

    def _pass(self, canvas: torch.Tensor, known: torch.Tensor, labels: torch.Tensor, ctx_kw: dict,
              real: torch.Tensor | None = None, teacher: torch.Tensor | None = None,
              on_frame: Callable[[torch.Tensor], None] | None = None) -> _Ctx:
        """One pass over ``(B, 128, T)`` canvases with T <= roll_len."""
        b, h, t = canvas.shape
        self._check_shape(h, t)
        dev = canvas.device
        ctx = _Ctx(canvas=torch.where(known, canvas, 0).reshape(-1).clone(), known=known.reshape(-1),
                   real=(torch.ones_like(canvas, dtype=torch.float32) if real is None else real.float()).reshape(-1),
                   done=known.reshape(-1).clone(), n=b, steps=t, **ctx_kw)
        if teacher is not None:
            ctx.teacher = teacher.reshape(-1)
            ctx.logp = torch.zeros(b, dtype=torch.float64, device=dev)
        if on_frame:
            ctx.on_frame = lambda k: on_frame(self._frame(ctx, b, t))
        emb = self.levels[0].label
        cond = emb(labels)[:, None]
        if ctx.doubled:
            cond = torch.cat([cond, emb(torch.zeros_like(labels))[:, None]])
        cells = torch.arange(b * h * t, device=dev).reshape(b, h, t)
        self._run_level(0, cells, cond, ctx)
        return ctx

    @staticmethod
    def _frame(ctx: _Ctx, b: int, t: int) -> torch.Tensor:
        """Canvas snapshot: classes where done, -1 where not generated yet."""
        return torch.where(ctx.done, ctx.canvas, -1).reshape(b, PITCHES, t).cpu().clone()

    @torch.no_grad()
    def sample(self, steps: int, *, batch: int = 1, labels: torch.Tensor | None = None,
               roll: torch.Tensor | None = None, known: torch.Tensor | None = None, cfg: float = 1.0,
               temperature: float = 1.0, sparsity_bias: float = 0.0,
               num_iter: tuple[int, ...] | list[int] | None = None,
               on_frame: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        """Class rolls ``(batch, 128, steps)`` for any ``steps`` >= 1.

        ``roll`` (classes) with ``known`` (bool, same shape, or ``(128, steps)``) fixes cells:
        those come back exactly. Lengths that are not multiples of 16 are padded and cropped
        back; rolls longer than ``roll_len`` are generated in windows that overlap by half,
        each conditioned on what came before. ``on_frame`` receives a ``(batch, 128, steps)``
        snapshot (-1 = not generated yet) after every refinement step of every level.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        dev = next(self.parameters()).device
        if roll is not None:
            roll = roll.to(dev).long()
            batch = roll.shape[0] if roll.ndim == 3 else batch
        pad = -(-steps // 16) * 16
        canvas = torch.zeros(batch, PITCHES, pad, dtype=torch.long, device=dev)
        fixed = torch.zeros(batch, PITCHES, pad, dtype=torch.bool, device=dev)
        if (roll is None) != (known is None):
            raise ValueError("roll and known go together (known cells need their values)")
        if roll is not None:
            roll = roll.expand(batch, -1, -1)
            known = known.to(dev).bool().expand(batch, -1, -1)
            if roll.shape[-1] < steps or known.shape[-1] < steps:
                raise ValueError(f"roll and known need at least {steps} steps, got {roll.shape[-1]}")
            canvas[..., :steps] = roll[..., :steps]
            fixed[..., :steps] = known[..., :steps]
        labels = torch.zeros(batch, dtype=torch.long, device=dev) if labels is None else labels.to(dev).long()
        kw = dict(cfg=float(cfg), temperature=float(temperature), sparsity_bias=float(sparsity_bias),
                  num_iter=tuple(num_iter or self.config.num_iter))
        w = self.config.roll_len
        starts = [0] if pad <= w else list(range(0, pad - w, w // 2)) + [pad - w]
        done = fixed.clone()
        for s in starts:
            e = min(pad, s + w)

            def frame(win: torch.Tensor, s=s, e=e) -> None:
                full = torch.where(done, canvas, -1).cpu()
                full[..., s:e] = win
                on_frame(full[..., :steps])

            ctx = self._pass(canvas[..., s:e], done[..., s:e], labels, kw, on_frame=frame if on_frame else None)
            canvas[..., s:e] = ctx.canvas.reshape(batch, PITCHES, e - s)
            done[..., s:e] = True
        return canvas[..., :steps]

    @torch.no_grad()
    def nll(self, roll: torch.Tensor, real: torch.Tensor | None = None, labels: torch.Tensor | None = None,
            num_iter: tuple[int, ...] | list[int] | None = None, known: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood in nats per roll ``(B,)`` of class rolls ``(B, 128, T)``,
        summed over real cells, under one random generation order (teacher-forced sampler).
        ``known`` cells are given as context and not scored (a conditional likelihood)."""
        b = roll.shape[0]
        pad = torch.zeros_like(roll, dtype=torch.bool) if real is None else real <= 0
        known = pad if known is None else pad | known.bool().expand_as(pad)
        labels = torch.zeros(b, dtype=torch.long, device=roll.device) if labels is None else labels.long()
        kw = dict(num_iter=tuple(num_iter or self.config.num_iter))
        ctx = self._pass(torch.where(pad, 0, roll.long()), known, labels, kw, real=real, teacher=roll.long())
        return -ctx.logp


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
