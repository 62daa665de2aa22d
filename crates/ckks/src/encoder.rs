//! The CKKS encoder: N/2 complex (or real) slots <-> a plaintext
//! polynomial through the canonical embedding, computed with the O(N log N)
//! "special FFT" over the roots ζ^(5^j) (ζ = e^(iπ/N)). Slot j corresponds
//! to the root ζ^(5^j), so the automorphism X -> X^(5^r) rotates the slots
//! left by r and X -> X^(-1) conjugates them.

use super::context::CkksContext;
use super::error::CkksError;
use super::math::reduce_i64;
use super::ring::{Limb, RnsPoly};
use rayon::prelude::*;
use std::sync::Arc;

/// A complex number (re, im).
pub type Complex = (f64, f64);

/// An encoded plaintext: an NTT-domain RNS polynomial at a level, with its scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Plaintext {
    /// The polynomial (limbs q_0..q_level, NTT domain).
    pub(crate) poly: RnsPoly,
    /// Level = number of limbs - 1.
    pub(crate) level: usize,
    /// Exact scale.
    pub(crate) scale: f64,
}

impl Plaintext {
    /// Level.
    pub fn level(&self) -> usize {
        self.level
    }
    /// Scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Bytes of its residues.
    pub fn byte_size(&self) -> usize {
        self.poly.byte_size()
    }
}

/// Bits of margin kept below Q_level / 2 when encoding: a fresh plaintext
/// may use at most a quarter of the modulus, so that adding it to a
/// ciphertext of the same size (or the encryption noise) cannot wrap.
pub const ENCODE_MARGIN_BITS: f64 = 1.0;

/// Encoder bound to a context.
#[derive(Clone, Debug)]
pub struct Encoder {
    ctx: Arc<CkksContext>,
    /// ksi[k] = exp(2πik / 2N).
    ksi: Vec<Complex>,
    /// rot_group[j] = 5^j mod 2N.
    rot_group: Vec<usize>,
}

fn cmul(a: Complex, b: Complex) -> Complex {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn bit_reverse(v: &mut [Complex]) {
    let n = v.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j ^= bit;
        if i < j {
            v.swap(i, j);
        }
    }
}

impl Encoder {
    /// An encoder for the context's ring.
    pub fn new(ctx: &Arc<CkksContext>) -> Self {
        let n = ctx.params().n();
        let m = 2 * n;
        let ksi = (0..=m)
            .map(|k| {
                let t = 2.0 * std::f64::consts::PI * k as f64 / m as f64;
                (t.cos(), t.sin())
            })
            .collect();
        let mut rot_group = Vec::with_capacity(n / 2);
        let mut g = 1usize;
        for _ in 0..n / 2 {
            rot_group.push(g);
            g = g * 5 % m;
        }
        Self {
            ctx: Arc::clone(ctx),
            ksi,
            rot_group,
        }
    }

    fn m(&self) -> usize {
        2 * self.ctx.params().n()
    }

    /// Slots -> coefficients (inverse canonical embedding), in place.
    fn fft_special_inv(&self, vals: &mut [Complex]) {
        let size = vals.len();
        let m = self.m();
        let mut len = size;
        while len >= 1 {
            let lenh = len >> 1;
            let lenq = len << 2;
            let gap = m / lenq;
            let mut i = 0;
            while i < size {
                for j in 0..lenh {
                    let idx = (lenq - (self.rot_group[j] % lenq)) * gap;
                    let a = vals[i + j];
                    let b = vals[i + j + lenh];
                    let u = (a.0 + b.0, a.1 + b.1);
                    let v = cmul((a.0 - b.0, a.1 - b.1), self.ksi[idx]);
                    vals[i + j] = u;
                    vals[i + j + lenh] = v;
                }
                i += len;
            }
            len >>= 1;
        }
        bit_reverse(vals);
        let s = size as f64;
        for v in vals.iter_mut() {
            *v = (v.0 / s, v.1 / s);
        }
    }

    /// Coefficients -> slots (canonical embedding), in place.
    fn fft_special(&self, vals: &mut [Complex]) {
        let size = vals.len();
        let m = self.m();
        bit_reverse(vals);
        let mut len = 2;
        while len <= size {
            let lenh = len >> 1;
            let lenq = len << 2;
            let gap = m / lenq;
            let mut i = 0;
            while i < size {
                for j in 0..lenh {
                    let idx = (self.rot_group[j] % lenq) * gap;
                    let u = vals[i + j];
                    let v = cmul(vals[i + j + lenh], self.ksi[idx]);
                    vals[i + j] = (u.0 + v.0, u.1 + v.1);
                    vals[i + j + lenh] = (u.0 - v.0, u.1 - v.1);
                }
                i += len;
            }
            len <<= 1;
        }
    }

    /// Integer coefficients of the encoding of `values` at `scale`, checked
    /// against Q_level: max |coefficient| must stay below Q_level / 2 by
    /// [`ENCODE_MARGIN_BITS`] (else it wraps modulo Q and decodes to garbage).
    fn coefficients(
        &self,
        values: &[Complex],
        level: usize,
        scale: f64,
    ) -> Result<Vec<i64>, CkksError> {
        let n = self.ctx.params().n();
        let slots = n / 2;
        if values.len() > slots {
            return Err(CkksError::Encoding {
                detail: format!("{} values exceed the {slots} slots", values.len()),
            });
        }
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(CkksError::Encoding {
                detail: format!("scale {scale} must be finite and >= 1"),
            });
        }
        let mut v = vec![(0.0, 0.0); slots];
        v[..values.len()].copy_from_slice(values);
        if v.iter().any(|c| !c.0.is_finite() || !c.1.is_finite()) {
            return Err(CkksError::Encoding {
                detail: "a value is not finite".into(),
            });
        }
        let max_value = v
            .iter()
            .fold(0.0f64, |m, c| m.max(c.0.abs()).max(c.1.abs()));
        self.fft_special_inv(&mut v);
        let log_q = self.ctx.log_q(level);
        // Below Q/2 by the margin, and within i64 (2^62) for the conversion.
        let bound_bits = (log_q - 1.0 - ENCODE_MARGIN_BITS).min(62.0);
        let bound = 2f64.powf(bound_bits);
        let max_coeff = v.iter().fold(0.0f64, |m, c| {
            m.max((c.0 * scale).abs()).max((c.1 * scale).abs())
        });
        if max_coeff.round() >= bound {
            return Err(CkksError::EncodingOverflow {
                coeff_bits: max_coeff.log2(),
                max_value,
                scale_bits: scale.log2(),
                level,
                log_q,
                bound_bits,
            });
        }
        let mut coeffs = vec![0i64; n];
        for (i, c) in v.iter().enumerate() {
            coeffs[i] = (c.0 * scale).round() as i64;
            coeffs[i + slots] = (c.1 * scale).round() as i64;
        }
        Ok(coeffs)
    }

    /// The N (unscaled) coefficients of the encoding of real `values` (at
    /// most N/2; zero-padded): each at most `max |values|`, which a
    /// constant vector reaches. Bootstrapping's EvalMod sees them times
    /// `Δ / q_0`.
    pub fn real_coefficients(&self, values: &[f64]) -> Vec<f64> {
        let slots = self.ctx.params().slots();
        let mut v = vec![(0.0, 0.0); slots];
        for (d, &x) in v.iter_mut().zip(values) {
            d.0 = x;
        }
        self.fft_special_inv(&mut v);
        v.iter().map(|c| c.0).chain(v.iter().map(|c| c.1)).collect()
    }

    /// The largest |coefficient| of [`Self::real_coefficients`].
    pub fn max_coefficient(&self, values: &[f64]) -> f64 {
        self.real_coefficients(values)
            .iter()
            .fold(0f64, |m, c| m.max(c.abs()))
    }

    /// The slots (real parts) of the polynomial with the N (unscaled)
    /// coefficients `coeffs` (missing ones are zero): the inverse of
    /// [`Self::real_coefficients`] on real slot values.
    pub fn slots_of_coefficients(&self, coeffs: &[f64]) -> Vec<f64> {
        let slots = self.ctx.params().slots();
        let at = |i: usize| coeffs.get(i).copied().unwrap_or(0.0);
        let mut v: Vec<Complex> = (0..slots).map(|i| (at(i), at(i + slots))).collect();
        self.fft_special(&mut v);
        v.into_iter().map(|c| c.0).collect()
    }

    /// Encode complex values (at most N/2; the rest of the slots are zero)
    /// at `level` with `scale`.
    pub fn encode_complex(
        &self,
        values: &[Complex],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext, CkksError> {
        let max = self.ctx.params().max_level();
        if level > max {
            return Err(CkksError::Mismatch {
                op: "encode",
                detail: format!("level {level} above the chain's top level {max}"),
            });
        }
        let coeffs = self.coefficients(values, level, scale)?;
        Ok(self.plaintext_from_integers(&coeffs, level, scale))
    }

    /// A plaintext with the given integer coefficients (N of them) at
    /// `level`, read at `scale`.
    pub(crate) fn plaintext_from_integers(
        &self,
        coeffs: &[i64],
        level: usize,
        scale: f64,
    ) -> Plaintext {
        let m = self.ctx.q_moduli(level);
        let mut poly = RnsPoly {
            limbs: m
                .iter()
                .map(|md| Limb::collect(md, coeffs.iter().map(|&c| reduce_i64(c, md.q))))
                .collect(),
            ntt: false,
        };
        poly.make_ntt(m);
        Plaintext { poly, level, scale }
    }

    /// Encode real values at `level` with `scale`.
    pub fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext, CkksError> {
        let c: Vec<Complex> = values.iter().map(|&v| (v, 0.0)).collect();
        self.encode_complex(&c, level, scale)
    }

    /// Decode all N/2 slots as complex values.
    pub fn decode_complex(&self, pt: &Plaintext) -> Vec<Complex> {
        let n = self.ctx.params().n();
        let slots = n / 2;
        let m = self.ctx.q_moduli(pt.level);
        let mut p = pt.poly.clone();
        p.make_coeff(m);
        let crt = self.ctx.crt();
        let mut v: Vec<Complex> = (0..slots)
            .into_par_iter()
            .map_init(
                || (Vec::with_capacity(p.len()), Vec::with_capacity(p.len())),
                |(re, im), i| {
                    re.clear();
                    im.clear();
                    re.extend(p.limbs.iter().map(|l| l.get(i)));
                    im.extend(p.limbs.iter().map(|l| l.get(i + slots)));
                    (crt.centered(re) / pt.scale, crt.centered(im) / pt.scale)
                },
            )
            .collect();
        self.fft_special(&mut v);
        v
    }

    /// The N integer coefficients of a plaintext (centred CRT lift, as
    /// f64; not divided by the scale): what a decryption's noise analysis
    /// reads.
    pub fn centered_coefficients(&self, pt: &Plaintext) -> Vec<f64> {
        let m = self.ctx.q_moduli(pt.level);
        let mut p = pt.poly.clone();
        p.make_coeff(m);
        let crt = self.ctx.crt();
        (0..self.ctx.params().n())
            .map(|i| {
                let r: Vec<u64> = p.limbs.iter().map(|l| l.get(i)).collect();
                crt.centered(&r)
            })
            .collect()
    }

    /// Decode the real parts of all N/2 slots.
    pub fn decode(&self, pt: &Plaintext) -> Vec<f64> {
        self.decode_complex(pt).into_iter().map(|c| c.0).collect()
    }
}
