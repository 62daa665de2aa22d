//! A plaintext simulator of the CKKS evaluator for testing and planning
//! circuits: slots are `f64`, levels and scales are tracked exactly as the
//! real scheme does, encoded constants and plaintexts are rounded to integers
//! at their scale (the CKKS quantisation), every multiplication/rescale adds a
//! configurable rounding noise, a value that would wrap around the current
//! modulus is an error, and the rotation steps used are recorded (so tests
//! can check that a circuit only needs the Galois keys it declares). A
//! bootstrap is modelled by [`BootstrapModel`]: its output level and
//! scale exactly, its EvalMod range checked, its error added at the
//! model's worst-case amplitude.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{CircuitBackend, FusedBackend};
use crate::bootstrap::BootstrapModel;

/// Errors of the simulator (the conditions the real evaluator refuses).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Operands at different levels.
    #[error("simulated {operation}: level mismatch {a} vs {b}")]
    Level {
        /// Operation.
        operation: &'static str,
        /// Left level.
        a: usize,
        /// Right level.
        b: usize,
    },
    /// Operands at different scales.
    #[error("simulated {operation}: scale mismatch {a} vs {b}")]
    Scale {
        /// Operation.
        operation: &'static str,
        /// Left scale.
        a: f64,
        /// Right scale.
        b: f64,
    },
    /// Rescale or mod-down below level 0 / above the current level.
    #[error("simulated {operation}: cannot go from level {from} to {to}")]
    NoLevel {
        /// Operation.
        operation: &'static str,
        /// Current level.
        from: usize,
        /// Requested level.
        to: i64,
    },
    /// A value times its scale exceeds half the modulus at its level.
    #[error("simulated {operation}: |value| * scale = 2^{log2:.1} overflows modulus 2^{logq:.1}")]
    Overflow {
        /// Operation.
        operation: &'static str,
        /// log2 of the largest |value * scale|.
        log2: f64,
        /// log2 of the modulus.
        logq: f64,
    },
    /// A bootstrap outside the range its EvalMod was fitted for.
    #[error("simulated {0}")]
    Bootstrap(Box<crate::error::CkksError>),
    /// Wrong vector length.
    #[error("simulated encode: {got} values for {slots} slots")]
    Length {
        /// Given.
        got: usize,
        /// Slots.
        slots: usize,
    },
}

/// A simulated ciphertext: the slot values it decrypts to, its level and scale.
#[derive(Debug, Clone)]
pub struct SimCiphertext {
    /// Decrypted/decoded slot values.
    pub values: Vec<f64>,
    /// Level (`0..=max_level`).
    pub level: usize,
    /// Exact scale.
    pub scale: f64,
    /// Parts of the ciphertext it stands for: 2, or 3 after an
    /// unrelinearised product ([`super::FusedBackend`]).
    pub parts: usize,
}

/// A simulated plaintext.
#[derive(Debug, Clone)]
pub struct SimPlaintext {
    /// Quantised slot values.
    pub values: Vec<f64>,
    /// Level.
    pub level: usize,
    /// Scale.
    pub scale: f64,
}

/// The simulator.
#[derive(Debug)]
pub struct SimBackend {
    primes: Vec<f64>,
    slots: usize,
    noise: f64,
    rng: Mutex<ChaCha8Rng>,
    used_rotations: Mutex<BTreeSet<usize>>,
    key_switches: Mutex<usize>,
    bootstraps: Mutex<usize>,
}

impl SimBackend {
    /// A chain of primes (`primes[0]` the base prime), slot count, and the
    /// rounding-noise amplitude in units of the scale (e.g. 8.0: each rescale
    /// or key switch adds up to ±8/scale per slot; 0.0 for exact bookkeeping).
    pub fn new(primes: Vec<f64>, slots: usize, noise: f64, seed: u64) -> Self {
        Self {
            primes,
            slots,
            noise,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            used_rotations: Mutex::new(BTreeSet::new()),
            key_switches: Mutex::new(0),
            bootstraps: Mutex::new(0),
        }
    }

    /// A chain like SEAL's `coeff_mod_bit_sizes` (first = base prime, then one
    /// per level; the special prime is not part of the ciphertext chain):
    /// NTT-friendly-looking odd values `2^bits ± k * 2N + 1`, distinct.
    pub fn with_bit_sizes(bits: &[u32], log_n: u32, noise: f64, seed: u64) -> Self {
        let two_n = 2f64.powi(log_n as i32 + 1);
        let primes = bits
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let k = (i as f64 + 1.0) * if i % 2 == 0 { 1.0 } else { -1.0 };
                2f64.powi(b as i32) + k * two_n + 1.0
            })
            .collect();
        Self::new(primes, 1 << (log_n - 1), noise, seed)
    }

    /// The chain of real parameters (their exact ciphertext primes and
    /// slot count), so that scales computed for the real scheme are exact
    /// here too.
    pub fn for_params(params: &crate::CkksParameters, noise: f64, seed: u64) -> Self {
        let primes = params.q().iter().map(|&q| q as f64).collect();
        Self::new(primes, params.slots(), noise, seed)
    }

    /// Top level of the chain.
    pub fn max_level(&self) -> usize {
        self.primes.len() - 1
    }

    /// "Encrypts" values (zero-padded to the slot count) at `level`.
    pub fn encrypt_at(&self, values: &[f64], level: usize, scale: f64) -> SimCiphertext {
        let mut ct = self.encrypt(values, scale);
        ct.level = level.min(self.max_level());
        ct
    }

    /// "Encrypts" values (zero-padded to the slot count) at the top level.
    pub fn encrypt(&self, values: &[f64], scale: f64) -> SimCiphertext {
        let mut v = vec![0.0; self.slots];
        for (d, s) in v.iter_mut().zip(values) {
            *d = (s * scale).round() / scale;
        }
        let mut ct = SimCiphertext {
            values: v,
            level: self.max_level(),
            scale,
            parts: 2,
        };
        self.add_noise(&mut ct);
        ct
    }

    /// Rotation steps used so far.
    pub fn used_rotations(&self) -> BTreeSet<usize> {
        self.used_rotations
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// Key switches (rotations or relinearizations) performed so far; a
    /// hoisted batch of rotations counts one per rotation.
    pub fn key_switches(&self) -> usize {
        self.key_switches.lock().map(|g| *g).unwrap_or(0)
    }

    /// Bootstraps simulated so far.
    pub fn bootstraps(&self) -> usize {
        self.bootstraps.lock().map(|g| *g).unwrap_or(0)
    }

    /// A bootstrap as `model` describes it: the input's range is checked
    /// against EvalMod's ([`BootstrapModel::check`]); the result is at the
    /// model's output level and at `out_scale`, its slots the input's plus
    /// a uniform error of the model's worst-case amplitude
    /// ([`BootstrapModel::predicted_error`]).
    pub fn bootstrap(
        &self,
        ct: &SimCiphertext,
        model: &BootstrapModel,
        out_scale: f64,
    ) -> Result<SimCiphertext, SimError> {
        let amplitude = model
            .check_and_predict(ct.scale, &ct.values)
            .map_err(|e| SimError::Bootstrap(Box::new(e)))?;
        let mut out = SimCiphertext {
            values: ct.values.clone(),
            level: model.output_level().min(self.max_level()),
            scale: out_scale,
            parts: 2,
        };
        if let Ok(mut rng) = self.rng.lock() {
            for v in &mut out.values {
                *v += rng.random_range(-amplitude..=amplitude);
            }
        }
        if let Ok(mut g) = self.bootstraps.lock() {
            *g += 1;
        }
        self.check("bootstrap", out)
    }

    fn count_ks(&self, k: usize) {
        if let Ok(mut g) = self.key_switches.lock() {
            *g += k;
        }
    }

    fn add_noise(&self, ct: &mut SimCiphertext) {
        if self.noise == 0.0 {
            return;
        }
        if let Ok(mut rng) = self.rng.lock() {
            for v in ct.values.iter_mut() {
                *v += rng.random_range(-self.noise..=self.noise) / ct.scale;
            }
        }
    }

    fn check(&self, op: &'static str, ct: SimCiphertext) -> Result<SimCiphertext, SimError> {
        let logq: f64 = self.primes[..=ct.level].iter().map(|q| q.log2()).sum();
        let m = ct.values.iter().fold(0.0f64, |m, v| m.max(v.abs())) * ct.scale;
        if m > 0.0 && m.log2() >= logq - 1.0 {
            return Err(SimError::Overflow {
                operation: op,
                log2: m.log2(),
                logq,
            });
        }
        Ok(ct)
    }

    fn same(
        op: &'static str,
        a: &SimCiphertext,
        b: &SimCiphertext,
        check_scale: bool,
    ) -> Result<(), SimError> {
        if a.level != b.level {
            return Err(SimError::Level {
                operation: op,
                a: a.level,
                b: b.level,
            });
        }
        if check_scale && ((a.scale - b.scale).abs() > 1e-9 * a.scale.abs()) {
            return Err(SimError::Scale {
                operation: op,
                a: a.scale,
                b: b.scale,
            });
        }
        Ok(())
    }
}

impl CircuitBackend for SimBackend {
    type Ciphertext = SimCiphertext;
    type Plaintext = SimPlaintext;
    type Error = SimError;

    fn slots(&self) -> usize {
        self.slots
    }
    fn prime(&self, level: usize) -> f64 {
        self.primes.get(level).copied().unwrap_or(f64::NAN)
    }
    fn level(&self, ct: &SimCiphertext) -> usize {
        ct.level
    }
    fn scale(&self, ct: &SimCiphertext) -> f64 {
        ct.scale
    }
    fn set_scale(&self, ct: &mut SimCiphertext, scale: f64) -> Result<(), SimError> {
        // The core's rule: finite, positive, one bit of headroom below Q_l.
        let logq: f64 = self.primes[..=ct.level].iter().map(|q| q.log2()).sum();
        if !(scale.is_finite() && scale > 0.0 && scale.log2() + 1.0 < logq) {
            return Err(SimError::Overflow {
                operation: "set scale",
                log2: scale.log2(),
                logq,
            });
        }
        let r = ct.scale / scale;
        for v in ct.values.iter_mut() {
            *v *= r;
        }
        ct.scale = scale;
        Ok(())
    }
    fn add(&self, a: &SimCiphertext, b: &SimCiphertext) -> Result<SimCiphertext, SimError> {
        Self::same("add", a, b, true)?;
        let values = a.values.iter().zip(&b.values).map(|(x, y)| x + y).collect();
        self.check(
            "add",
            SimCiphertext {
                values,
                parts: a.parts.max(b.parts),
                ..a.clone()
            },
        )
    }
    fn sub(&self, a: &SimCiphertext, b: &SimCiphertext) -> Result<SimCiphertext, SimError> {
        Self::same("sub", a, b, true)?;
        let values = a.values.iter().zip(&b.values).map(|(x, y)| x - y).collect();
        self.check(
            "sub",
            SimCiphertext {
                values,
                parts: a.parts.max(b.parts),
                ..a.clone()
            },
        )
    }
    fn add_const(&self, ct: &SimCiphertext, c: f64) -> Result<SimCiphertext, SimError> {
        let cq = (c * ct.scale).round() / ct.scale;
        let values = ct.values.iter().map(|x| x + cq).collect();
        self.check(
            "add_const",
            SimCiphertext {
                values,
                ..ct.clone()
            },
        )
    }
    fn mul_const(
        &self,
        ct: &SimCiphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<SimCiphertext, SimError> {
        let cq = (c * const_scale).round() / const_scale;
        let values = ct.values.iter().map(|x| x * cq).collect();
        self.check(
            "mul_const",
            SimCiphertext {
                values,
                level: ct.level,
                scale: ct.scale * const_scale,
                parts: ct.parts,
            },
        )
    }
    fn mul_relin(&self, a: &SimCiphertext, b: &SimCiphertext) -> Result<SimCiphertext, SimError> {
        Self::same("mul_relin", a, b, false)?;
        self.count_ks(1);
        let values = a.values.iter().zip(&b.values).map(|(x, y)| x * y).collect();
        let mut ct = SimCiphertext {
            values,
            level: a.level,
            scale: a.scale * b.scale,
            parts: 2,
        };
        self.add_noise(&mut ct);
        self.check("mul_relin", ct)
    }
    fn rescale(&self, ct: &SimCiphertext) -> Result<SimCiphertext, SimError> {
        if ct.level == 0 {
            return Err(SimError::NoLevel {
                operation: "rescale",
                from: 0,
                to: -1,
            });
        }
        let mut out = SimCiphertext {
            values: ct.values.clone(),
            level: ct.level - 1,
            scale: ct.scale / self.primes[ct.level],
            parts: ct.parts,
        };
        self.add_noise(&mut out);
        self.check("rescale", out)
    }
    fn mod_down(&self, ct: &SimCiphertext, level: usize) -> Result<SimCiphertext, SimError> {
        if level > ct.level {
            return Err(SimError::NoLevel {
                operation: "mod_down",
                from: ct.level,
                to: level as i64,
            });
        }
        self.check(
            "mod_down",
            SimCiphertext {
                level,
                ..ct.clone()
            },
        )
    }
    fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<SimPlaintext, SimError> {
        if values.len() > self.slots {
            return Err(SimError::Length {
                got: values.len(),
                slots: self.slots,
            });
        }
        let mut v = vec![0.0; self.slots];
        for (d, s) in v.iter_mut().zip(values) {
            *d = (s * scale).round() / scale;
        }
        Ok(SimPlaintext {
            values: v,
            level,
            scale,
        })
    }
    fn add_plain(&self, ct: &SimCiphertext, pt: &SimPlaintext) -> Result<SimCiphertext, SimError> {
        if ct.level != pt.level {
            return Err(SimError::Level {
                operation: "add_plain",
                a: ct.level,
                b: pt.level,
            });
        }
        if ((ct.scale - pt.scale) / ct.scale).abs() > 1e-9 {
            return Err(SimError::Scale {
                operation: "add_plain",
                a: ct.scale,
                b: pt.scale,
            });
        }
        let values = ct
            .values
            .iter()
            .zip(&pt.values)
            .map(|(x, y)| x + y)
            .collect();
        self.check(
            "add_plain",
            SimCiphertext {
                values,
                ..ct.clone()
            },
        )
    }
    fn mul_plain(&self, ct: &SimCiphertext, pt: &SimPlaintext) -> Result<SimCiphertext, SimError> {
        if ct.level != pt.level {
            return Err(SimError::Level {
                operation: "mul_plain",
                a: ct.level,
                b: pt.level,
            });
        }
        let values = ct
            .values
            .iter()
            .zip(&pt.values)
            .map(|(x, y)| x * y)
            .collect();
        self.check(
            "mul_plain",
            SimCiphertext {
                values,
                level: ct.level,
                scale: ct.scale * pt.scale,
                parts: ct.parts,
            },
        )
    }
    fn rotate_hoisted(
        &self,
        ct: &SimCiphertext,
        steps: &[usize],
    ) -> Result<Vec<SimCiphertext>, SimError> {
        steps.iter().map(|&s| self.rotate(ct, s)).collect()
    }
    fn rotate(&self, ct: &SimCiphertext, step: usize) -> Result<SimCiphertext, SimError> {
        let n = self.slots;
        let s = step % n;
        if s == 0 {
            return Ok(ct.clone());
        }
        if let Ok(mut g) = self.used_rotations.lock() {
            g.insert(s);
        }
        self.count_ks(1);
        let values = (0..n).map(|i| ct.values[(i + s) % n]).collect();
        let mut out = SimCiphertext {
            values,
            level: ct.level,
            scale: ct.scale,
            parts: ct.parts,
        };
        self.add_noise(&mut out);
        Ok(out)
    }
}

impl FusedBackend for SimBackend {
    fn parts(&self, ct: &SimCiphertext) -> usize {
        ct.parts
    }
    fn mul_unrelinearized(
        &self,
        a: &SimCiphertext,
        b: &SimCiphertext,
    ) -> Result<SimCiphertext, SimError> {
        Self::same("mul", a, b, false)?;
        let values = a.values.iter().zip(&b.values).map(|(x, y)| x * y).collect();
        self.check(
            "mul",
            SimCiphertext {
                values,
                level: a.level,
                scale: a.scale * b.scale,
                parts: 3,
            },
        )
    }
    fn relinearize(&self, ct: &SimCiphertext) -> Result<SimCiphertext, SimError> {
        if ct.parts < 3 {
            return Ok(ct.clone());
        }
        self.count_ks(1);
        let mut out = SimCiphertext {
            parts: 2,
            ..ct.clone()
        };
        self.add_noise(&mut out);
        self.check("relinearize", out)
    }
    fn mul_relin_rescale(
        &self,
        a: &SimCiphertext,
        b: &SimCiphertext,
    ) -> Result<SimCiphertext, SimError> {
        self.rescale(&self.mul_relin(a, b)?)
    }
    fn zero(&self, level: usize, parts: usize, scale: f64) -> SimCiphertext {
        SimCiphertext {
            values: vec![0.0; self.slots],
            level,
            scale,
            parts,
        }
    }
    fn linear_combinations_into(
        &self,
        xs: &[&SimCiphertext],
        rows: &[Vec<(usize, f64)>],
        c: f64,
        accs: &mut [SimCiphertext],
    ) -> Result<(), SimError> {
        for (row, acc) in rows.iter().zip(accs.iter_mut()) {
            for &(i, w) in row {
                let Some(x) = xs.get(i) else {
                    return Err(SimError::Length {
                        got: i,
                        slots: xs.len(),
                    });
                };
                Self::same("linear combination", acc, x, false)?;
                // An integer coefficient on the encoded values: exact.
                let k = (w * c).round() * x.scale / acc.scale;
                for (a, v) in acc.values.iter_mut().zip(&x.values) {
                    *a += k * v;
                }
                acc.parts = acc.parts.max(x.parts);
            }
            *acc = self.check("linear combination", acc.clone())?;
        }
        Ok(())
    }
    fn check_relinearization(&self, _op: &'static str) -> Result<(), SimError> {
        Ok(())
    }
}
