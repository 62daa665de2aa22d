//! Schedules and optimisers against PyTorch's formulas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use slaf_nn::layers::ParamMut;
use slaf_nn::optim::{OneCycle, Optimizer, OptimizerConfig, clip_grad_norm};
use slaf_nn::sign_fit_ls;

/// Reference values of `torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2,
/// total_steps=28140, pct_start=0.43, div_factor=10, final_div_factor=1000,
/// three_phase=True, anneal_strategy='cos', base_momentum=0.85,
/// max_momentum=0.95)`, computed by re-implementing its `get_lr()` in Python
/// (PyTorch 2.x source):
/// ```text
/// phases = [(pct*T - 1, init, max_lr, 0.95, 0.85),
///           (2*pct*T - 2, max_lr, init, 0.85, 0.95),
///           (T - 1, init, init/1000, 0.95, 0.95)]
/// start = 0
/// for i, (end, l0, l1, m0, m1) in enumerate(phases):
///     if step <= end or i == 2:
///         pct = (step - start) / (end - start)
///         return cos(l0, l1, pct), cos(m0, m1, pct)   # cos(a,b,p) = b + (a-b)/2*(cos(pi p)+1)
///     start = end
/// ```
/// giving phase ends 12099.2 and 24198.4 and:
const REF: [(usize, f64, f64); 11] = [
    (0, 0.02, 0.95),
    (1, 0.0200000030338838, 0.949999998314509),
    (938, 0.022656175365758924, 0.9485243470190228),
    (6000, 0.1088409413903766, 0.9006439214497908),
    (12099, 0.19999999987864467, 0.8500000000674196),
    (12100, 0.19999999805831437, 0.8500000010787142),
    (18000, 0.11347640689115239, 0.8980686628382486),
    (24198, 0.020000000485421412, 0.9499999997303213),
    (24199, 0.01999999885708739, 0.95),
    (26000, 0.011349547144322096, 0.95),
    (28139, 2e-05, 0.95),
];

#[test]
fn one_cycle_matches_pytorch() {
    let s = OneCycle::recipe(30 * 938);
    let ends = s.phase_ends();
    assert!((ends[0] - 12099.2).abs() < 1e-9 && (ends[1] - 24198.4).abs() < 1e-9);
    for (step, lr, mom) in REF {
        let (l, m) = s.at(step);
        assert!((l - lr).abs() < 1e-12, "step {step}: lr {l} vs {lr}");
        assert!(
            (m - mom).abs() < 1e-12,
            "step {step}: momentum {m} vs {mom}"
        );
    }
}

fn one_param<'a>(v: &'a mut [f32], g: &'a mut [f32]) -> ParamMut<'a> {
    ParamMut {
        name: "w".into(),
        value: v,
        grad: g,
        frozen: false,
    }
}

#[test]
fn sgd_momentum_weight_decay_like_pytorch() {
    // torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01), w=1, grad=0.5 twice:
    // step 1: d = 0.5 + 0.01*1 = 0.51, buf = 0.51, w = 1 - 0.051 = 0.949
    // step 2: d = 0.5 + 0.00949 = 0.50949, buf = 0.9*0.51 + 0.50949 = 0.96849, w = 0.949 - 0.096849 = 0.852151
    let mut v = [1.0f32];
    let mut g = [0.5f32];
    let mut opt = Optimizer::new(OptimizerConfig::Sgd { weight_decay: 0.01 });
    opt.step(&mut [one_param(&mut v, &mut g)], 0.1, 0.9);
    assert!((v[0] - 0.949).abs() < 1e-6);
    opt.step(&mut [one_param(&mut v, &mut g)], 0.1, 0.9);
    assert!((v[0] - 0.852151).abs() < 1e-6, "{}", v[0]);
    // Frozen parameters never move.
    let mut p = one_param(&mut v, &mut g);
    p.frozen = true;
    let before = p.value[0];
    opt.step(&mut [p], 0.1, 0.9);
    assert_eq!(v[0], before);
}

#[test]
fn adam_first_steps_like_pytorch() {
    // torch.optim.Adam([w], lr=0.01): the first step moves by lr*sign(grad) (bias correction).
    let mut v = [1.0f32];
    let mut g = [0.3f32];
    let mut opt = Optimizer::new(OptimizerConfig::Adam { weight_decay: 0.0 });
    opt.step(&mut [one_param(&mut v, &mut g)], 0.01, 0.9);
    assert!((v[0] - 0.99).abs() < 1e-6, "{}", v[0]);
}

#[test]
fn clipping_scales_to_max_norm() {
    let mut v = [0.0f32; 2];
    let mut g = [3.0f32, 4.0];
    let mut ps = [one_param(&mut v, &mut g)];
    let n = clip_grad_norm(&mut ps, 1.0);
    assert!((n - 5.0).abs() < 1e-9);
    assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5);
    let mut g2 = [0.3f32, 0.4];
    let mut ps = [one_param(&mut v, &mut g2)];
    clip_grad_norm(&mut ps, 1.0);
    assert_eq!(g2, [0.3, 0.4]);
}

#[test]
fn slafp_sign_fit_reproduces_the_notebooks() {
    // SPEC.md §2: np.polyfit(arange(-R, R, 0.01), sign(x), 3), a0..a3.
    let want30 = [4.6875e-4, 0.09375, -1.2153e-6, -8.1019e-5];
    let want10 = [-8.4375e-4, 0.28125, 4.6876e-6, -2.1875e-3];
    for (r, want) in [(30.0, want30), (10.0, want10)] {
        let c = sign_fit_ls(r, 0.01, 3);
        for (k, (a, b)) in c.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 2e-4 * b.abs(), "R={r} a{k}: {a} vs {b}");
        }
    }
}

#[test]
fn other_sign_initialisations() {
    use slaf_nn::{SignInit, sign_poly};
    let ev = |c: &[f64], x: f64| c.iter().rev().fold(0.0, |a, &k| a * x + k);
    let f = |t: f64| -t * t * t / 2.0 + 1.5 * t;
    let g = |t: f64| -(1359.0 / 1024.0) * t * t * t + (2126.0 / 1024.0) * t;
    let newton = sign_poly(SignInit::Newton, 10.0);
    let comp = sign_poly(SignInit::Composition, 10.0);
    assert_eq!((newton.len(), comp.len()), (10, 10));
    for x in [-9.0, -3.0, 0.5, 5.0, 10.0] {
        let t: f64 = x / 10.0;
        assert!((ev(&newton, x) - f(f(t))).abs() < 1e-12, "newton at {x}");
        assert!((ev(&comp, x) - f(g(t))).abs() < 1e-12, "composition at {x}");
    }
    // Chebyshev: the cubic interpolates sign at the 4 Chebyshev points.
    let cheb = sign_poly(SignInit::Chebyshev, 2.0);
    assert_eq!(cheb.len(), 4);
    for j in 0..4 {
        let node = ((2 * j + 1) as f64 * std::f64::consts::PI / 8.0).cos();
        assert!((ev(&cheb, 2.0 * node) - node.signum()).abs() < 1e-12);
    }
}
