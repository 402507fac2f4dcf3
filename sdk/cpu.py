"""The CPU this process runs on, described exactly enough to tell its generations apart.

"AMD EPYC" alone names several generations (Zen 3 has AVX2 only, Zen 4 adds AVX-512 and VNNI), and
which precision is fastest depends on them: benchmarks record this description, and the SDK keys
its per-machine precision choice on it.
"""

from __future__ import annotations

import hashlib
import platform
from typing import Any

#: The instruction-set flags that decide which int8 and fp32 kernels onnxruntime can use.
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
             "amx_bf16")


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU exactly: vendor, model name, family/model/stepping and the SIMD flags that matter
    (from /proc/cpuinfo, or `cpuinfo` when given)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    info: dict[str, Any] = {"model_name": fields.get("model name") or platform.processor() or "unknown", "vendor": fields.get("vendor_id"),
            "family": fields.get("cpu family"), "model": fields.get("model"), "stepping": fields.get("stepping"),
            "flags": [f for f in CPU_FLAGS if f in flags]}
    info["summary"] = (f"{info['model_name']} (family {info['family']}, model {info['model']}, stepping {info['stepping']}; "
                       f"{' '.join(info['flags']) or 'no AVX2'})")
    return info


def cpu_key(extra: str = "") -> str:
    """A short stable key of this CPU (and `extra`, e.g. the onnxruntime version and threads)."""
    info = cpu_info()
    text = "|".join(str(info[k]) for k in ("vendor", "model_name", "family", "model", "stepping")) + "|" + " ".join(info["flags"])
    return hashlib.sha256(f"{text}|{extra}".encode()).hexdigest()[:16]
