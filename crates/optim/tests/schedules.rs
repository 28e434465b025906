//! Schedules at specific steps against their closed forms.

use heft_optim::{
    Constant, CosineAnnealing, Exponential, Linear, OneCycle, Optimizer, Schedule, Sequential, Sgd,
    SgdConfig, StepDecay, WarmupCosine,
};
use std::f64::consts::PI;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

macro_rules! assert_close {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        assert!(close(a, b), "{} = {a}, expected {b}", stringify!($a));
    }};
}

#[test]
fn constant_step_exponential() {
    assert_eq!(Constant::new(0.3).lr_at(12345), 0.3);
    let s = StepDecay::new(0.1, 3, 0.5).unwrap();
    assert_eq!(s.lr_at(0), 0.1);
    assert_eq!(s.lr_at(2), 0.1);
    assert_eq!(s.lr_at(3), 0.05);
    assert_eq!(s.lr_at(8), 0.025);
    assert!(StepDecay::new(0.1, 0, 0.5).is_err());
    let e = Exponential::new(0.2, 0.9);
    assert_eq!(e.lr_at(0), 0.2);
    assert_close!(e.lr_at(5), 0.2 * 0.9 * 0.9 * 0.9 * 0.9 * 0.9);
}

#[test]
fn cosine_annealing() {
    let c = CosineAnnealing::new(0.1, 100, 0.001).unwrap();
    assert_eq!(c.lr_at(0), 0.1);
    assert_close!(c.lr_at(50), (0.1 + 0.001) / 2.0);
    assert_close!(c.lr_at(100), 0.001);
    assert_close!(
        c.lr_at(25),
        0.001 + (0.1 - 0.001) * (1.0 + (PI / 4.0).cos()) / 2.0
    );
    // PyTorch's closed form continues past T_max.
    assert_close!(c.lr_at(200), 0.1);
    assert!(CosineAnnealing::new(0.1, 0, 0.0).is_err());
}

#[test]
fn linear_ramp() {
    let l = Linear::new(0.0, 1.0, 4);
    assert_eq!(
        (0..6).map(|s| l.lr_at(s)).collect::<Vec<_>>(),
        vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    );
    assert_eq!(Linear::new(0.5, 1.0, 0).lr_at(0), 1.0);
}

#[test]
fn warmup_then_cosine() {
    let w = WarmupCosine::new(1.0, 10, 110, 0.1).unwrap();
    assert_eq!(w.lr_at(0), 0.0);
    assert_close!(w.lr_at(5), 0.5);
    assert_eq!(w.lr_at(10), 1.0);
    assert_close!(w.lr_at(60), (1.0 + 0.1) / 2.0);
    assert_close!(w.lr_at(110), 0.1);
    assert_close!(w.lr_at(500), 0.1);
    assert!(WarmupCosine::new(1.0, 10, 10, 0.0).is_err());
}

#[test]
fn one_cycle() {
    // initial = 1/25 = 0.04, min = 0.04 / 1e4; e1 = 0.2·105 − 1 = 20, e2 = 104.
    let o = OneCycle::with_params(1.0, 105, 0.2, 25.0, 1e4).unwrap();
    let (initial, min) = (0.04, 0.04 / 1e4);
    assert_close!(o.initial_lr(), initial);
    assert_close!(o.min_lr(), min);
    assert_close!(o.lr_at(0), initial);
    assert_close!(o.lr_at(10), (initial + 1.0) / 2.0);
    // The peak: PyTorch's first phase ends at step pct_start·total − 1.
    assert_eq!(o.lr_at(20), 1.0);
    assert!(o.lr_at(19) < 1.0 && o.lr_at(21) < 1.0);
    assert_close!(o.lr_at(62), (1.0 + min) / 2.0);
    assert_close!(o.lr_at(104), min);
    assert_close!(o.lr_at(1000), min);
    // Any step, against PyTorch's formula written out.
    let anneal = |a: f64, b: f64, p: f64| b + (a - b) / 2.0 * ((PI * p).cos() + 1.0);
    for s in 0..105 {
        let x = s as f64;
        let e = if x <= 20.0 {
            anneal(initial, 1.0, x / 20.0)
        } else {
            anneal(1.0, min, (x - 20.0) / 84.0)
        };
        assert_close!(o.lr_at(s), e);
    }
    // Defaults: pct_start 0.3, div 25, final div 1e4.
    let d = OneCycle::new(0.5, 100).unwrap();
    assert_close!(d.lr_at(0), 0.02);
    assert_eq!(d.lr_at(29), 0.5);
    assert!(OneCycle::with_params(1.0, 0, 0.3, 25.0, 1e4).is_err());
    assert!(OneCycle::with_params(1.0, 10, 1.5, 25.0, 1e4).is_err());
}

#[test]
fn sequential_restarts_each_schedule() {
    let s = Sequential::new(
        vec![
            Box::new(Linear::new(0.0, 0.1, 10)) as Box<dyn Schedule>,
            Box::new(Constant::new(0.1)),
            Box::new(Exponential::new(0.1, 0.5)),
        ],
        vec![10, 20],
    )
    .unwrap();
    assert_eq!(s.lr_at(0), 0.0);
    assert_close!(s.lr_at(5), 0.05);
    assert_eq!(s.lr_at(10), 0.1);
    assert_eq!(s.lr_at(19), 0.1);
    assert_eq!(s.lr_at(20), 0.1);
    assert_eq!(s.lr_at(22), 0.025);
    assert!(Sequential::new(
        vec![Box::new(Constant::new(1.0)) as Box<dyn Schedule>],
        vec![3]
    )
    .is_err());
    assert!(Sequential::new(
        vec![
            Box::new(Constant::new(1.0)) as Box<dyn Schedule>,
            Box::new(Constant::new(1.0)),
            Box::new(Constant::new(1.0)),
        ],
        vec![5, 5]
    )
    .is_err());
}

#[test]
fn schedules_drive_an_optimizer() {
    let sched = StepDecay::new(0.1, 2, 0.1).unwrap();
    let mut opt: Box<dyn Optimizer> = Box::new(Sgd::new(SgdConfig::new(1.0)).unwrap());
    let mut seen = Vec::new();
    for step in 0..5 {
        opt.set_lr(sched.lr_at(step));
        seen.push(opt.lr());
    }
    assert_close!(seen[4], 0.1 * 0.1 * 0.1);
    assert_eq!(seen[1], 0.1);
    // A schedule by reference and boxed.
    let r: &dyn Schedule = &sched;
    assert_eq!(r.lr_at(3), Box::new(sched).lr_at(3));
}
