//! The one linear-transform kernel: banded, strided diagonal transforms
//! (Halevi–Shoup) with baby-step giant-step and hoisted baby rotations,
//! plus plaintext dot products and slot sums. The per-image engine runs its
//! convolution and dense layers on it; [`dense_transform`] is a plaintext
//! matrix times an encrypted vector.
//!
//! A transform is `y = sum_t diag_t ⊙ rot_{t·u}(v)` over offsets `t` in a
//! few contiguous bands `[t_min, t_min + count)` with a stride (`unit`) `u`
//! (`rot_k(v)[i] = v[(i + k) mod n]`, a left rotation). With `t = s_j + b`
//! (`s_j = t_min + g j`, `b < g`) this is
//! `sum_j rot_{s_j u}( sum_b rot_{-s_j u}(diag_t) ⊙ rot_{b u}(v) )`: the
//! `g - 1` baby rotations of the input share one key-switch decomposition
//! (hoisting, when the backend implements it), the giant rotations act on
//! the partial sums, and the pre-rotated diagonals are encoded once at scale
//! `q_level`, so after the one rescale the output has exactly the input's
//! scale at `level - 1`. Optional rotate-and-add folds (for the folded dense
//! layout) and a plaintext bias follow the rescale.
//!
//! [`dense_layout`] lays a `rows x cols` matrix out either as a band of
//! generalised diagonals (`rows + cols - 1`, unit 1) or folded: rows padded
//! to a block of `rb` rows, `L = rb 2^m >= cols`, `z[i] = sum_{k < rb}
//! M[i mod rb][(i + k) mod L] v[(i + k) mod L]` (one band when `L = n`, where
//! the rotation itself wraps; two bands otherwise, the second reading the
//! wrap-around at offsets `k - L`), then `log2(L / rb)` folds. It picks the
//! layout with the lowest estimated cost. Input slots past `cols` are never
//! read (their diagonal entries are zero), so they may hold anything.

//!
//! Layouts of [`dense_transform`]: the input vector in slots `[0, cols)`;
//! slots past it are never read, so they may hold anything (the leftovers
//! of a previous transform included). The output is in slots `[0, rows)`;
//! with a band layout the slots past it are zero (up to noise), folded
//! ones hold partial sums ([`DiagTransform::output_zero_padded`]).

use std::collections::BTreeSet;

use rayon::prelude::*;

use super::{CircuitBackend, CircuitError, be};

/// Relative cost of one extra hoisted baby rotation against one full
/// rotation (decomposition shared).
pub const BABY_COST: f64 = 0.45;
/// Relative cost of one plaintext multiplication against one rotation.
pub const PLAIN_MUL_COST: f64 = 0.03;

/// A pre-encoded banded diagonal transform (see the module documentation).
#[derive(Debug)]
pub struct DiagTransform<P> {
    slots: usize,
    unit: usize,
    level: usize,
    baby: usize,
    /// Baby steps `b` (in units) some diagonal uses.
    baby_used: Vec<usize>,
    /// For each giant step: its rotation (slots, mod n) and `(b, diagonal)`.
    groups: Vec<(usize, Vec<(usize, P)>)>,
    folds: Vec<usize>,
    bias: Option<Bias<P>>,
    out_len: usize,
}

/// Bias values (full slot vector) and, when the output scale is known in
/// advance, the bias encoded at `(level - 1, scale)`.
type Bias<P> = (Vec<f64>, Option<(f64, P)>);

/// Shape of a transform before encoding: bands of offsets (in units),
/// folds, and the diagonal entries.
pub struct Layout {
    /// Stride of the offsets, in slots.
    pub unit: usize,
    /// `(t_min, count)` per band.
    pub bands: Vec<(i64, usize)>,
    /// Rotate-and-add steps after the rescale.
    pub folds: Vec<usize>,
    /// Meaningful output length (slots `[0, out_len)`).
    pub out_len: usize,
    /// Short description for logs (`band`, `folded rb=128 L=8192`).
    pub name: String,
}

impl Layout {
    /// Number of offsets over all bands.
    pub fn offsets(&self) -> usize {
        self.bands.iter().map(|b| b.1).sum()
    }

    /// Baby-step size minimising the estimated cost, and that cost.
    pub fn best_baby(&self) -> (usize, f64) {
        let total = self.offsets().max(1);
        let mut best = (1usize, f64::INFINITY);
        for g in 1..=total {
            let giants: usize = self
                .bands
                .iter()
                .map(|&(t0, c)| {
                    (0..c.div_ceil(g))
                        .filter(|j| t0 + (j * g) as i64 != 0)
                        .count()
                })
                .sum();
            let cost = BABY_COST * (g - 1) as f64
                + giants as f64
                + self.folds.len() as f64
                + PLAIN_MUL_COST * total as f64;
            if cost < best.1 {
                best = (g, cost);
            }
        }
        best
    }
}

fn rot(d: i64, n: usize) -> usize {
    d.rem_euclid(n as i64) as usize
}

impl<P: Send> DiagTransform<P> {
    /// Encodes the transform for ciphertexts at `level` (>= 1). `diag(t)`
    /// returns the unrotated diagonal of offset `t·unit` (length `slots`);
    /// all-zero diagonals are skipped. `bias` (full slot vector) is added
    /// after the rescale; `out_scale`, when given, lets it be encoded now.
    pub fn new<B, F>(
        backend: &B,
        layout: &Layout,
        level: usize,
        diag: F,
        bias: Option<Vec<f64>>,
        out_scale: Option<f64>,
    ) -> Result<Self, CircuitError>
    where
        B: CircuitBackend<Plaintext = P> + Sync,
        F: Fn(i64) -> Vec<f64> + Sync,
    {
        let n = backend.slots();
        if level == 0 {
            return Err(CircuitError::DepthExhausted {
                needed: 1,
                available: 0,
            });
        }
        let (g, _) = layout.best_baby();
        let u = layout.unit as i64;
        let scale = backend.prime(level);
        // (giant index, band start, b) for every offset.
        let mut jobs = Vec::new();
        for &(t0, count) in &layout.bands {
            for idx in 0..count {
                let j = idx / g;
                jobs.push((t0 + (j * g) as i64, idx % g, t0 + idx as i64));
            }
        }
        let encoded: Vec<Option<(i64, usize, P)>> = jobs
            .par_iter()
            .map(|&(s, b, t)| {
                let dv = diag(t);
                if dv.iter().all(|&x| x == 0.0) {
                    return Ok(None);
                }
                // Pre-rotated by -s·u: slot (i + s u) mod n holds diag[i].
                let mut v = vec![0.0; n];
                for (i, &x) in dv.iter().enumerate().take(n) {
                    if x != 0.0 {
                        v[rot(i as i64 + s * u, n)] = x;
                    }
                }
                let pt = backend
                    .encode(&v, level, scale)
                    .map_err(be("diagonal transform encode"))?;
                Ok(Some((s, b, pt)))
            })
            .collect::<Result<_, CircuitError>>()?;
        let mut groups: Vec<(i64, Vec<(usize, P)>)> = Vec::new();
        for (s, b, pt) in encoded.into_iter().flatten() {
            match groups.last_mut() {
                Some((gs, list)) if *gs == s => list.push((b, pt)),
                _ => groups.push((s, vec![(b, pt)])),
            }
        }
        let baby_used: BTreeSet<usize> = groups
            .iter()
            .flat_map(|(_, l)| l.iter().map(|(b, _)| *b))
            .collect();
        let groups = groups
            .into_iter()
            .map(|(s, l)| (rot(s * u, n), l))
            .collect();
        let bias = match bias {
            None => None,
            Some(mut v) => {
                v.resize(n, 0.0);
                let pre = match out_scale {
                    Some(s) => Some((
                        s,
                        backend
                            .encode(&v, level - 1, s)
                            .map_err(be("diagonal transform bias"))?,
                    )),
                    None => None,
                };
                Some((v, pre))
            }
        };
        Ok(Self {
            slots: n,
            unit: layout.unit,
            level,
            baby: g,
            baby_used: baby_used.into_iter().collect(),
            groups,
            folds: layout.folds.clone(),
            bias,
            out_len: layout.out_len,
        })
    }

    /// Level the input must be at (a higher one is brought down).
    pub fn level(&self) -> usize {
        self.level
    }
    /// Meaningful output length.
    pub fn out_len(&self) -> usize {
        self.out_len
    }
    /// Whether the slots past [`Self::out_len`] are zero (no folds): what
    /// [`inner_sum`] and [`dot_plain`] need of their input.
    pub fn output_zero_padded(&self) -> bool {
        self.folds.is_empty()
    }
    /// Baby-step size `g`.
    pub fn baby_steps(&self) -> usize {
        self.baby
    }
    /// Number of encoded diagonals.
    pub fn diagonal_count(&self) -> usize {
        self.groups.iter().map(|g| g.1.len()).sum()
    }
    /// Rotations one application performs (baby + giant + folds).
    pub fn rotation_count(&self) -> usize {
        self.baby_used.iter().filter(|&&b| b != 0).count()
            + self.groups.iter().filter(|g| g.0 != 0).count()
            + self.folds.len()
    }

    /// The left rotation steps (in `1..slots`) the transform uses: generate
    /// Galois keys for exactly these.
    pub fn rotation_steps(&self) -> BTreeSet<usize> {
        self.baby_used
            .iter()
            .map(|&b| (b * self.unit) % self.slots)
            .chain(self.groups.iter().map(|g| g.0))
            .chain(self.folds.iter().copied())
            .filter(|&s| s % self.slots != 0)
            .collect()
    }

    /// `y = M v + bias`: input at level >= [`Self::level`], output at
    /// `level - 1` with the input's exact scale. Giant-step groups run in
    /// parallel on the rayon pool.
    pub fn apply<B>(&self, backend: &B, ct: &B::Ciphertext) -> Result<B::Ciphertext, CircuitError>
    where
        B: CircuitBackend<Plaintext = P> + Sync,
        B::Ciphertext: Send + Sync,
        P: Sync,
    {
        let lvl = backend.level(ct);
        if lvl < self.level {
            return Err(CircuitError::LevelMismatch {
                ct_level: lvl,
                pt_level: self.level,
            });
        }
        let lowered;
        let ct = if lvl > self.level {
            lowered = backend
                .mod_down(ct, self.level)
                .map_err(be("diagonal transform mod-down"))?;
            &lowered
        } else {
            ct
        };
        let in_scale = backend.scale(ct);
        let steps: Vec<usize> = self
            .baby_used
            .iter()
            .map(|&b| (b * self.unit) % self.slots)
            .collect();
        let rotated = backend
            .rotate_hoisted(ct, &steps)
            .map_err(be("diagonal transform baby steps"))?;
        let mut baby: Vec<Option<&B::Ciphertext>> = vec![None; self.baby];
        for (b, c) in self.baby_used.iter().zip(&rotated) {
            baby[*b] = Some(c);
        }
        let baby = &baby;
        let partials: Vec<B::Ciphertext> = self
            .groups
            .par_iter()
            .map(
                |(gs, list)| -> Result<Option<B::Ciphertext>, CircuitError> {
                    let mut inner: Option<B::Ciphertext> = None;
                    for (b, pt) in list {
                        let Some(src) = baby[*b] else { continue };
                        let m = backend
                            .mul_plain(src, pt)
                            .map_err(be("diagonal transform mul_plain"))?;
                        inner = Some(match inner {
                            None => m,
                            Some(a) => backend.add(&a, &m).map_err(be("diagonal transform add"))?,
                        });
                    }
                    match inner {
                        Some(c) if *gs != 0 => backend
                            .rotate(&c, *gs)
                            .map(Some)
                            .map_err(be("diagonal transform giant step")),
                        other => Ok(other),
                    }
                },
            )
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        let mut acc: Option<B::Ciphertext> = None;
        for p in partials {
            acc = Some(match acc {
                None => p,
                Some(a) => backend.add(&a, &p).map_err(be("diagonal transform add"))?,
            });
        }
        let acc = match acc {
            Some(a) => a,
            None => backend
                .mul_const(ct, 0.0, backend.prime(self.level))
                .map_err(be("diagonal transform zero matrix"))?,
        };
        let mut out = backend
            .rescale(&acc)
            .map_err(be("diagonal transform rescale"))?;
        backend
            .set_scale(&mut out, in_scale)
            .map_err(be("diagonal transform scale"))?;
        for &h in &self.folds {
            let r = backend
                .rotate(&out, h)
                .map_err(be("diagonal transform fold"))?;
            out = backend
                .add(&out, &r)
                .map_err(be("diagonal transform fold"))?;
        }
        if let Some((values, pre)) = &self.bias {
            out = match pre {
                Some((s, pt)) if *s == in_scale => backend.add_plain(&out, pt),
                _ => {
                    let pt = backend
                        .encode(values, self.level - 1, in_scale)
                        .map_err(be("diagonal transform bias"))?;
                    backend.add_plain(&out, &pt)
                }
            }
            .map_err(be("diagonal transform bias"))?;
        }
        Ok(out)
    }
}

/// Layout of a `rows x cols` dense matrix on `slots` slots: the cheapest of
/// the band and the folded layouts (see the module documentation), with
/// the row-block size `rb` (`rows` or its next power of two) and `L`.
pub fn dense_layout(rows: usize, cols: usize, slots: usize) -> Option<(Layout, usize, usize)> {
    let mut cands: Vec<(Layout, usize, usize)> = Vec::new();
    if rows + cols - 1 <= slots {
        cands.push((
            Layout {
                unit: 1,
                bands: vec![(-(rows as i64 - 1), rows + cols - 1)],
                folds: Vec::new(),
                out_len: rows,
                name: "band".into(),
            },
            0,
            0,
        ));
    }
    if rows < cols {
        let mut rbs = vec![rows, rows.next_power_of_two()];
        rbs.dedup();
        for rb in rbs {
            let mut l = rb;
            while l < cols {
                l *= 2;
            }
            while l <= slots {
                let bands = if l == slots {
                    vec![(0, rb)]
                } else {
                    vec![(0, rb), (-(l as i64), rb)]
                };
                let mut folds = Vec::new();
                let mut h = l / 2;
                while h >= rb {
                    folds.push(h);
                    h /= 2;
                }
                cands.push((
                    Layout {
                        unit: 1,
                        bands,
                        folds,
                        out_len: rows,
                        name: format!("folded rb={rb} L={l}"),
                    },
                    rb,
                    l,
                ));
                l *= 2;
            }
        }
    }
    cands
        .into_iter()
        .min_by(|a, b| a.0.best_baby().1.total_cmp(&b.0.best_baby().1))
}

/// Diagonal of offset `t` of `matrix` (`rows x cols` row-major) for a
/// layout of [`dense_layout`] (`rb == 0`: band).
pub fn dense_diagonal(
    matrix: &[f64],
    rows: usize,
    cols: usize,
    rb: usize,
    l: usize,
    slots: usize,
    t: i64,
) -> Vec<f64> {
    let at = |r: usize, c: usize| matrix.get(r * cols + c).copied().unwrap_or(0.0);
    let mut v = vec![0.0; slots];
    if rb == 0 {
        for (r, slot) in v.iter_mut().enumerate().take(rows) {
            let c = r as i64 + t;
            if c >= 0 && (c as usize) < cols {
                *slot = at(r, c as usize);
            }
        }
        return v;
    }
    for (i, slot) in v.iter_mut().enumerate().take(l) {
        let r = i % rb;
        if r >= rows {
            continue;
        }
        if t >= 0 {
            let j = i + t as usize;
            if j < l {
                if j < cols {
                    *slot = at(r, j);
                }
            } else if l == slots && j - l < cols {
                *slot = at(r, j - l);
            }
        } else {
            let k = (t + l as i64) as usize;
            if i + k >= l && i + k - l < cols {
                *slot = at(r, i + k - l);
            }
        }
    }
    v
}

/// A plaintext `rows x cols` matrix (row-major) times an encrypted vector,
/// pre-encoded for ciphertexts at `level` (>= 1: the transform consumes one
/// level) in the cheapest layout of [`dense_layout`]; no bias.
pub fn dense_transform<B>(
    backend: &B,
    matrix: &[f64],
    rows: usize,
    cols: usize,
    level: usize,
) -> Result<DiagTransform<B::Plaintext>, CircuitError>
where
    B: CircuitBackend + Sync,
    B::Plaintext: Send,
{
    let n = backend.slots();
    let too_large = CircuitError::ShapeTooLarge {
        rows,
        cols,
        slots: n,
    };
    if rows == 0 || cols == 0 || rows > n || cols > n {
        return Err(too_large);
    }
    if matrix.len() != rows * cols {
        return Err(CircuitError::LengthMismatch {
            operation: "linear transform matrix",
            expected: rows * cols,
            got: matrix.len(),
        });
    }
    if level == 0 {
        return Err(CircuitError::DepthExhausted {
            needed: 1,
            available: 0,
        });
    }
    let (layout, rb, l) = dense_layout(rows, cols, n).ok_or(too_large)?;
    DiagTransform::new(
        backend,
        &layout,
        level,
        |t| dense_diagonal(matrix, rows, cols, rb, l, n, t),
        None,
        None,
    )
}

/// Rotation steps used by [`inner_sum`] for a vector of length `len`.
pub fn inner_sum_rotation_steps(len: usize) -> Vec<usize> {
    let mut s = Vec::new();
    let mut k = 1;
    while k < len {
        s.push(k);
        k <<= 1;
    }
    s
}

/// Sum of slots `[0, len)` into slot 0 (`ceil(log2 len)` rotations). Needs
/// slots `[len, 2^ceil(log2 len))` to be zero; the other output slots hold
/// partial sums (not zero).
pub fn inner_sum<B: CircuitBackend>(
    backend: &B,
    ct: &B::Ciphertext,
    len: usize,
) -> Result<B::Ciphertext, CircuitError> {
    let mut acc = ct.clone();
    for k in inner_sum_rotation_steps(len) {
        let r = backend.rotate(&acc, k).map_err(be("inner sum rotate"))?;
        acc = backend.add(&acc, &r).map_err(be("inner sum add"))?;
    }
    Ok(acc)
}

/// Dot product `<w, v>` of a plaintext vector with an encrypted vector in
/// slots `[0, w.len())` (zeros after): result in slot 0, at `level - 1`,
/// input scale. One plaintext multiply, `ceil(log2 len)` rotations.
pub fn dot_plain<B: CircuitBackend>(
    backend: &B,
    ct: &B::Ciphertext,
    w: &[f64],
) -> Result<B::Ciphertext, CircuitError> {
    let n = backend.slots();
    if w.is_empty() || w.len() > n {
        return Err(CircuitError::LengthMismatch {
            operation: "dot_plain",
            expected: n,
            got: w.len(),
        });
    }
    let level = backend.level(ct);
    if level == 0 {
        return Err(CircuitError::DepthExhausted {
            needed: 1,
            available: 0,
        });
    }
    let s = backend.scale(ct);
    let pt = backend
        .encode(w, level, backend.prime(level))
        .map_err(be("dot_plain encode"))?;
    let m = backend.mul_plain(ct, &pt).map_err(be("dot_plain mul"))?;
    let mut m = backend.rescale(&m).map_err(be("dot_plain rescale"))?;
    backend
        .set_scale(&mut m, s)
        .map_err(be("linear transform scale"))?;
    inner_sum(backend, &m, w.len())
}
