"""Device selection and per-device torch settings (CUDA, MPS, CPU), in one place.

    device = pick_device("auto")            # cuda > mps > cpu, or an explicit "cpu" / "cuda:1"
    dtype = autocast_dtype(device, "auto")  # bf16 on CUDA, None (plain fp32) elsewhere
    configure(device)                       # TF32 matmuls on CUDA
"""

from __future__ import annotations

import contextlib

import torch

from musicml import env

# Peak dense bf16 tensor-core throughput (FLOP/s) for MFU; matched on the device name.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; PCIe parts are lower (756e12) and reported as such below
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "L4": 121e12,
    "4090": 165e12,
    "3090": 71e12,
}


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then CPU; anything else is taken literally.

    Under torchrun the CUDA device is ``cuda:$LOCAL_RANK``.
    """
    if isinstance(preference, torch.device):
        return preference
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda", env.distributed().local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device, preference: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 on CUDA by default, None (fp32) elsewhere."""
    if preference == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"float32": None, "fp32": None, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[preference]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device``, or a no-op one when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure(device: torch.device) -> None:
    """Per-device global settings: TF32 matmuls and cuDNN on CUDA."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def want_compile(device: torch.device, preference: str | bool = "auto") -> bool:
    """torch.compile on CUDA by default, off on CPU/MPS (compile time dominates small runs)."""
    if preference == "auto":
        return device.type == "cuda"
    if isinstance(preference, str):
        return preference.lower() in ("1", "true", "yes", "on")
    return bool(preference)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def peak_flops(device: torch.device) -> float | None:
    """Peak bf16 FLOP/s of a CUDA device for MFU, or None when unknown / not CUDA."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name and "PCIe" in name:
        return 756e12
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in name:
            return flops
    return None
