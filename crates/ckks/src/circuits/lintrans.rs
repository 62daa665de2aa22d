//! Plaintext matrix × encrypted vector by the diagonal method (Halevi–Shoup)
//! with baby-step giant-step and hoisted baby rotations, plus plaintext dot
//! products / slot sums.
//!
//! Layouts (n = slot count):
//! - input: the vector `v` (length `cols`) in slots `[0, cols)`. Slots
//!   `[cols, n)` are **never read** (every diagonal entry that would read
//!   them is zero), so they may hold anything: zeros of a fresh zero-padded
//!   encryption, or the leftovers of a previous transform or activation. No
//!   replicated copy of `v` is assumed anywhere.
//! - output: `y = M v` (length `rows`) in slots `[0, rows)`. With
//!   [`Strategy::Band`] slots `[rows, n)` are zero (up to noise); with
//!   [`Strategy::Folded`] they hold partial sums
//!   ([`LinearTransform::output_zero_padded`] says which). Either output
//!   feeds another transform directly; [`inner_sum`]/[`dot_plain`] need the
//!   zero padding.
//!
//! Band (square-ish matrices): with `rot_k(v)[i] = v[(i + k) mod n]`,
//! `y = sum_k diag_k ⊙ rot_k(v)`, `diag_k[i] = M[i][(i + k) mod n]` if
//! `i < rows` and `(i + k) mod n < cols`, else 0: the non-zero diagonals are
//! the band `k = d mod n`, `d in [-(rows-1), cols-1]` (`rows + cols - 1`).
//!
//! Folded (wide matrices, `rows < cols`, Halevi–Shoup "hybrid" without
//! replication): with `L = rows * 2^m >= cols` (`L <= n`), for `i < L`,
//! `z[i] = sum_{k<rows} M[i mod rows][(i + k) mod L] v[(i + k) mod L]`; the
//! wrap `i + k >= L` is read by a second band of diagonals at offsets
//! `k - L` (instead of a replicated copy), so `2 rows` diagonals in all;
//! then `y[t] = sum_b z[t + b rows]` by `m` rotate-and-add folds
//! (`2^(m-1) rows, ..., rows`). For 100x3136 that is 200 diagonals instead
//! of 3235.
//!
//! BSGS (both): `d = d_min + g j + b`,
//! `sum_j rot_{s_j}( sum_b rot_{-s_j}(diag_d) ⊙ rot_b(v) )` with
//! `s_j = d_min + g j`; the `g - 1` baby rotations share one decomposition
//! (hoisting), the giant rotations act on the sums, and the pre-rotated
//! diagonals are encoded once, at scale `q_level`, so the result (after one
//! rescale) has exactly the input's scale at `level - 1`.

use super::{CircuitBackend, CircuitError, be};

/// A matrix with its diagonals pre-rotated and encoded at one level.
#[derive(Debug)]
pub struct LinearTransform<P> {
    rows: usize,
    cols: usize,
    slots: usize,
    level: usize,
    giant: usize,
    strategy: Strategy,
    /// For each giant step: the rotation and the (baby step, diagonal) list.
    groups: Vec<(usize, Vec<(usize, P)>)>,
    /// Rotate-and-add folds after the rescale (Folded strategy).
    folds: Vec<usize>,
}

/// How a matrix is laid out in diagonals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Folded for wide matrices when it needs fewer diagonals, else Band.
    Auto,
    /// `rows + cols - 1` generalized diagonals; zero-padded output.
    Band,
    /// `2 rows` diagonals + `log2(L / rows)` folds; output past `rows` not zero.
    Folded,
}

/// Smallest `L = rows * 2^m >= cols`, if `L <= n`.
fn folded_len(rows: usize, cols: usize, n: usize) -> Option<usize> {
    let mut l = rows;
    while l < cols {
        l *= 2;
    }
    (l <= n).then_some(l)
}

/// Baby-step size minimising `(g - 1) + sum ceil(count / g)` over the bands.
fn baby_size(counts: &[usize]) -> usize {
    let cost = |g: usize| g - 1 + counts.iter().map(|c| c.div_ceil(g)).sum::<usize>();
    let total: usize = counts.iter().sum();
    let mut best = 1;
    for g in 1..=((total as f64).sqrt().ceil() as usize + 2) {
        if cost(g) < cost(best) {
            best = g;
        }
    }
    best
}

fn rot_step(d: i64, n: usize) -> usize {
    d.rem_euclid(n as i64) as usize
}

impl<P> LinearTransform<P> {
    /// Pre-encodes `matrix` (row-major, `rows x cols`) for ciphertexts at
    /// `level` (must be >= 1: the transform consumes one level), with
    /// [`Strategy::Auto`].
    pub fn new<B: CircuitBackend<Plaintext = P>>(
        backend: &B,
        matrix: &[f64],
        rows: usize,
        cols: usize,
        level: usize,
    ) -> Result<Self, CircuitError> {
        Self::with_strategy(backend, matrix, rows, cols, level, Strategy::Auto)
    }

    /// As [`Self::new`] with an explicit [`Strategy`] (`Folded` falls back to
    /// `Band` when `rows >= cols` or `rows * 2^m` does not fit the slots).
    pub fn with_strategy<B: CircuitBackend<Plaintext = P>>(
        backend: &B,
        matrix: &[f64],
        rows: usize,
        cols: usize,
        level: usize,
        strategy: Strategy,
    ) -> Result<Self, CircuitError> {
        let n = backend.slots();
        if rows == 0 || cols == 0 || rows > n || cols > n {
            return Err(CircuitError::ShapeTooLarge {
                rows,
                cols,
                slots: n,
            });
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
        let folded_l = folded_len(rows, cols, n).filter(|_| rows < cols);
        let strategy = match (strategy, folded_l) {
            (Strategy::Band, _) | (Strategy::Auto, None) | (Strategy::Folded, None) => {
                Strategy::Band
            }
            (Strategy::Auto, Some(_)) if 2 * rows >= rows + cols - 1 => Strategy::Band,
            _ => Strategy::Folded,
        };
        let at = |r: usize, c: usize| matrix[r * cols + c];
        // Bands (d_min, count) and the unrotated diagonal of offset d.
        let (bands, folds): (Vec<(i64, usize)>, Vec<usize>) = match (strategy, folded_l) {
            (Strategy::Folded, Some(l)) => {
                let mut folds = Vec::new();
                let mut h = l / 2;
                while h >= rows {
                    folds.push(h);
                    h /= 2;
                }
                if l == n {
                    (vec![(0, rows)], folds)
                } else {
                    (vec![(0, rows), (-(l as i64), rows)], folds)
                }
            }
            _ if rows + cols - 1 > n => (vec![(0, n)], Vec::new()),
            _ => (vec![(-(rows as i64 - 1), rows + cols - 1)], Vec::new()),
        };
        let diag = |d: i64| -> Vec<f64> {
            let mut v = vec![0.0; n];
            match (strategy, folded_l) {
                (Strategy::Folded, Some(l)) => {
                    for (i, slot) in v.iter_mut().enumerate().take(l) {
                        let t = i % rows;
                        if d >= 0 {
                            let j = i + d as usize;
                            if j < l {
                                if j < cols {
                                    *slot = at(t, j);
                                }
                            } else if l == n {
                                *slot = at(t, j - l);
                            }
                        } else {
                            let k = (d + l as i64) as usize;
                            if i + k >= l {
                                *slot = at(t, i + k - l);
                            }
                        }
                    }
                }
                _ => {
                    let k = rot_step(d, n);
                    for (r, slot) in v.iter_mut().enumerate().take(rows) {
                        let c = (r + k) % n;
                        if c < cols {
                            *slot = at(r, c);
                        }
                    }
                }
            }
            v
        };
        let counts: Vec<usize> = bands.iter().map(|b| b.1).collect();
        let g = baby_size(&counts);
        let scale = backend.prime(level);
        let mut groups = Vec::new();
        for &(d_min, count) in &bands {
            let mut j = 0;
            while j * g < count {
                let s = d_min + (j * g) as i64;
                let mut list = Vec::new();
                for b in 0..g {
                    let idx = j * g + b;
                    if idx >= count {
                        break;
                    }
                    let dv = diag(d_min + idx as i64);
                    if dv.iter().all(|&x| x == 0.0) {
                        continue;
                    }
                    // Pre-rotated by -s: slot (i + s) mod n holds diag[i].
                    let mut v = vec![0.0; n];
                    for (i, &x) in dv.iter().enumerate() {
                        if x != 0.0 {
                            v[rot_step(i as i64 + s, n)] = x;
                        }
                    }
                    let pt = backend
                        .encode(&v, level, scale)
                        .map_err(be("linear transform encode"))?;
                    list.push((b, pt));
                }
                if !list.is_empty() {
                    groups.push((rot_step(s, n), list));
                }
                j += 1;
            }
        }
        Ok(Self {
            rows,
            cols,
            slots: n,
            level,
            giant: g,
            strategy,
            groups,
            folds,
        })
    }

    /// Output length (rows).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Input length (columns).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Level the diagonals are encoded at (input ciphertexts must be there).
    pub fn level(&self) -> usize {
        self.level
    }
    /// Baby-step size `g`.
    pub fn baby_steps(&self) -> usize {
        self.giant
    }
    /// The strategy in use (never `Auto`).
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
    /// Number of encoded (non-zero) diagonals.
    pub fn diagonal_count(&self) -> usize {
        self.groups.iter().map(|g| g.1.len()).sum()
    }
    /// Whether output slots `[rows, n)` are zero.
    pub fn output_zero_padded(&self) -> bool {
        self.folds.is_empty()
    }

    /// The (left) rotation steps this transform performs, in `1..slots`:
    /// generate Galois keys for exactly these.
    pub fn rotation_steps(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self
            .groups
            .iter()
            .flat_map(|(gs, l)| l.iter().map(|(b, _)| *b).chain(std::iter::once(*gs)))
            .chain(self.folds.iter().copied())
            .filter(|&x| x % self.slots != 0)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// `M v`: input at level >= [`Self::level`] (brought down to it) laid
    /// out as in the module doc; output at `level - 1` with the input's exact
    /// scale. A lower input level is [`CircuitError::LevelMismatch`].
    pub fn apply<B: CircuitBackend<Plaintext = P>>(
        &self,
        backend: &B,
        ct: &B::Ciphertext,
    ) -> Result<B::Ciphertext, CircuitError> {
        if backend.level(ct) < self.level {
            return Err(CircuitError::LevelMismatch {
                ct_level: backend.level(ct),
                pt_level: self.level,
            });
        }
        let lowered;
        let ct = if backend.level(ct) > self.level {
            lowered = backend
                .mod_down(ct, self.level)
                .map_err(be("linear transform mod-down"))?;
            &lowered
        } else {
            ct
        };
        let in_scale = backend.scale(ct);
        let (steps, rotated) = self.baby_rotations(backend, ct)?;
        let mut baby: Vec<Option<&B::Ciphertext>> = vec![None; self.giant];
        for (b, c) in steps.iter().zip(&rotated) {
            baby[*b] = Some(c);
        }
        let acc = Self::giant_sum(backend, &baby, &self.groups)?;
        self.finish(backend, ct, acc, in_scale)
    }

    /// Sum over `groups` of `rot_{s_j}(sum_b diag ⊙ baby_b)` (before rescale).
    fn giant_sum<B: CircuitBackend<Plaintext = P>>(
        backend: &B,
        baby: &[Option<&B::Ciphertext>],
        groups: &[(usize, Vec<(usize, P)>)],
    ) -> Result<Option<B::Ciphertext>, CircuitError> {
        let mut acc: Option<B::Ciphertext> = None;
        for (gs, list) in groups {
            let mut inner: Option<B::Ciphertext> = None;
            for (b, pt) in list {
                let Some(src) = baby[*b] else { continue };
                let m = backend
                    .mul_plain(src, pt)
                    .map_err(be("linear transform mul_plain"))?;
                inner = Some(match inner {
                    None => m,
                    Some(a) => backend.add(&a, &m).map_err(be("linear transform add"))?,
                });
            }
            let Some(inner) = inner else { continue };
            let inner = if *gs == 0 {
                inner
            } else {
                backend
                    .rotate(&inner, *gs)
                    .map_err(be("linear transform giant step"))?
            };
            acc = Some(match acc {
                None => inner,
                Some(a) => backend
                    .add(&a, &inner)
                    .map_err(be("linear transform add"))?,
            });
        }
        Ok(acc)
    }

    /// [`Self::apply`] with the giant-step groups spread over `threads`
    /// scoped threads (the hoisted baby rotations are computed once, first).
    /// Same result up to CKKS noise.
    pub fn apply_parallel<B>(
        &self,
        backend: &B,
        ct: &B::Ciphertext,
        threads: usize,
    ) -> Result<B::Ciphertext, CircuitError>
    where
        B: CircuitBackend<Plaintext = P> + Sync,
        B::Ciphertext: Send + Sync,
        P: Sync,
    {
        let threads = threads.max(1).min(self.groups.len().max(1));
        if threads == 1 {
            return self.apply(backend, ct);
        }
        if backend.level(ct) < self.level {
            return Err(CircuitError::LevelMismatch {
                ct_level: backend.level(ct),
                pt_level: self.level,
            });
        }
        let ct = backend
            .mod_down(ct, self.level)
            .map_err(be("linear transform mod-down"))?;
        let in_scale = backend.scale(&ct);
        let (steps, rotated) = self.baby_rotations(backend, &ct)?;
        let mut baby: Vec<Option<&B::Ciphertext>> = vec![None; self.giant];
        for (b, c) in steps.iter().zip(&rotated) {
            baby[*b] = Some(c);
        }
        let chunk = self.groups.len().div_ceil(threads);
        let baby = &baby;
        let partials: Vec<Result<Option<B::Ciphertext>, CircuitError>> = std::thread::scope(|sc| {
            let handles: Vec<_> = self
                .groups
                .chunks(chunk)
                .map(|g| sc.spawn(move || Self::giant_sum(backend, baby, g)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(CircuitError::WorkerPanicked {
                            operation: "linear transform apply_parallel",
                        })
                    })
                })
                .collect()
        });
        let mut acc: Option<B::Ciphertext> = None;
        for p in partials {
            if let Some(c) = p? {
                acc = Some(match acc {
                    None => c,
                    Some(a) => backend.add(&a, &c).map_err(be("linear transform add"))?,
                });
            }
        }
        self.finish(backend, &ct, acc, in_scale)
    }

    fn baby_rotations<B: CircuitBackend<Plaintext = P>>(
        &self,
        backend: &B,
        ct: &B::Ciphertext,
    ) -> Result<(Vec<usize>, Vec<B::Ciphertext>), CircuitError> {
        let mut used = vec![false; self.giant];
        for (_, l) in &self.groups {
            for (b, _) in l {
                used[*b] = true;
            }
        }
        let steps: Vec<usize> = (0..self.giant).filter(|&b| used[b]).collect();
        let rotated = backend
            .rotate_hoisted(ct, &steps)
            .map_err(be("linear transform baby steps"))?;
        Ok((steps, rotated))
    }

    fn finish<B: CircuitBackend<Plaintext = P>>(
        &self,
        backend: &B,
        ct: &B::Ciphertext,
        acc: Option<B::Ciphertext>,
        in_scale: f64,
    ) -> Result<B::Ciphertext, CircuitError> {
        let acc = match acc {
            Some(a) => a,
            None => backend
                .mul_const(ct, 0.0, backend.prime(self.level))
                .map_err(be("linear transform zero matrix"))?,
        };
        let mut out = backend
            .rescale(&acc)
            .map_err(be("linear transform rescale"))?;
        backend
            .set_scale(&mut out, in_scale)
            .map_err(be("linear transform scale"))?;
        for &h in &self.folds {
            let r = backend
                .rotate(&out, h)
                .map_err(be("linear transform fold"))?;
            out = backend.add(&out, &r).map_err(be("linear transform fold"))?;
        }
        Ok(out)
    }
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
