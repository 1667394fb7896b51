"""Device, seeding, autocast and the facts about the environment that a run record keeps."""
from __future__ import annotations

import contextlib
import os
import platform
import random
import subprocess
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ..errors import SaflexError

TRACKED_PACKAGES = ("torch", "torchvision", "numpy", "medmnist", "timm", "open_clip_torch",
                    "scikit-learn", "pandas", "saflex")


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device (refused in one line if unknown or absent), else cuda if present, else cpu."""
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise SaflexError(f"--device {requested!r} is not a torch device: give cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SaflexError(f"--device {requested}: this machine has no CUDA GPU (torch.cuda.is_available() is False); "
                          f"use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SaflexError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise SaflexError(f"--device {requested}: saflex runs on cpu or cuda")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of a run's `precision` on `device`; None: full precision.
    auto is bf16 on CUDA (native on Ampere and later) and fp32 on the CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def full_precision(device: torch.device, precision: str = "auto") -> bool:
    return autocast_dtype(device, precision) is None


def autocast(device: torch.device, precision: str = "auto"):
    """The autocast context of a run's forwards, training and evaluation (a no-op at full precision)."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def loss_scaler(device: torch.device, precision: str = "auto") -> torch.amp.GradScaler:
    """fp16's loss scaler (its narrow range underflows small gradients); disabled, and so a
    pass-through, at every other precision. Works on the CPU too (torch >= 2.3)."""
    return torch.amp.GradScaler(device.type, enabled=autocast_dtype(device, precision) == torch.float16)


CUBLAS_WORKSPACE = ":4096:8"  # what torch's deterministic cuBLAS needs (CUDA >= 10.2)


def prepare_determinism(enabled: bool) -> None:
    """Set CUBLAS_WORKSPACE_CONFIG for a deterministic run. cuBLAS reads it when CUDA is first used
    in the process, so it must be set before that: the grid calls this before any CUDA work (and
    worker processes inherit it)."""
    if not enabled or os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
        return
    if torch.cuda.is_initialized():
        warnings.warn("CUBLAS_WORKSPACE_CONFIG is set after CUDA was first used in this process: cuBLAS may not "
                      f"be deterministic; set CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} before starting", stacklevel=2)
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE


@contextlib.contextmanager
def deterministic_mode(enabled: bool):
    """torch's deterministic algorithms (an op without a deterministic kernel raises), cuDNN
    deterministic and not benchmarking, for the duration of a run; the process's settings are
    restored after it. Yields what was in force, for the run's record (None when not enabled)."""
    if not enabled:
        yield None
        return
    prepare_determinism(True)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield {"use_deterministic_algorithms": True, "cudnn_deterministic": True, "cudnn_benchmark": False,
               "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def on_device(model: torch.nn.Module, device: torch.device, setting: str = "auto") -> torch.nn.Module:
    """The model on `device`, in the memory format of the run's `memory_format` setting.

    auto: BatchNorm CNNs channels-last on CUDA. Measured on an H100
    (saflex_cli/resources/benchmarks/overhead-cuda.json, 'channels_last'): it cuts the plain step
    by 16% and the exact SAflex step by 14% on ResNet-18 (28), by 41% and 21% on ResNet-50 (224).
    On the CPU auto stays contiguous: the committed study records were made so, and channels-last
    changes rounding (docs/performance.md measures it there). Transformers (CLIP's one patch
    convolution) are left as they are.
    """
    return model.to(device).to(memory_format=memory_format(model, device, setting))


def memory_format(model: torch.nn.Module, device: torch.device, setting: str = "auto") -> torch.memory_format:
    if setting == "contiguous":
        return torch.contiguous_format
    batchnorm_cnn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    if batchnorm_cnn and (setting == "channels-last" or device.type == "cuda"):
        return torch.channels_last
    return torch.preserve_format


def memory_format_name(model: torch.nn.Module) -> str:
    """The layout the model's 4-d weights are in (what 'auto' resolved to on this device), for the record."""
    weights = [p for p in model.parameters() if p.dim() == 4]
    if weights and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in weights):
        return "channels-last"
    return "contiguous"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (one vendor's name covers several
    generations: 'AMD EPYC' is Zen 2 to Zen 4), or the architecture where /proc/cpuinfo is absent."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def cpu_capability() -> str:
    """The widest instruction set torch's CPU kernels dispatch to here (AVX2, AVX512, ...): kernels,
    and so rounding and speed, differ between them."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        return "unknown"


def nvidia_driver() -> str | None:
    """The NVIDIA driver's version (nvidia-smi's), which torch does not report; None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else None


def machine_kind(device: torch.device) -> dict[str, str]:
    """What decides a step's speed (and its rounding) on `device`: the GPU's model on CUDA, else the
    CPU's model and the instruction set torch dispatches to. Two timings compare only within one kind."""
    if device.type == "cuda":
        return {"gpu": torch.cuda.get_device_name(device)}
    return {"cpu_model": cpu_model(), "cpu_capability": cpu_capability()}


def hardware(device: torch.device) -> dict:
    """Everything a benchmark JSON says about its machine: the CPU's kind and threads, and on CUDA
    also the GPU's model with the CUDA and driver versions."""
    facts = {"cpu_model": cpu_model(), "cpu_capability": cpu_capability(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        facts.update(machine_kind(device), cuda=torch.version.cuda, driver=nvidia_driver())
    return facts


def device_description(device: torch.device) -> str:
    """What a number was measured on: the GPU's model, or the CPU's model, instruction set and threads."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()}, {cpu_capability()}, {torch.get_num_threads()} threads"


def git_commit() -> str | None:
    """HEAD of the project's checkout (+'-dirty'), or SAFLEX_GIT_COMMIT where the tree has no .git."""
    if os.environ.get("SAFLEX_GIT_COMMIT"):
        return os.environ["SAFLEX_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
