//! Ops on inputs large enough to be split over the pool, against naive
//! references, from outside any pool and inside pools of 1, 2 and 3
//! threads. (`determinism.rs` checks the thread counts agree; this checks
//! that what they agree on is right.) Values are small integers in f64
//! where a sum is involved, so the references are exact.

use heft_tensor::{Conv2dParams, DType, Tensor, PAR_THRESHOLD};

/// Runs `check` from the test thread (outside any pool: the caller takes
/// part in the global pool's work) and inside pools of 1 to 3 threads.
fn in_every_pool(check: impl Fn() + Sync) {
    check();
    for threads in 1..=3 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(&check);
    }
}

/// `n` small integers (-9..=9), varied enough that a misplaced chunk shows.
fn ints(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 19) as f64 - 9.0)
        .collect()
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn t32(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape).unwrap()
}

const R: usize = 300;
const C: usize = 700;

// The shapes take the parallel paths (a single long row from twice the
// threshold), half of them too (the strided row below).
const _: () = assert!(R * C / 2 >= 2 * PAR_THRESHOLD);

#[test]
fn packed_maps_and_zips_match_the_naive_loop() {
    let a = ints(R * C, 1);
    let b = ints(R * C, 2);
    in_every_pool(|| {
        let (x, y) = (t32(&a, &[R, C]), t32(&b, &[R, C]));
        let want: Vec<f32> = a.iter().map(|&v| v.max(0.0) as f32).collect();
        assert_eq!(x.relu().unwrap().to_vec::<f32>().unwrap(), want, "relu");
        let want: Vec<f32> = a.iter().zip(&b).map(|(&p, &q)| (p * q) as f32).collect();
        assert_eq!(x.mul(&y).unwrap().to_vec::<f32>().unwrap(), want, "mul");
        let want: Vec<bool> = a.iter().zip(&b).map(|(p, q)| p > q).collect();
        assert_eq!(x.gt(&y).unwrap().to_vec::<bool>().unwrap(), want, "gt");
        // The wide-vector map (`exp`): the large, split input gives the
        // same bits as the same op on pieces below the split threshold.
        let big = x.exp().unwrap().to_vec::<f32>().unwrap();
        for (p, piece) in big.chunks(C).enumerate() {
            let small = x.narrow(0, p, 1).unwrap().exp().unwrap();
            assert_eq!(piece, &small.to_vec::<f32>().unwrap()[..], "exp row {p}");
        }
    });
}

#[test]
fn strided_and_broadcast_fills_match_the_naive_loop() {
    let a = ints(R * C, 3);
    let row = ints(C, 4);
    in_every_pool(|| {
        let x = t64(&a, &[R, C]);
        // Broadcast rows.
        let got = x.add(&t64(&row, &[C])).unwrap().to_vec::<f64>().unwrap();
        let want: Vec<f64> = (0..R * C).map(|i| a[i] + row[i % C]).collect();
        assert_eq!(got, want, "add broadcast");
        // A transposed copy (rows of stride C), in both float types (each
        // has its own transposing gather).
        let got = x.t().unwrap().contiguous().to_vec::<f64>().unwrap();
        let want: Vec<f64> = (0..C * R).map(|i| a[(i % R) * C + i / R]).collect();
        assert_eq!(got, want, "transpose");
        let got = t32(&a, &[R, C]).t().unwrap().contiguous();
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_eq!(got.to_vec::<f32>().unwrap(), want, "transpose f32");
        // A permuted copy whose runs of rows (500) cross the chunks (448
        // rows) and are not whole 16-row tiles.
        let (d0, d1, d2) = (3, 37, 500);
        let p = t64(&a[..d0 * d1 * d2], &[d0, d1, d2]);
        let got = p
            .permute(&[0, 2, 1])
            .unwrap()
            .contiguous()
            .to_vec::<f64>()
            .unwrap();
        let want: Vec<f64> = (0..d0 * d2 * d1)
            .map(|i| {
                let (q, k, j) = (i / (d2 * d1), (i / d1) % d2, i % d1);
                a[(q * d1 + j) * d2 + k]
            })
            .collect();
        assert_eq!(got, want, "permute");
        // Output rows longer than a chunk's usual share (17,000 > 2^14
        // elements).
        let (rows, cols) = (17_000, 4);
        let q = t64(&a[..rows * cols], &[rows, cols]);
        let got = q.t().unwrap().contiguous().to_vec::<f64>().unwrap();
        let want: Vec<f64> = (0..cols * rows)
            .map(|i| a[(i % rows) * cols + i / rows])
            .collect();
        assert_eq!(got, want, "long transposed rows");
        // One long row of stride 2, split into chunks.
        let half = x.reshape(&[R * C / 2, 2]).unwrap().narrow(1, 1, 1).unwrap();
        let got = half.neg().unwrap().to_vec::<f64>().unwrap();
        let want: Vec<f64> = (0..R * C / 2).map(|i| -a[2 * i + 1]).collect();
        assert_eq!(got, want, "strided neg");
        // where_ with a mask from a comparison.
        let mask = x.gt_scalar(0.0).unwrap();
        let zero = Tensor::zeros(&[R, C], DType::F64);
        let got = Tensor::where_(&mask, &x, &zero)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let want: Vec<f64> = a.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
        assert_eq!(got, want, "where_");
    });
}

#[test]
fn add_assign_matches_the_naive_loop() {
    let a = ints(R * C, 5);
    let b = ints(R * C, 6);
    in_every_pool(|| {
        let mut x = t64(&a, &[R, C]);
        x.add_assign(&t64(&b, &[R, C])).unwrap();
        let want: Vec<f64> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
        assert_eq!(x.to_vec::<f64>().unwrap(), want);
    });
}

#[test]
fn reductions_and_softmax_match_the_naive_loop() {
    let a = ints(R * C, 7);
    in_every_pool(|| {
        let x = t64(&a, &[R, C]);
        let total: f64 = a.iter().sum();
        assert_eq!(
            x.sum(&[], false).unwrap().to_vec::<f64>().unwrap(),
            vec![total]
        );
        let cols: Vec<f64> = (0..C).map(|j| (0..R).map(|i| a[i * C + j]).sum()).collect();
        assert_eq!(
            x.sum(&[0], false).unwrap().to_vec::<f64>().unwrap(),
            cols,
            "axis 0"
        );
        let rows: Vec<f64> = (0..R).map(|i| a[i * C..(i + 1) * C].iter().sum()).collect();
        let xt = x.t().unwrap();
        assert_eq!(
            xt.sum(&[0], false).unwrap().to_vec::<f64>().unwrap(),
            rows,
            "xt axis 0"
        );
        let got = x.softmax(-1).unwrap().to_vec::<f64>().unwrap();
        for i in 0..R {
            let r = &a[i * C..(i + 1) * C];
            let m = r.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = r.iter().map(|v| (v - m).exp()).sum();
            for j in 0..C {
                let want = (r[j] - m).exp() / z;
                // heft's exp is its own polynomial: a few ulp from libm's.
                assert!((got[i * C + j] - want).abs() <= 1e-14, "softmax ({i}, {j})");
            }
        }
    });
}

#[test]
fn batched_matmul_matches_the_naive_loop() {
    // Many small products: the batches are split over the pool.
    let (nb, m, k, n) = (64, 12, 10, 14);
    let a = ints(nb * m * k, 8);
    let b = ints(nb * k * n, 9);
    in_every_pool(|| {
        let c = t64(&a, &[nb, m, k]).matmul(&t64(&b, &[nb, k, n])).unwrap();
        let got = c.to_vec::<f64>().unwrap();
        for p in 0..nb {
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|l| a[(p * m + i) * k + l] * b[(p * k + l) * n + j])
                        .sum();
                    assert_eq!(got[(p * m + i) * n + j], want, "batch {p} ({i}, {j})");
                }
            }
        }
    });
}

#[test]
fn unfold_then_fold_counts_the_windows() {
    // 16 planes of 32 x 32, 2 x 2 windows: both directions are split over
    // the pool, and folding the unfolded image multiplies each pixel by the
    // number of windows that cover it.
    let (planes, h) = (16, 32);
    let a = ints(planes * h * h, 10);
    in_every_pool(|| {
        let x = t64(&a, &[4, 4, h, h]);
        let cols = x.unfold2d((2, 2), Conv2dParams::default(), 0.0).unwrap();
        assert!(cols.numel() >= PAR_THRESHOLD);
        let back = cols
            .fold2d((h, h), (2, 2), Conv2dParams::default())
            .unwrap();
        let cover = |i: usize| (i >= 1) as usize + (i + 2 <= h) as usize;
        let got = back.to_vec::<f64>().unwrap();
        for (idx, (&g, &v)) in got.iter().zip(&a).enumerate() {
            let (i, j) = ((idx / h) % h, idx % h);
            assert_eq!(g, v * (cover(i) * cover(j)) as f64, "pixel {idx}");
        }
    });
}
