//! End-to-end tests of the `heft` binary: train, eval, inspect, bench and
//! the error paths, run as a user would (a child process).

use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn heft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heft"))
        .args(args)
        .output()
        .expect("run heft")
}

fn ok_json(args: &[&str]) -> Value {
    let out = heft(args);
    assert!(
        out.status.success(),
        "heft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "heft {args:?}: stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Run, expect failure, return stderr (checked to be one line, no panic).
fn fails(args: &[&str]) -> String {
    let out = heft(args);
    assert!(!out.status.success(), "heft {args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "heft {args:?}: exit status");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

fn dir(name: &str) -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 90 rows, 4 features, 3 well-separated classes, with a header row.
fn small_csv(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "f1,f2,f3,f4,label").unwrap();
    for i in 0..90usize {
        let c = i % 3;
        let noise = |k: usize| ((i * 37 + k * 11) % 13) as f64 / 13.0 - 0.5;
        let center = [c as f64 * 3.0, -(c as f64) * 2.0, 1.0, c as f64];
        let row: Vec<String> = (0..4)
            .map(|k| format!("{:.3}", center[k] + noise(k)))
            .collect();
        writeln!(f, "{},{c}", row.join(",")).unwrap();
    }
}

#[test]
fn train_eval_inspect_round_trip() {
    let d = dir("round");
    let csv = d.join("small.csv");
    small_csv(&csv);
    let (model, test, png) = (d.join("m.safetensors"), d.join("test.csv"), d.join("c.png"));
    let t = ok_json(&[
        "train",
        "--data",
        s(&csv),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--json",
        "--quiet",
        "--out",
        s(&model),
        "--save-test",
        s(&test),
        "--plot",
        s(&png),
        "--threads",
        "1",
    ]);
    // MLP 4-8-3: weights 4*8 + 8*3, biases 8 + 3.
    assert_eq!(t["params"]["weights"], 56);
    assert_eq!(t["params"]["biases"], 11);
    assert_eq!(t["params"]["total"], 67);
    assert_eq!(t["epochs"], 1);
    assert_eq!(t["architecture"], "mlp:4-8-3");
    assert_eq!(t["out"], s(&model));
    assert_eq!(t["test_rows"], 18);
    assert_eq!(t["train_rows"], 72);
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert!(t["train_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(t["history"].as_array().unwrap().len(), 1);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    // Eval on the saved test split reproduces training's test accuracy exactly.
    let e = ok_json(&["eval", s(&model), "--data", s(&test), "--json"]);
    assert_eq!(e["accuracy"].as_f64().unwrap(), acc);
    assert_eq!(e["rows"], 18);
    let conf = e["confusion"].as_array().unwrap();
    assert_eq!(conf.len(), 3);
    let total: u64 = conf
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 18);
    // And on the whole file (with its header row).
    let e = ok_json(&["eval", s(&model), "--data", s(&csv), "--json"]);
    assert_eq!(e["rows"], 90);
    assert!((0.0..=1.0).contains(&e["accuracy"].as_f64().unwrap()));

    // Inspect: same counts, preprocess buffers as `other`, architecture metadata.
    let i = ok_json(&["inspect", s(&model), "--json"]);
    assert_eq!(i["params"]["weights"], 56);
    assert_eq!(i["params"]["biases"], 11);
    assert_eq!(i["params"]["other"], 8);
    assert_eq!(i["params"]["total"], 75);
    assert_eq!(i["size_bytes"]["f32"], 300);
    assert_eq!(i["size_bytes"]["f16"], 150);
    assert_eq!(i["size_bytes"]["int8"], 75);
    assert_eq!(i["size_bytes"]["int4"], 38);
    assert_eq!(i["metadata"]["architecture"], "mlp:4-8-3");
    assert_eq!(i["tensors"].as_array().unwrap().len(), 6);
    assert!(i["tensors"][0].get("stats").is_none());
    let i = ok_json(&["inspect", s(&model), "--json", "--stats"]);
    for t in i["tensors"].as_array().unwrap() {
        let st = &t["stats"];
        assert_eq!(st["nan"], 0, "{t}");
        assert_eq!(st["inf"], 0, "{t}");
        assert!(st["min"].as_f64().unwrap() <= st["mean"].as_f64().unwrap());
        assert!(st["mean"].as_f64().unwrap() <= st["max"].as_f64().unwrap());
        assert!(st["std"].as_f64().unwrap() >= 0.0);
    }
    let std = i["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "preprocess.std")
        .unwrap();
    assert!(std["stats"]["min"].as_f64().unwrap() > 0.0);
    assert!(i["warnings"].as_array().unwrap().is_empty());
    // The human-readable forms run too.
    for args in [
        vec!["inspect", s(&model), "--stats"],
        vec!["eval", s(&model), "--data", s(&test)],
    ] {
        let out = heft(&args);
        assert!(out.status.success());
        assert!(!out.stdout.is_empty());
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn default_train_on_embedded_digits() {
    let d = dir("digits");
    let model = d.join("digits.safetensors");
    let t = ok_json(&["train", "--epochs", "1", "--json", "--out", s(&model)]);
    assert_eq!(t["architecture"], "mlp:64-128-64-10");
    // 64*128 + 128*64 + 64*10 weights, 128 + 64 + 10 biases.
    assert_eq!(t["params"]["weights"], 17024);
    assert_eq!(t["params"]["biases"], 202);
    assert_eq!(t["params"]["total"], 17226);
    assert_eq!(
        t["train_rows"].as_u64().unwrap() + t["test_rows"].as_u64().unwrap(),
        1797
    );
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.8, "one epoch should already reach 80%, got {acc}");
    assert!(model.exists());
    std::fs::remove_dir_all(&d).ok();
}

/// The acceptance bar: the default run (MLP, AdamW, stratified 80/20
/// split) reaches at least 97% test accuracy; scikit-learn's MLPClassifier
/// reaches 97.5% on the same split. Seeds 0..9 measured 97.2-99.7%.
#[test]
fn default_train_reaches_97_percent_on_digits() {
    let d = dir("digits97");
    let model = d.join("digits.safetensors");
    let t = ok_json(&["train", "--seed", "0", "--json", "--out", s(&model)]);
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.97, "test accuracy {acc}");
    assert_eq!(t["test_rows"].as_u64().unwrap(), 359);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn errors_are_one_line() {
    let d = dir("errors");
    let missing = d.join("nope.safetensors");
    assert!(fails(&["inspect", s(&missing)]).contains("no such file"));
    assert!(fails(&["eval", s(&missing), "--data", s(&missing)]).contains("no such file"));
    assert!(fails(&["train", "--data", s(&d.join("nope.csv"))]).contains("cannot read"));

    let ragged = d.join("ragged.csv");
    std::fs::write(&ragged, "a,b,label\n1,2,0\n3,1\n4,5,1\n").unwrap();
    let e = fails(&["train", "--data", s(&ragged)]);
    assert!(
        e.contains("line 3") && e.contains("expected 3 columns"),
        "{e}"
    );
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "1,2,0\n1,2,1\n1,x,0\n").unwrap();
    let e = fails(&["train", "--data", s(&bad)]);
    assert!(e.contains("line 3, column 2"), "{e}");

    // A model for 4 features, data with 2.
    let csv = d.join("small.csv");
    small_csv(&csv);
    let model = d.join("m.safetensors");
    ok_json(&[
        "train",
        "--data",
        s(&csv),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--json",
        "--out",
        s(&model),
    ]);
    let two = d.join("two.csv");
    std::fs::write(&two, "1,2,0\n3,4,1\n").unwrap();
    let e = fails(&["eval", s(&model), "--data", s(&two)]);
    assert!(
        e.contains("2 feature columns") && e.contains("expects 4"),
        "{e}"
    );

    // Corrupt model files: garbage, and a truncated real one.
    let garbage = d.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a model file at all").unwrap();
    for cmd in ["inspect", "eval"] {
        let mut args = vec![cmd, s(&garbage)];
        if cmd == "eval" {
            args.extend(["--data", s(&csv)]);
        }
        let e = fails(&args);
        assert!(e.contains("not a safetensors file"), "{e}");
    }
    let bytes = std::fs::read(&model).unwrap();
    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let e = fails(&["eval", s(&truncated), "--data", s(&csv)]);
    assert!(e.contains("truncated"), "{e}");
    let e = fails(&["inspect", s(&truncated), "--stats"]);
    assert!(e.contains("truncated"), "{e}");
    // A safetensors file heft did not write cannot be evaluated, but can be inspected.
    let foreign = d.join("foreign.safetensors");
    write_header_only(&foreign, &[("w", "F32", vec![2, 2])]);
    assert!(fails(&["eval", s(&foreign), "--data", s(&csv)]).contains("not a heft model"));
    std::fs::remove_dir_all(&d).ok();
}

/// Write a safetensors header for `tensors` and extend the file to its full
/// length with `set_len` (sparse: no data is written). Returns the element count.
fn write_header_only(path: &Path, tensors: &[(&str, &str, Vec<usize>)]) -> u64 {
    let mut header = serde_json::Map::new();
    let mut off = 0u64;
    let mut total = 0u64;
    for (name, dtype, shape) in tensors {
        let n: u64 = shape.iter().map(|&d| d as u64).product();
        let bytes = n * if *dtype == "F32" { 4 } else { 2 };
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + bytes]}),
        );
        off += bytes;
        total += n;
    }
    let mut json = serde_json::to_vec(&Value::Object(header)).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&(json.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&json).unwrap();
    f.set_len(8 + json.len() as u64 + off).unwrap();
    total
}

#[test]
fn inspect_sparse_7b_reads_only_the_header() {
    let d = dir("sparse7b");
    let path = d.join("llama-7b-shaped.safetensors");
    let (h, v, ff, layers) = (4096usize, 32000usize, 11008usize, 32);
    let mut names = Vec::new();
    names.push(("model.embed_tokens.weight".to_string(), "BF16", vec![v, h]));
    for l in 0..layers {
        for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            names.push((
                format!("model.layers.{l}.self_attn.{p}.weight"),
                "BF16",
                vec![h, h],
            ));
        }
        names.push((
            format!("model.layers.{l}.mlp.gate_proj.weight"),
            "BF16",
            vec![ff, h],
        ));
        names.push((
            format!("model.layers.{l}.mlp.up_proj.weight"),
            "BF16",
            vec![ff, h],
        ));
        names.push((
            format!("model.layers.{l}.mlp.down_proj.weight"),
            "BF16",
            vec![h, ff],
        ));
        names.push((
            format!("model.layers.{l}.input_layernorm.weight"),
            "F16",
            vec![h],
        ));
        names.push((
            format!("model.layers.{l}.post_attention_layernorm.weight"),
            "F16",
            vec![h],
        ));
    }
    names.push(("model.norm.weight".to_string(), "F16", vec![h]));
    names.push(("lm_head.weight".to_string(), "BF16", vec![v, h]));
    let refs: Vec<(&str, &str, Vec<usize>)> = names
        .iter()
        .map(|(n, d, s)| (n.as_str(), *d, s.clone()))
        .collect();
    let total = write_header_only(&path, &refs);
    assert_eq!(total, 6_738_415_616);

    let start = Instant::now();
    let i = ok_json(&["inspect", s(&path), "--json"]);
    let secs = start.elapsed().as_secs_f64();
    assert!(secs < 5.0, "inspect of a header took {secs} s");
    let norms = (2 * layers + 1) * h;
    assert_eq!(i["params"]["total"].as_u64().unwrap(), total);
    assert_eq!(i["params"]["biases"], 0);
    // The embedding and the norm scales are `other`; lm_head is a weight.
    assert_eq!(
        i["params"]["other"].as_u64().unwrap(),
        (norms + v * h) as u64
    );
    assert_eq!(
        i["params"]["weights"].as_u64().unwrap(),
        total - (norms + v * h) as u64
    );
    let f16 = i["size_bytes"]["f16"].as_u64().unwrap();
    assert_eq!(f16, 2 * total);
    assert!((13.0e9..14.5e9).contains(&(f16 as f64)), "{f16}");
    assert_eq!(i["size_bytes"]["int4"].as_u64().unwrap(), total / 2);
    assert!(i["file_bytes"].as_u64().unwrap() > 2 * total);
    // The table says "13.5 GB" at f16.
    let out = heft(&["inspect", s(&path)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("f16 13.5 GB"), "{text}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn help_documents_the_rules_and_bench_runs() {
    let out = heft(&["inspect", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "running_mean",
        "embed",
        "norm",
        "bias",
        "1e-6",
        "rms exceeds 100",
    ] {
        assert!(help.contains(word), "inspect --help lacks `{word}`");
    }
    let b = ok_json(&[
        "bench",
        "matmul",
        "--sizes",
        "32,48",
        "--budget",
        "0.01",
        "--json",
        "--threads",
        "1",
    ]);
    assert!(["scalar", "avx2", "avx512"].contains(&b["kernel_path"].as_str().unwrap()));
    assert_eq!(b["threads"], 1);
    assert_eq!(b["matmul"].as_array().unwrap().len(), 6);
    assert!(b["fma_peak_gflops"].as_f64().unwrap() > 0.0);
    for r in b["matmul"].as_array().unwrap() {
        assert!(r["gflops"].as_f64().unwrap() > 0.0);
    }
    let b = ok_json(&["bench", "ops", "--budget", "0.01", "--json"]);
    assert!(b["ops"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["gbps"].as_f64().unwrap() > 0.0));
}
