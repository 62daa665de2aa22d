//! Encrypted polynomial evaluation with optimal depth and exact scales.
//!
//! The polynomial is split recursively, `p = q * T_n + r` with `n` the largest
//! power of two `<= deg p` (Chebyshev division uses `T_n T_j = (T_{n+j} +
//! T_{|n-j|}) / 2`; the power basis the plain `x^n` split), until the pieces
//! have degree below the baby-step bound `2^l`; the pieces ("leaves") are
//! linear combinations of the baby steps `T_1..T_{2^l - 1}` and are evaluated
//! with constant multiplications. The giant steps `T_{2^j}` come from repeated
//! doubling. `l` is chosen per polynomial as the one that needs the fewest
//! ciphertext multiplications among those reaching the optimal depth
//! `ceil(log2(d + 1))` (with `l = 1` that depth is always reached).
//!
//! Scale management (the idea of Lattigo's polynomial evaluator): every
//! sub-polynomial is evaluated *for* a target level and scale. A leaf
//! targeted at `(l, S)` multiplies each `T_i` (brought to level `l + 1`) by
//! the integer `round(c_i * S * q_{l+1} / scale(T_i))`, sums and rescales by
//! `q_{l+1}`, landing exactly on `S`; a split targeted at `(l, S)` evaluates
//! `q` for `(l + 1, S * q_{l+1} / scale(T_n))`, multiplies by `T_n` and
//! rescales, and evaluates `r` for `(l, S)`. The result therefore has exactly
//! the requested scale (default: the input's), whatever the primes are.
//!
//! The affine map of a Chebyshev interval, `t = alpha x + beta`, costs no
//! level when `alpha` is an integer (power basis, `[-1, 1]`, `[0, 2]`,
//! `[-1/2, 1/2]`, ...) or close enough to 1 that relabelling the scale to
//! `scale / alpha` (the same encryption read as `alpha x`) skews the powers'
//! scales by at most 4x; otherwise it costs exactly one extra level (a
//! constant multiplication landing `T_1` on the next prime's scale), reported
//! in [`EvalPlan::affine`] and [`EvalPlan::depth`]. Callers who need the
//! optimal depth on a general interval should fold the map into the
//! preceding linear layer and evaluate on `[-1, 1]`. Constants are rounded at
//! `target_scale * q / scale(T_i)`: a target scale far below the primes
//! costs constant precision.

use std::collections::{BTreeMap, BTreeSet};

use super::polynomial::ceil_log2;
use super::{Basis, CircuitBackend, CircuitError, Polynomial, be};

#[derive(Debug, Clone)]
enum Node {
    Leaf(Vec<f64>),
    Split {
        n: usize,
        q: Box<Node>,
        r: Box<Node>,
    },
}

fn degree(c: &[f64]) -> usize {
    c.iter().rposition(|&v| v != 0.0).unwrap_or(0)
}

fn split(c: &[f64], n: usize, chebyshev: bool) -> (Vec<f64>, Vec<f64>) {
    let d = degree(c);
    let mut r: Vec<f64> = c[..n].to_vec();
    let mut q = vec![0.0; d - n + 1];
    if chebyshev {
        q[0] = c[n];
        for j in 1..=(d - n) {
            q[j] = 2.0 * c[n + j];
            r[n - j] -= c[n + j];
        }
    } else {
        q.copy_from_slice(&c[n..=d]);
    }
    (q, r)
}

fn build(c: &[f64], baby: usize, chebyshev: bool) -> Node {
    let d = degree(c);
    if d < baby {
        return Node::Leaf(c[..=d].to_vec());
    }
    let n = 1usize << (usize::BITS - 1 - d.leading_zeros());
    let (q, r) = split(c, n, chebyshev);
    Node::Split {
        n,
        q: Box::new(build(&q, baby, chebyshev)),
        r: Box::new(build(&r, baby, chebyshev)),
    }
}

/// Levels consumed by a node (relative to the input ciphertext).
fn cost(node: &Node) -> usize {
    match node {
        Node::Leaf(c) => leaf_cost(c.iter().enumerate().skip(1).map(|(i, &v)| (i, v))),
        Node::Split { n, q, r } => {
            let qc = match q.as_ref() {
                Node::Leaf(qc) if degree(qc) == 0 => ceil_log2(*n) + 1,
                other => cost(other).max(ceil_log2(*n)) + 1,
            };
            qc.max(cost(r))
        }
    }
}

fn leaf_cost(terms: impl Iterator<Item = (usize, f64)>) -> usize {
    terms
        .filter(|&(_, v)| v != 0.0)
        .map(|(i, _)| ceil_log2(i) + 1)
        .max()
        .unwrap_or(0)
}

fn collect_powers(node: &Node, set: &mut BTreeSet<usize>, mults: &mut usize) {
    match node {
        Node::Leaf(c) => {
            for (i, &v) in c.iter().enumerate().skip(1) {
                if v != 0.0 {
                    set.insert(i);
                }
            }
        }
        Node::Split { n, q, r } => {
            set.insert(*n);
            if !matches!(q.as_ref(), Node::Leaf(qc) if degree(qc) == 0) {
                *mults += 1;
            }
            collect_powers(q, set, mults);
            collect_powers(r, set, mults);
        }
    }
}

fn power_closure(set: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut all = BTreeSet::new();
    let mut stack: Vec<usize> = set.iter().copied().collect();
    while let Some(i) = stack.pop() {
        if i <= 1 || !all.insert(i) {
            continue;
        }
        stack.push(i / 2);
        stack.push(i - i / 2);
    }
    all
}

/// The evaluation plan of a polynomial: baby-step bound, depth and cost.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    root: Node,
    chebyshev: bool,
    /// Baby steps are `T_1 .. T_{2^baby_log - 1}`.
    pub baby_log: usize,
    /// Levels the evaluation consumes.
    pub depth: usize,
    /// Ciphertext-ciphertext multiplications (each followed by relinearization).
    pub ct_mults: usize,
    /// How the Chebyshev affine map `t = alpha x + beta` is applied.
    pub affine: AffineMode,
}

/// How the affine map of a Chebyshev interval is applied to the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffineMode {
    /// `alpha` is 1 or an integer: integer multiplication, no level, scale kept.
    Integer,
    /// Scale relabelled to `scale / alpha` (no level). Used when the scale
    /// drift this causes in the powers, `max(alpha, 1/alpha)^max_power`, is
    /// at most 4 (it costs the constants that many times in precision).
    Relabel,
    /// One constant multiplication + rescale landing `T_1` on the scale of
    /// the next prime: the one extra level, spent only when relabelling
    /// would cost more than 2 bits of precision.
    ExtraLevel,
}

/// Largest tolerated power-scale drift of [`AffineMode::Relabel`].
const MAX_RELABEL_DRIFT: f64 = 4.0;

fn affine_mode(alpha: f64, max_power: usize) -> AffineMode {
    if alpha >= 1.0 && (alpha - alpha.round()).abs() < 1e-12 {
        return AffineMode::Integer;
    }
    let drift = alpha.max(1.0 / alpha).powi(max_power as i32);
    if drift <= MAX_RELABEL_DRIFT {
        AffineMode::Relabel
    } else {
        AffineMode::ExtraLevel
    }
}

impl EvalPlan {
    /// Plans the evaluation of `poly` (optimal depth, then fewest ct×ct products).
    pub fn new(poly: &Polynomial) -> Result<Self, CircuitError> {
        poly.validate()?;
        let chebyshev = matches!(poly.basis, Basis::Chebyshev { .. });
        let d = poly.degree();
        let max_l = ceil_log2(d + 1).max(1);
        let mut best: Option<EvalPlan> = None;
        for l in 1..=max_l {
            let root = build(&poly.coeffs, 1 << l, chebyshev);
            let mut depth = cost(&root);
            let mut set = BTreeSet::new();
            let mut mults = 0;
            collect_powers(&root, &mut set, &mut mults);
            let closure = power_closure(&set);
            mults += closure.len();
            let max_power = closure.iter().chain(set.iter()).max().copied().unwrap_or(1);
            let affine = affine_mode(poly.affine().0, max_power);
            if affine == AffineMode::ExtraLevel {
                depth += 1;
            }
            let plan = EvalPlan {
                root,
                chebyshev,
                baby_log: l,
                depth,
                ct_mults: mults,
                affine,
            };
            let better = match &best {
                None => true,
                Some(b) => (plan.depth, plan.ct_mults) < (b.depth, b.ct_mults),
            };
            if better {
                best = Some(plan);
            }
        }
        best.ok_or_else(|| CircuitError::InvalidPolynomial {
            reason: "no plan".into(),
        })
    }
}

/// Evaluates polynomials on ciphertexts through a [`CircuitBackend`].
#[derive(Debug)]
pub struct PolynomialEvaluator<'a, B: CircuitBackend> {
    backend: &'a B,
}

enum Value<C> {
    Const(f64),
    Ct(C),
}

impl<'a, B: CircuitBackend> PolynomialEvaluator<'a, B> {
    /// Wraps a backend.
    pub fn new(backend: &'a B) -> Self {
        Self { backend }
    }

    /// Evaluates `poly` on `ct`. The result is at level `level(ct) - plan.depth`
    /// (depth = `ceil(log2(deg + 1))`) and has exactly `target_scale`
    /// (default: the input's scale). Too few levels is
    /// [`CircuitError::DepthExhausted`].
    pub fn evaluate(
        &self,
        ct: &B::Ciphertext,
        poly: &Polynomial,
        target_scale: Option<f64>,
    ) -> Result<B::Ciphertext, CircuitError> {
        let plan = EvalPlan::new(poly)?;
        self.evaluate_plan(ct, poly, &plan, target_scale)
    }

    /// Evaluates `f_k(...f_2(f_1(x)))` stage by stage (each stage at its own
    /// optimal depth; intermediate stages land on the input scale).
    pub fn evaluate_composition(
        &self,
        ct: &B::Ciphertext,
        stages: &[Polynomial],
        target_scale: Option<f64>,
    ) -> Result<B::Ciphertext, CircuitError> {
        let bk = self.backend;
        let needed: usize = stages
            .iter()
            .map(|p| EvalPlan::new(p).map(|pl| pl.depth))
            .sum::<Result<usize, _>>()?;
        if needed > bk.level(ct) {
            return Err(CircuitError::DepthExhausted {
                needed,
                available: bk.level(ct),
            });
        }
        let s0 = bk.scale(ct);
        let mut cur = ct.clone();
        for (i, p) in stages.iter().enumerate() {
            let ts = if i + 1 == stages.len() {
                target_scale.unwrap_or(s0)
            } else {
                s0
            };
            cur = self.evaluate(&cur, p, Some(ts))?;
        }
        Ok(cur)
    }

    /// Evaluates with a precomputed plan (see [`EvalPlan::new`]).
    pub fn evaluate_plan(
        &self,
        ct: &B::Ciphertext,
        poly: &Polynomial,
        plan: &EvalPlan,
        target_scale: Option<f64>,
    ) -> Result<B::Ciphertext, CircuitError> {
        let bk = self.backend;
        let level = bk.level(ct);
        if plan.depth > level {
            return Err(CircuitError::DepthExhausted {
                needed: plan.depth,
                available: level,
            });
        }
        let target_scale = target_scale.unwrap_or_else(|| bk.scale(ct));
        let target_level = level - plan.depth;
        // T_1: the affine map costs no level (scale relabelling + constant).
        let (alpha, beta) = poly.affine();
        let mut t1 = ct.clone();
        match plan.affine {
            AffineMode::Integer => {
                if alpha != 1.0 {
                    t1 = bk
                        .mul_const(&t1, alpha.round(), 1.0)
                        .map_err(be("poly affine map"))?;
                }
            }
            AffineMode::Relabel => {
                let s = bk.scale(&t1);
                bk.set_scale(&mut t1, s / alpha)
                    .map_err(be("poly affine relabel"))?;
            }
            AffineMode::ExtraLevel => {
                // Land T_1 at level - 1 on scale q_{level-1}, so the powers keep
                // scales close to the primes.
                let want = bk.prime(level - 1);
                let k = want * bk.prime(level) / bk.scale(&t1);
                let mut m = bk.mul_const(&t1, alpha, k).map_err(be("poly affine map"))?;
                bk.set_scale(&mut m, want * bk.prime(level))
                    .map_err(be("poly affine map"))?;
                t1 = bk.rescale(&m).map_err(be("poly affine map"))?;
                bk.set_scale(&mut t1, want).map_err(be("poly affine map"))?;
            }
        }
        if beta != 0.0 {
            t1 = bk.add_const(&t1, beta).map_err(be("poly affine map"))?;
        }
        let mut powers: BTreeMap<usize, B::Ciphertext> = BTreeMap::new();
        powers.insert(1, t1);
        let mut set = BTreeSet::new();
        let mut m = 0;
        collect_powers(&plan.root, &mut set, &mut m);
        for i in power_closure(&set) {
            let p = self.power(&powers, i, plan.chebyshev)?;
            powers.insert(i, p);
        }
        match self.eval_node(&plan.root, &powers, target_level, target_scale)? {
            Value::Ct(c) => Ok(c),
            Value::Const(c) => {
                // Constant polynomial (depth 0): 0 * x + c at the target scale.
                let mut z = bk.mul_const(ct, 0.0, 1.0).map_err(be("poly constant"))?;
                bk.set_scale(&mut z, target_scale)
                    .map_err(be("poly constant"))?;
                bk.add_const(&z, c).map_err(be("poly constant"))
            }
        }
    }

    fn mul_rescale(
        &self,
        a: &B::Ciphertext,
        b: &B::Ciphertext,
    ) -> Result<B::Ciphertext, CircuitError> {
        let bk = self.backend;
        let l = bk.level(a).min(bk.level(b));
        let a = bk.mod_down(a, l).map_err(be("poly power"))?;
        let b = bk.mod_down(b, l).map_err(be("poly power"))?;
        let p = bk.mul_relin(&a, &b).map_err(be("poly power"))?;
        bk.rescale(&p).map_err(be("poly power rescale"))
    }

    /// Brings `ct` to exactly `(level, scale)` (one constant multiplication
    /// at `level + 1` if the scale differs).
    fn match_to(
        &self,
        ct: &B::Ciphertext,
        level: usize,
        scale: f64,
    ) -> Result<B::Ciphertext, CircuitError> {
        let bk = self.backend;
        if bk.scale(ct) == scale {
            return bk.mod_down(ct, level).map_err(be("poly match level"));
        }
        let c = bk.mod_down(ct, level + 1).map_err(be("poly match scale"))?;
        let k = scale * bk.prime(level + 1) / bk.scale(&c);
        let mut c = bk.mul_const(&c, 1.0, k).map_err(be("poly match scale"))?;
        bk.set_scale(&mut c, scale * bk.prime(level + 1))
            .map_err(be("poly exact scale"))?;
        let mut c = bk.rescale(&c).map_err(be("poly match scale"))?;
        bk.set_scale(&mut c, scale)
            .map_err(be("poly exact scale"))?;
        Ok(c)
    }

    fn power(
        &self,
        powers: &BTreeMap<usize, B::Ciphertext>,
        i: usize,
        chebyshev: bool,
    ) -> Result<B::Ciphertext, CircuitError> {
        let bk = self.backend;
        let (a, b) = (i - i / 2, i / 2);
        let (pa, pb) = (&powers[&a], &powers[&b]);
        let prod = self.mul_rescale(pa, pb)?;
        if !chebyshev {
            return Ok(prod);
        }
        let two = bk.add(&prod, &prod).map_err(be("poly chebyshev power"))?;
        if a == b {
            bk.add_const(&two, -1.0).map_err(be("poly chebyshev power"))
        } else {
            let t = self.match_to(&powers[&(a - b)], bk.level(&two), bk.scale(&two))?;
            bk.sub(&two, &t).map_err(be("poly chebyshev power"))
        }
    }

    fn leaf(
        &self,
        terms: &[(f64, &B::Ciphertext)],
        c0: f64,
        level: usize,
        scale: f64,
    ) -> Result<B::Ciphertext, CircuitError> {
        let bk = self.backend;
        let q = bk.prime(level + 1);
        let big = scale * q;
        let mut acc: Option<B::Ciphertext> = None;
        for &(c, t) in terms {
            let t = bk.mod_down(t, level + 1).map_err(be("poly leaf"))?;
            let mut m = bk
                .mul_const(&t, c, big / bk.scale(&t))
                .map_err(be("poly leaf"))?;
            bk.set_scale(&mut m, big).map_err(be("poly exact scale"))?;
            acc = Some(match acc {
                None => m,
                Some(a) => bk.add(&a, &m).map_err(be("poly leaf"))?,
            });
        }
        let acc = acc.ok_or_else(|| CircuitError::InvalidPolynomial {
            reason: "empty leaf".into(),
        })?;
        let acc = if c0 != 0.0 {
            bk.add_const(&acc, c0).map_err(be("poly leaf"))?
        } else {
            acc
        };
        let mut out = bk.rescale(&acc).map_err(be("poly leaf rescale"))?;
        bk.set_scale(&mut out, scale)
            .map_err(be("poly exact scale"))?;
        Ok(out)
    }

    fn eval_node(
        &self,
        node: &Node,
        powers: &BTreeMap<usize, B::Ciphertext>,
        level: usize,
        scale: f64,
    ) -> Result<Value<B::Ciphertext>, CircuitError> {
        let bk = self.backend;
        match node {
            Node::Leaf(c) => {
                let terms: Vec<(f64, &B::Ciphertext)> = c
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(i, &v)| (v, &powers[&i]))
                    .collect();
                if terms.is_empty() {
                    return Ok(Value::Const(c[0]));
                }
                Ok(Value::Ct(self.leaf(&terms, c[0], level, scale)?))
            }
            Node::Split { n, q, r } => {
                let tn = &powers[n];
                let qpart = match q.as_ref() {
                    Node::Leaf(qc) if degree(qc) == 0 => {
                        self.leaf(&[(qc[0], tn)], 0.0, level, scale)?
                    }
                    qn => {
                        let big = scale * bk.prime(level + 1);
                        let tn = bk.mod_down(tn, level + 1).map_err(be("poly giant step"))?;
                        let qs = big / bk.scale(&tn);
                        let qct = match self.eval_node(qn, powers, level + 1, qs)? {
                            Value::Ct(c) => c,
                            Value::Const(_) => {
                                return Err(CircuitError::InvalidPolynomial {
                                    reason: "constant quotient in split".into(),
                                });
                            }
                        };
                        let mut p = bk.mul_relin(&qct, &tn).map_err(be("poly giant step"))?;
                        bk.set_scale(&mut p, big).map_err(be("poly exact scale"))?;
                        let mut p = bk.rescale(&p).map_err(be("poly giant step rescale"))?;
                        bk.set_scale(&mut p, scale)
                            .map_err(be("poly exact scale"))?;
                        p
                    }
                };
                match self.eval_node(r, powers, level, scale)? {
                    Value::Const(0.0) => Ok(Value::Ct(qpart)),
                    Value::Const(c) => Ok(Value::Ct(
                        bk.add_const(&qpart, c).map_err(be("poly add remainder"))?,
                    )),
                    Value::Ct(rc) => Ok(Value::Ct(
                        bk.add(&qpart, &rc).map_err(be("poly add remainder"))?,
                    )),
                }
            }
        }
    }
}
