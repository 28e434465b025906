//! Results do not depend on the rayon pool size; seeded randomness is reproducible.

use heft_tensor::{DType, Tensor, PAR_THRESHOLD};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Bits of every output, so equality means bit-identical (NaN included).
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits() as u64)
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
        DType::I64 => t
            .to_vec::<i64>()
            .unwrap()
            .iter()
            .map(|&x| x as u64)
            .collect(),
        d => panic!("bits: unexpected dtype {d}"),
    }
}

/// Every large op we care about, on one input.
fn workload(x: &Tensor, w: &Tensor) -> Vec<(&'static str, Vec<u64>)> {
    let xt = x.t().unwrap();
    let row = x.narrow(0, 0, 1).unwrap();
    vec![
        ("sum all", bits(&x.sum(&[], false).unwrap())),
        ("sum strided all", bits(&xt.sum(&[], false).unwrap())),
        ("sum axis 0", bits(&x.sum(&[0], false).unwrap())),
        ("sum axis 1", bits(&x.sum(&[1], true).unwrap())),
        ("sum transposed axis 1", bits(&xt.sum(&[1], false).unwrap())),
        ("mean", bits(&x.mean(&[], false).unwrap())),
        ("mean axis 1", bits(&x.mean(&[-1], false).unwrap())),
        ("max", bits(&x.max(&[], false).unwrap())),
        ("max axis 0", bits(&x.max(&[0], false).unwrap())),
        ("argmax axis 1", bits(&x.argmax(1, false).unwrap())),
        ("var", bits(&x.var(&[], 1, false).unwrap())),
        ("logsumexp rows", bits(&x.logsumexp(&[1], false).unwrap())),
        ("norm_l2", bits(&x.norm_l2(&[], false).unwrap())),
        ("softmax rows", bits(&x.softmax(-1).unwrap())),
        ("softmax columns", bits(&x.softmax(0).unwrap())),
        ("log_softmax rows", bits(&x.log_softmax(1).unwrap())),
        ("exp", bits(&x.exp().unwrap())),
        ("gelu transposed", bits(&xt.gelu().unwrap())),
        ("add broadcast", bits(&x.add(&row).unwrap())),
        ("mul transposed", bits(&x.mul(&xt.t().unwrap()).unwrap())),
        (
            "matmul",
            bits(&x.narrow(1, 0, 256).unwrap().matmul(w).unwrap()),
        ),
        (
            "matmul transposed",
            bits(
                &w.t()
                    .unwrap()
                    .matmul(&xt.narrow(0, 0, 256).unwrap())
                    .unwrap(),
            ),
        ),
    ]
}

fn check_thread_invariance(dtype: DType) {
    // 300 x 700 = 210000 elements > 2^16 (and > 2 * PAR_THRESHOLD), so the
    // parallel paths of fill and of the reductions are taken.
    let (r, c) = (300, 700);
    assert!(r * c > 2 * PAR_THRESHOLD); // 2 * PAR_THRESHOLD = 2^16
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = Tensor::randn(&[r, c], 0.0, 3.0, dtype, &mut rng).unwrap();
    let w = Tensor::randn(&[256, 300], 0.0, 1.0, dtype, &mut rng).unwrap();
    let one = pool(1).install(|| workload(&x, &w));
    let two = pool(2).install(|| workload(&x, &w));
    let again = pool(2).install(|| workload(&x, &w));
    for ((name, a), ((_, b), (_, c))) in one.iter().zip(two.iter().zip(&again)) {
        assert!(a == b, "{dtype} {name}: 1 thread and 2 threads differ");
        assert!(b == c, "{dtype} {name}: two runs on 2 threads differ");
    }
    // A sanity check that the workload computes something real.
    // (Summation-order error bound: n eps sum |x|, in the input's precision.)
    let v = x.to_vec_f64();
    let s: f64 = v.iter().sum();
    let abs: f64 = v.iter().map(|a| a.abs()).sum();
    let eps = if dtype == DType::F32 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    };
    let got = x.sum(&[], false).unwrap().to_scalar_f64().unwrap();
    assert!(
        (got - s).abs() <= (r * c) as f64 * eps * abs,
        "{got} vs {s}"
    );
}

#[test]
fn reductions_and_elementwise_are_bit_identical_across_thread_counts_f32() {
    check_thread_invariance(DType::F32);
}

#[test]
fn reductions_and_elementwise_are_bit_identical_across_thread_counts_f64() {
    check_thread_invariance(DType::F64);
}

#[test]
fn same_seed_same_tensor() {
    for dtype in [DType::F32, DType::F64] {
        let mk = |seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let a = Tensor::randn(&[3, 33], 1.0, 2.0, dtype, &mut rng).unwrap();
            let b = Tensor::rand_uniform(&[5, 7], -1.0, 4.0, dtype, &mut rng).unwrap();
            (bits(&a), bits(&b))
        };
        assert_eq!(mk(42), mk(42));
        assert_ne!(mk(42).0, mk(43).0);
        assert_ne!(mk(42).1, mk(43).1);
        // Drawing inside a pool of any size changes nothing (draws are sequential).
        let in_pool = pool(2).install(|| mk(42));
        assert_eq!(in_pool, mk(42));
    }
    // f32 draws are the f64 draws rounded (same stream, odd length included).
    let mut r1 = ChaCha8Rng::seed_from_u64(9);
    let mut r2 = ChaCha8Rng::seed_from_u64(9);
    let a = Tensor::randn(&[101], 0.0, 1.0, DType::F64, &mut r1).unwrap();
    let b = Tensor::randn(&[101], 0.0, 1.0, DType::F32, &mut r2).unwrap();
    assert!(a.to_dtype(DType::F32).equal(&b));
}

#[test]
fn randn_moments_are_within_a_few_standard_errors() {
    let n = 100_000;
    let (mu, sigma) = (2.0, 3.0);
    let mut rng = ChaCha8Rng::seed_from_u64(1234);
    let x = Tensor::randn(&[n], mu, sigma, DType::F64, &mut rng)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    // Standard errors: sigma / sqrt(n) for the mean, about sigma / sqrt(2n) for the std.
    let se_mean = sigma / (n as f64).sqrt();
    let se_std = sigma / (2.0 * n as f64).sqrt();
    assert!((mean - mu).abs() < 5.0 * se_mean, "mean {mean}");
    assert!((std - sigma).abs() < 5.0 * se_std, "std {std}");
    // Symmetric tails: the fraction beyond one sigma on each side is ~15.87%.
    let hi = x.iter().filter(|&&v| v > mu + sigma).count() as f64 / n as f64;
    let lo = x.iter().filter(|&&v| v < mu - sigma).count() as f64 / n as f64;
    let p = 0.158_655_253_931_457;
    let se_p = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (hi - p).abs() < 5.0 * se_p && (lo - p).abs() < 5.0 * se_p,
        "tails {lo} {hi}"
    );

    // Uniform: inside [low, high) with the right mean.
    let u = Tensor::rand_uniform(&[n], -1.0, 3.0, DType::F64, &mut rng)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(u.iter().all(|&v| (-1.0..3.0).contains(&v)));
    let um = u.iter().sum::<f64>() / n as f64;
    let se = 4.0 / 12f64.sqrt() / (n as f64).sqrt();
    assert!((um - 1.0).abs() < 5.0 * se, "uniform mean {um}");
}
