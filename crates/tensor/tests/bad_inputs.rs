//! Invalid calls: each is an `Err` naming the op and the offending shapes.

use heft_tensor::{sum_to_shape, DType, Result, Tensor};

fn t23() -> Tensor {
    Tensor::zeros(&[2, 3], DType::F32)
}

type Call = Box<dyn Fn() -> Result<Tensor>>;

/// (what, call, fragments the message must contain)
fn table() -> Vec<(&'static str, Call, Vec<&'static str>)> {
    let f = |c: fn() -> Result<Tensor>| -> Call { Box::new(c) };
    vec![
        (
            "add shape mismatch",
            f(|| t23().add(&Tensor::zeros(&[4], DType::F32))),
            vec!["add", "[2, 3]", "[4]"],
        ),
        (
            "where_ shapes",
            f(|| {
                let m = Tensor::zeros(&[5], DType::Bool);
                Tensor::where_(&m, &t23(), &t23())
            }),
            vec!["where_", "[5]", "[2, 3]"],
        ),
        (
            "matmul inner dims",
            f(|| t23().matmul(&t23())),
            vec!["matmul", "[2, 3]", "inner dimensions 3 and 2"],
        ),
        (
            "matmul batch dims",
            f(|| {
                Tensor::zeros(&[2, 3, 4], DType::F32).matmul(&Tensor::zeros(&[3, 4, 5], DType::F32))
            }),
            vec!["matmul", "[2, 3, 4]", "[3, 4, 5]", "batch"],
        ),
        (
            "matmul of a scalar",
            f(|| Tensor::scalar(1.0f32).matmul(&t23())),
            vec!["matmul", "[]", "[2, 3]"],
        ),
        (
            "sum axis",
            f(|| t23().sum(&[2], false)),
            vec!["sum", "axis 2", "[2, 3]"],
        ),
        (
            "sum negative axis",
            f(|| t23().sum(&[-3], false)),
            vec!["sum", "axis -3", "[2, 3]"],
        ),
        (
            "mean axis",
            f(|| t23().mean(&[5], true)),
            vec!["mean", "axis 5", "[2, 3]"],
        ),
        (
            "transpose axis",
            f(|| t23().transpose(0, 2)),
            vec!["transpose", "axis 2", "[2, 3]"],
        ),
        (
            "t of a vector",
            f(|| Tensor::zeros(&[3], DType::F32).t()),
            vec!["t: shape [3]"],
        ),
        (
            "narrow axis",
            f(|| t23().narrow(-3, 0, 1)),
            vec!["narrow", "axis -3", "[2, 3]"],
        ),
        (
            "narrow out of bounds",
            f(|| t23().narrow(1, 2, 2)),
            vec!["narrow", "[2, 3]", "2..4", "size 3"],
        ),
        (
            "slice out of bounds",
            f(|| t23().slice(0, 1, 3, 1)),
            vec!["slice", "[2, 3]", "1..3"],
        ),
        (
            "squeeze axis",
            f(|| t23().squeeze(2)),
            vec!["squeeze", "axis 2", "[2, 3]"],
        ),
        (
            "squeeze non-1",
            f(|| t23().squeeze(0)),
            vec!["squeeze", "[2, 3]", "size 2"],
        ),
        (
            "unsqueeze axis",
            f(|| t23().unsqueeze(4)),
            vec!["unsqueeze", "axis 4", "[2, 3]"],
        ),
        (
            "reshape count",
            f(|| t23().reshape(&[4])),
            vec!["reshape", "[2, 3]", "[4]", "6 vs 4"],
        ),
        (
            "broadcast_to",
            f(|| t23().broadcast_to(&[3, 3])),
            vec!["broadcast_to", "[2, 3]", "[3, 3]"],
        ),
        (
            "permute repeat",
            f(|| t23().permute(&[0, 0])),
            vec!["permute", "[2, 3]", "[0, 0]"],
        ),
        (
            "permute length",
            f(|| t23().permute(&[1])),
            vec!["permute", "[2, 3]", "[1]"],
        ),
        (
            "max of empty",
            f(|| Tensor::zeros(&[0, 3], DType::F32).max(&[0], false)),
            vec!["max", "[0, 3]"],
        ),
        (
            "argmin of empty",
            f(|| Tensor::zeros(&[2, 0], DType::F64).argmin(1, false)),
            vec!["argmin", "[2, 0]"],
        ),
        (
            "softmax axis",
            f(|| t23().softmax(2)),
            vec!["softmax", "axis 2", "[2, 3]"],
        ),
        (
            "argmax axis",
            f(|| t23().argmax(-3, false)),
            vec!["argmax", "axis -3", "[2, 3]"],
        ),
        (
            "from_vec length",
            f(|| Tensor::from_vec(vec![0.0f32; 5], &[2, 3])),
            vec!["from_vec", "[2, 3]", "6", "5"],
        ),
        (
            "sum_to_shape",
            f(|| sum_to_shape(&t23(), &[2])),
            vec!["sum_to_shape", "[2, 3]", "[2]"],
        ),
        (
            "item of many",
            f(|| t23().item::<f32>().map(Tensor::scalar)),
            vec!["item", "[2, 3]"],
        ),
        (
            "flatten order",
            f(|| Tensor::zeros(&[2, 3, 4], DType::F32).flatten(2, 1)),
            vec!["flatten", "start axis 2", "end axis 1"],
        ),
        // Errors about dtypes and arguments name the op and what was wrong (no shapes involved).
        (
            "dtype mismatch",
            f(|| t23().mul(&Tensor::zeros(&[2, 3], DType::F64))),
            vec!["mul", "f32", "f64"],
        ),
        (
            "float op on i64",
            f(|| Tensor::zeros(&[2], DType::I64).exp()),
            vec!["exp", "i64"],
        ),
        (
            "sum of bool",
            f(|| Tensor::zeros(&[2], DType::Bool).sum(&[], false)),
            vec!["sum", "bool"],
        ),
        (
            "where_ mask dtype",
            f(|| Tensor::where_(&t23(), &t23(), &t23())),
            vec!["where_", "f32", "bool"],
        ),
        (
            "to_vec wrong type",
            f(|| t23().to_vec::<f64>().map(|_| t23())),
            vec!["to_vec", "f32", "f64"],
        ),
        (
            "clamp min > max",
            f(|| t23().clamp(2.0, 1.0)),
            vec!["clamp", "min 2", "max 1"],
        ),
        (
            "arange step 0",
            f(|| Tensor::arange(0.0, 1.0, 0.0, DType::F32)),
            vec!["arange", "step 0"],
        ),
        (
            "slice step 0",
            f(|| t23().slice(0, 0, 1, 0)),
            vec!["slice", "step"],
        ),
        (
            "sum duplicate axis",
            f(|| t23().sum(&[0, -2], false)),
            vec!["sum", "axis -2", "twice"],
        ),
        (
            "randn std < 0",
            f(|| {
                use rand_chacha::rand_core::SeedableRng;
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
                Tensor::randn(&[2], 0.0, -1.0, DType::F32, &mut rng)
            }),
            vec!["randn", "std -1"],
        ),
    ]
}

#[test]
fn every_invalid_call_is_an_error_naming_op_and_shapes() {
    for (what, call, parts) in table() {
        let e = match call() {
            Ok(t) => panic!(
                "{what}: expected an error, got a tensor of shape {:?}",
                t.shape()
            ),
            Err(e) => e.to_string(),
        };
        for p in parts {
            assert!(e.contains(p), "{what}: message {e:?} lacks {p:?}");
        }
        // Messages start with the op name.
        assert!(
            e.split(':')
                .next()
                .is_some_and(|op| !op.is_empty() && !op.contains(' ')),
            "{what}: {e:?}"
        );
    }
}

#[test]
fn exact_messages() {
    let cases: Vec<(Result<Tensor>, &str)> = vec![
        (t23().add(&Tensor::zeros(&[4], DType::F32)),
            "add: lhs [2, 3] and rhs [4]: cannot broadcast: dimension 3 and 4 differ and neither is 1"),
        (t23().matmul(&t23()), "matmul: lhs [2, 3] and rhs [2, 3]: inner dimensions 3 and 2 differ"),
        (Tensor::zeros(&[2, 3, 4], DType::F32).matmul(&Tensor::zeros(&[3, 4, 5], DType::F32)),
            "matmul: lhs [2, 3, 4] and rhs [3, 4, 5]: batch dimensions do not broadcast"),
        (t23().sum(&[2], false), "sum: axis 2 is out of range for a tensor of shape [2, 3]"),
        (t23().narrow(1, 2, 2), "narrow: shape [2, 3]: range 2..4 is out of bounds for axis 1 of size 3"),
        (t23().reshape(&[4]), "reshape: lhs [2, 3] and rhs [4]: element counts differ (6 vs 4)"),
        (t23().mul(&Tensor::zeros(&[2, 3], DType::F64)), "mul: dtype mismatch: lhs is f32 and rhs is f64"),
        (Tensor::zeros(&[2], DType::I64).exp(),
            "exp: dtype i64 is not supported: compute in f32 or f64 (convert with to_dtype)"),
        (Tensor::zeros(&[0, 3], DType::F32).max(&[0], false), "max: cannot reduce an empty tensor of shape [0, 3]"),
        (Tensor::from_vec(vec![0.0f32; 5], &[2, 3]), "from_vec: shape [2, 3]: needs 6 elements but 5 were given"),
        (t23().permute(&[0, 0]),
            "permute: lhs [2, 3] and rhs [0, 0]: the permutation must list every axis exactly once"),
        (Tensor::arange(0.0, 1.0, 0.0, DType::F32),
            "arange: start 0, end 1, step 0: step must be finite and non-zero"),
        (t23().clamp(2.0, 1.0), "clamp: min 2 is greater than max 1"),
    ];
    for (r, want) in cases {
        assert_eq!(r.unwrap_err().to_string(), want);
    }
}

#[test]
fn errors_leave_inputs_usable() {
    let x = t23();
    assert!(x.reshape(&[7]).is_err());
    assert_eq!(x.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
    assert!(x.get_f64(&[2, 0]).is_err());
    assert!(x.get_f64(&[0]).is_err());
    assert!(x.dim(2).is_err());
    assert_eq!(x.dim(-1).unwrap(), 3);
}
