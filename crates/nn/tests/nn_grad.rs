//! Finite-difference gradient checks of every layer's backward pass, for the
//! input gradient and every parameter gradient (SLAF coefficients included).
//!
//! The layers compute in f32; the check accumulates the scalar loss
//! `L = sum(y * r)` (r fixed random) in f64 and uses central differences with
//! step 1e-2, so the tolerance (1e-2 relative + 2e-3 absolute) covers f32
//! rounding, not modelling error: a wrong factor, sign or index fails it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slaf_nn::act::{ActLayer, Activation, Slaf, SlafP};
use slaf_nn::layers::{AvgPool2d, BatchNorm, ConvGeom, Mode, conv2d, linear};
use slaf_nn::{Layer, softmax_cross_entropy};

const H: f32 = 1e-2;

fn rand_arr(rng: &mut ChaCha8Rng, r: usize, c: usize, scale: f32) -> Array2<f32> {
    Array2::from_shape_simple_fn((r, c), || (rng.random::<f32>() * 2.0 - 1.0) * scale)
}

fn loss(layer: &mut Layer, x: &Array2<f32>, r: &Array2<f32>) -> f64 {
    let y = layer.forward(x, Mode::Train);
    y.iter()
        .zip(r.iter())
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

fn close(num: f64, ana: f64, what: &str) {
    let tol = 1e-2 * num.abs().max(ana.abs()) + 2e-3;
    assert!(
        (num - ana).abs() <= tol,
        "{what}: numeric {num} vs analytic {ana}"
    );
}

/// Check d L / d x and d L / d params of `layer` at input `x`.
fn check(mut layer: Layer, x: Array2<f32>, name: &str) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let y = layer.forward(&x, Mode::Train);
    let r = rand_arr(&mut rng, y.nrows(), y.ncols(), 1.0);
    let dx = layer.backward(&r);
    let grads: Vec<Vec<f32>> = layer
        .params_mut("p")
        .iter()
        .map(|p| p.grad.to_vec())
        .collect();
    if dx.len() == x.len() {
        for i in 0..x.len() {
            let mut xp = x.clone();
            let mut xm = x.clone();
            xp.as_slice_mut().unwrap()[i] += H;
            xm.as_slice_mut().unwrap()[i] -= H;
            let num =
                (loss(&mut layer, &xp, &r) - loss(&mut layer, &xm, &r)) / (2.0 * f64::from(H));
            close(
                num,
                f64::from(dx.as_slice().unwrap()[i]),
                &format!("{name} dx[{i}]"),
            );
        }
    }
    for (pi, g) in grads.iter().enumerate() {
        for (j, &gj) in g.iter().enumerate() {
            let shift = |layer: &mut Layer, d: f32| {
                layer.params_mut("p")[pi].value[j] += d;
            };
            shift(&mut layer, H);
            let lp = loss(&mut layer, &x, &r);
            shift(&mut layer, -2.0 * H);
            let lm = loss(&mut layer, &x, &r);
            shift(&mut layer, H);
            let num = (lp - lm) / (2.0 * f64::from(H));
            close(num, f64::from(gj), &format!("{name} param {pi}[{j}]"));
        }
    }
}

#[test]
fn conv2d_with_stride_and_padding() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (k, stride, pad) in [(3, 2, 1), (3, 1, 0), (2, 3, 1)] {
        let g = ConvGeom {
            in_c: 2,
            in_h: 6,
            in_w: 5,
            out_c: 3,
            k,
            stride,
            pad,
        };
        let conv = conv2d(g, false, &mut rng);
        // 18 samples: more than one parallel chunk.
        let x = rand_arr(&mut rng, 18, g.in_len(), 1.0);
        check(
            Layer::Conv2d(conv),
            x,
            &format!("conv k{k} s{stride} p{pad}"),
        );
    }
}

#[test]
fn linear_layer() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let l = linear(7, 4, &mut rng);
    let x = rand_arr(&mut rng, 5, 7, 1.0);
    check(Layer::Linear(l), x, "linear");
}

#[test]
fn batchnorm_train_mode_2d_and_1d() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut bn = BatchNorm::new(3, 4);
    bn.weight.value = ndarray::Array1::from(vec![1.5, -0.7, 0.3]);
    bn.bias.value = ndarray::Array1::from(vec![0.1, 0.2, -0.3]);
    let x = rand_arr(&mut rng, 5, 12, 2.0);
    check(Layer::BatchNorm(bn), x, "bn2d");
    let bn = BatchNorm::new(4, 1);
    let x = rand_arr(&mut rng, 6, 4, 2.0);
    check(Layer::BatchNorm(bn), x, "bn1d");
}

#[test]
fn batchnorm_with_running_stats_in_train_passes() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut bn = BatchNorm::new(2, 3);
    bn.running_mean = ndarray::Array1::from(vec![0.5, -0.2]);
    bn.running_var = ndarray::Array1::from(vec![2.0, 0.5]);
    bn.use_running_in_train = true;
    let x = rand_arr(&mut rng, 4, 6, 1.0);
    check(Layer::BatchNorm(bn), x, "bn frozen");
}

#[test]
fn avgpool_with_padding_counted() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (h, stride) in [(5, 2), (4, 1), (3, 2)] {
        let p = AvgPool2d {
            c: 2,
            h,
            w: h,
            k: 3,
            stride,
            pad: 1,
        };
        let x = rand_arr(&mut rng, 3, 2 * h * h, 1.0);
        check(Layer::AvgPool2d(p), x, &format!("pool h{h} s{stride}"));
    }
    // Padding counts in the average: a 1x1 map of value 9 pooled with k3 p1 gives 1.
    let p = AvgPool2d {
        c: 1,
        h: 1,
        w: 1,
        k: 3,
        stride: 1,
        pad: 1,
    };
    let y = p.forward(&Array2::from_elem((1, 1), 9.0));
    assert_eq!(y[[0, 0]], 1.0);
}

#[test]
fn activations_square_relu_slaf_slafp() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let x = rand_arr(&mut rng, 4, 5, 2.0);
    check(
        Layer::Act(ActLayer::new(Activation::Square)),
        x.clone(),
        "square",
    );
    // ReLU away from the kink.
    let xr = x.mapv(|v| if v.abs() < 0.1 { v + 0.3 } else { v });
    check(Layer::Act(ActLayer::new(Activation::Relu)), xr, "relu");
    let slaf = Slaf::with_coeffs(vec![0.3, -0.5, 0.8, 0.2]);
    check(
        Layer::Act(ActLayer::new(Activation::Slaf(slaf))),
        x.clone(),
        "slaf",
    );
    let slaf5 = Slaf::with_coeffs(vec![0.1, 1.0, 0.0, -0.1, 0.05, 0.01]);
    check(
        Layer::Act(ActLayer::new(Activation::Slaf(slaf5))),
        x.clone(),
        "slaf deg 5",
    );
    let slafp = SlafP::fitted(3.0, true);
    check(
        Layer::Act(ActLayer::new(Activation::SlafP(slafp))),
        x,
        "slaf-p",
    );
}

#[test]
fn softmax_cross_entropy_gradient_and_stability() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let z = rand_arr(&mut rng, 3, 10, 3.0);
    let labels = [1u8, 7, 0];
    let (l0, g, _) = softmax_cross_entropy(&z, &labels);
    for i in 0..z.len() {
        let mut zp = z.clone();
        let mut zm = z.clone();
        zp.as_slice_mut().unwrap()[i] += H;
        zm.as_slice_mut().unwrap()[i] -= H;
        let num = (softmax_cross_entropy(&zp, &labels).0 - softmax_cross_entropy(&zm, &labels).0)
            / (2.0 * f64::from(H));
        close(num, f64::from(g.as_slice().unwrap()[i]), "ce");
    }
    assert!(l0 > 0.0);
    // Huge logits stay finite: loss of a confident correct prediction is ~0.
    let mut big = Array2::<f32>::zeros((1, 10));
    big[[0, 3]] = 1e4;
    let (l, g, c) = softmax_cross_entropy(&big, &[3]);
    assert!(l.is_finite() && l < 1e-6 && g.iter().all(|v| v.is_finite()) && c == 1);
}
