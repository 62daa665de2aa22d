//! The machine a measurement ran on: CPU model, the SIMD features that
//! decide `tfhe-ntt`'s kernels (avx2, avx512f, avx512ifma), the kernels this
//! build runs on them, logical CPUs and the load average. Every timing artifact records these, because absolute
//! times and even ratios against SEAL change with them.
//!
//! Invariants: detection never fails — a field that cannot be read is
//! `"unknown"` or `None` — and the SIMD list is what the running process
//! can use (`is_x86_feature_detected!`), sorted, so it matches
//! `grep -o -w 'avx2\|avx512f\|avx512ifma' /proc/cpuinfo | sort -u`.

use serde::{Deserialize, Serialize};

/// The machine a run happened on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// CPU model name (from /proc/cpuinfo where available).
    pub cpu: String,
    /// Operating system and architecture.
    pub os: String,
    /// SIMD features the NTT kernels can use (subset of avx2, avx512f, avx512ifma).
    #[serde(default)]
    pub simd: Vec<String>,
    /// The kernels `tfhe-ntt` runs in this build on this CPU ([`ntt_kernels`]).
    #[serde(default)]
    pub ntt_kernels: String,
}

impl Machine {
    /// Describe the current machine.
    pub fn current() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpu_model(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            simd: simd_features(),
            ntt_kernels: ntt_kernels().into(),
        }
    }

    /// `CPU: <model>; SIMD: <features>`, the caption of timing tables.
    pub fn caption(&self) -> String {
        format!(
            "CPU: {}; SIMD: {}; NTT kernels: {}",
            self.cpu,
            simd_text(&self.simd),
            if self.ntt_kernels.is_empty() {
                "unknown"
            } else {
                &self.ntt_kernels
            }
        )
    }
}

/// The SIMD list as one space-separated word list, `none` when empty.
pub fn simd_text(simd: &[String]) -> String {
    if simd.is_empty() {
        "none of avx2/avx512f/avx512ifma".into()
    } else {
        simd.join(" ")
    }
}

/// CPU model name from `/proc/cpuinfo`, `"unknown"` where unreadable.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The SIMD features among avx2, avx512f and avx512ifma this process can use, sorted.
pub fn simd_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut v: Vec<String> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            v.push("avx2".into());
        }
        if std::is_x86_feature_detected!("avx512f") {
            v.push("avx512f".into());
        }
        if std::is_x86_feature_detected!("avx512ifma") {
            v.push("avx512ifma".into());
        }
    }
    v
}

/// The SIMD kernels `tfhe-ntt` dispatches to in this build on this CPU:
/// `avx512` when the build has the `avx512` feature (a default feature;
/// `--no-default-features` drops it) and the CPU has avx512f, else `avx2`
/// where the CPU has it, else `scalar`.
pub fn ntt_kernels() -> &'static str {
    let f = simd_features();
    let has = |x: &str| f.iter().any(|s| s == x);
    if slaf_ckks::AVX512_KERNELS && has("avx512f") {
        "avx512"
    } else if has("avx2") {
        "avx2"
    } else {
        "scalar"
    }
}

/// Keep freed ring buffers in the process instead of returning them to the
/// system at every free (glibc on Linux; a no-op returning false
/// elsewhere). Returns whether the setting was applied.
///
/// glibc's malloc serves every block of 128 KiB or more (one limb at
/// N = 2^14 is exactly 128 KiB) with its own `mmap` and unmaps it at free,
/// so each new limb costs page faults and the kernel's zeroing of its
/// pages: measured, that made up about 40 % of a ciphertext product. This
/// raises the mmap threshold to 32 MiB and the trim threshold to 512 MiB,
/// so freed limbs are reused; a process then keeps up to that much freed
/// memory. `slaf-he` calls it at start-up and `slaf_experiments::NotebookEnv::open`
/// for a notebook; a program of your own may call it once, first.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes two malloc parameters; it is called
        // with valid parameter codes and positive values, and glibc
        // serialises it with its own lock.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// End the process quietly when standard output is a closed pipe
/// (`slaf-he … | head`), as Unix tools do, instead of panicking with
/// "failed printing to stdout: Broken pipe": restores the default SIGPIPE
/// action, which Rust's runtime sets to "ignore" (Linux with glibc; a
/// no-op returning false elsewhere). Only for commands whose sole pipe is
/// standard output: a network client or server must keep SIGPIPE ignored,
/// so that a peer closing its socket is an error it reports, not a silent
/// death.
pub fn quiet_on_broken_pipe() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: signal() with a valid signal number and the default
        // disposition; called once at start-up, before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) != libc::SIG_ERR }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The first line of a timing artifact: the machine's caption, `threads`
/// threads and the load averages (`n/a` where unknown).
pub fn timing_caption(threads: usize) -> String {
    format!(
        "{}; {threads} threads; load average {}",
        Machine::current().caption(),
        load_averages().map_or("n/a".into(), |l| format!(
            "{:.2} {:.2} {:.2}",
            l[0], l[1], l[2]
        ))
    )
}

/// The 1-, 5- and 15-minute load averages (Linux), `None` elsewhere.
pub fn load_averages() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}
