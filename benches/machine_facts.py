"""The machine facts every timing artifact records, as one line:
`CPU: MODEL; SIMD: FLAGS; N threads; load average A B C`.

Imported by the benchmark scripts' report blocks (`sys.path` holds benches/)."""
import os
import subprocess


def machine_line():
    """CPU model, SIMD flags (avx2/avx512f/avx512ifma), thread count and load average."""
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = subprocess.run("grep -o -w 'avx2\\|avx512f\\|avx512ifma' /proc/cpuinfo | sort -u | tr '\\n' ' '",
                           shell=True, capture_output=True, text=True).stdout.strip() or "none"
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    return f"CPU: {cpu}; SIMD: {flags}; {os.cpu_count()} threads; load average {load}"
