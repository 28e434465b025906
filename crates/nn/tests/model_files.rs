//! Model files: the reference implementation's fixture, the byte layout
//! heft writes, dtype conversion, strict/non-strict loading, corrupt input.

use half::{bf16, f16};
use heft_nn::io::{self, LoadOptions, SaveDType};
use heft_nn::{ParamKind, ParamStore};
use heft_tensor::{DType, Tensor};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.safetensors")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("heft-model-files-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn reference_fixture_loads_with_the_right_values() {
    let (tensors, meta) = io::load_file(&fixture()).unwrap();
    assert_eq!(
        meta.get("made_by").map(String::as_str),
        Some("safetensors-python")
    );
    let get = |n: &str| tensors.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let w = get("layer.weight");
    assert_eq!((w.dtype(), w.shape()), (DType::F32, &[2usize, 3][..]));
    assert_eq!(
        w.to_vec::<f32>().unwrap(),
        vec![0.5, -1.25, 3.0, 1e-3, -0.0, 65504.0]
    );
    assert_eq!(get("layer.bias").to_vec::<f64>().unwrap(), vec![0.1, -0.2]);
    let h = get("half");
    assert_eq!(h.dtype(), DType::F16);
    assert_eq!(
        h.to_vec::<f16>().unwrap(),
        [1.0, -2.5, 0.333251953125, 6.0e-5]
            .map(f16::from_f64)
            .to_vec()
    );
    assert_eq!(get("ids").to_vec::<i64>().unwrap(), vec![0, -7, 1 << 40]);
    assert_eq!(
        get("small_ints").to_vec::<i64>().unwrap(),
        vec![-128, 0, 127]
    );
    assert_eq!(
        get("counts").to_vec::<i64>().unwrap(),
        vec![1, 2, 3, 4_000_000]
    );
    assert_eq!(get("bytes").to_vec::<i64>().unwrap(), vec![0, 255]);
    assert_eq!(
        get("mask").to_vec::<bool>().unwrap(),
        vec![true, false, true]
    );
    let s = get("scalar");
    assert_eq!((s.shape(), s.item::<f32>().unwrap()), (&[][..], 2.75));
    let header = io::read_header(&fixture()).unwrap();
    assert_eq!(header.tensors.len(), 9);
    assert_eq!(header.file_len, std::fs::metadata(fixture()).unwrap().len());
}

fn two_param_store() -> ParamStore {
    let mut s = ParamStore::new();
    s.add(
        "enc.fc.weight",
        Tensor::from_vec(vec![1.0f32, -2.0, 0.1, 3.0e38], &[2, 2]).unwrap(),
        ParamKind::Weight,
    )
    .unwrap();
    s.add(
        "enc.fc.bias",
        Tensor::from_vec(vec![0.25f32, -0.125], &[2]).unwrap(),
        ParamKind::Bias,
    )
    .unwrap();
    s.add_buffer(
        "bn.running_mean",
        Tensor::from_vec(vec![0.5f32], &[1]).unwrap(),
    )
    .unwrap();
    s
}

#[test]
fn heft_files_have_the_specified_byte_layout() {
    let d = tmpdir("layout");
    let p = d.join("m.safetensors");
    two_param_store()
        .save_safetensors(&p, SaveDType::F32, "test-arch", &[("k".into(), "v".into())])
        .unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The header is padded so the data section starts 8-byte aligned.
    assert_eq!((8 + n) % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"]["format"], "heft");
    assert_eq!(header["__metadata__"]["format_version"], io::FORMAT_VERSION);
    assert_eq!(header["__metadata__"]["architecture"], "test-arch");
    assert_eq!(header["__metadata__"]["k"], "v");
    let w = &header["enc.fc.weight"];
    assert_eq!(w["dtype"], "F32");
    assert_eq!(w["shape"], serde_json::json!([2, 2]));
    let (b, e) = (
        w["data_offsets"][0].as_u64().unwrap() as usize,
        w["data_offsets"][1].as_u64().unwrap() as usize,
    );
    assert_eq!(e - b, 16);
    let data = &bytes[8 + n..];
    let vals: Vec<f32> = data[b..e]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals, vec![1.0, -2.0, 0.1, 3.0e38]);
    // Offsets tile the data section exactly.
    let mut spans: Vec<(u64, u64)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(_, v)| {
            (
                v["data_offsets"][0].as_u64().unwrap(),
                v["data_offsets"][1].as_u64().unwrap(),
            )
        })
        .collect();
    spans.sort();
    assert_eq!(spans[0].0, 0);
    for w in spans.windows(2) {
        assert_eq!(w[0].1, w[1].0);
    }
    assert_eq!(spans.last().unwrap().1 as usize, data.len());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn f16_and_bf16_round_trips_round_to_nearest() {
    let d = tmpdir("dtypes");
    for (save, dt) in [
        (SaveDType::F16, "F16"),
        (SaveDType::BF16, "BF16"),
        (SaveDType::F32, "F32"),
    ] {
        let p = d.join(format!("{dt}.safetensors"));
        let src = two_param_store();
        src.save_safetensors(&p, save, "a", &[]).unwrap();
        let h = io::read_header(&p).unwrap();
        assert!(h.tensors.iter().all(|t| t.dtype == dt), "{dt}");
        let mut dst = two_param_store();
        dst.set_named("enc.fc.bias", Tensor::zeros(&[2], DType::F32))
            .unwrap();
        let report = dst.load_safetensors(&p, LoadOptions::default()).unwrap();
        assert!(report.is_exact());
        let got = dst
            .value(dst.id("enc.fc.weight").unwrap())
            .to_vec::<f32>()
            .unwrap();
        let want: Vec<f32> = [1.0f32, -2.0, 0.1, 3.0e38]
            .iter()
            .map(|&x| match save {
                SaveDType::F16 => f16::from_f32(x).to_f32(),
                SaveDType::BF16 => bf16::from_f32(x).to_f32(),
                _ => x,
            })
            .collect();
        assert_eq!(got, want, "{dt}");
        // The loaded value keeps the model's dtype.
        assert_eq!(
            dst.value(dst.id("enc.fc.weight").unwrap()).dtype(),
            DType::F32
        );
    }
    // 3.0e38 overflows f16 to inf but not bf16.
    assert!(f16::from_f32(3.0e38).to_f32().is_infinite());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn strict_loading_lists_every_problem_and_changes_nothing() {
    let d = tmpdir("strict");
    let p = d.join("m.safetensors");
    two_param_store()
        .save_safetensors(&p, SaveDType::F32, "a", &[])
        .unwrap();
    let mut other = ParamStore::new();
    other
        .add(
            "enc.fc.weight",
            Tensor::zeros(&[3, 2], DType::F32),
            ParamKind::Weight,
        )
        .unwrap();
    other
        .add(
            "head.weight",
            Tensor::zeros(&[2, 2], DType::F32),
            ParamKind::Weight,
        )
        .unwrap();
    other
        .add_buffer("bn.running_mean", Tensor::zeros(&[1], DType::F32))
        .unwrap();
    let e = other
        .load_safetensors(&p, LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "load: missing: head.weight; unexpected: enc.fc.bias; wrong shape: enc.fc.weight (model [3, 2], file [2, 2])");
    assert_eq!(
        other
            .buffer(other.buffer_id("bn.running_mean").unwrap())
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0]
    );
    // Non-strict: loads what matches, reports the rest.
    let r = other
        .load_safetensors(&p, LoadOptions { strict: false })
        .unwrap();
    assert_eq!(r.loaded, vec!["bn.running_mean".to_string()]);
    assert_eq!(r.missing, vec!["head.weight".to_string()]);
    assert_eq!(r.unexpected, vec!["enc.fc.bias".to_string()]);
    assert_eq!(r.wrong_shape.len(), 1);
    assert_eq!(
        other
            .buffer(other.buffer_id("bn.running_mean").unwrap())
            .to_vec::<f32>()
            .unwrap(),
        vec![0.5]
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn corrupt_files_are_errors_not_panics() {
    let d = tmpdir("corrupt");
    let good = std::fs::read(fixture()).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", vec![1, 2, 3]),
        ("huge header length", u64::MAX.to_le_bytes().to_vec()),
        (
            "not json",
            [8u64.to_le_bytes().to_vec(), b"{{{{{{{{".to_vec()].concat(),
        ),
        ("truncated data", good[..good.len() - 5].to_vec()),
    ];
    for (name, bytes) in cases {
        let p = d.join("bad.safetensors");
        std::fs::write(&p, &bytes).unwrap();
        let e = io::load_file(&p).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{name}: {e}");
    }
    assert!(io::load_file(&d.join("nope.safetensors"))
        .unwrap_err()
        .to_string()
        .contains("No such file"));
    std::fs::remove_dir_all(&d).ok();
}

/// The in-memory readers agree with the file readers on good and bad bytes.
#[test]
fn bytes_readers_match_file_readers() {
    let good = std::fs::read(fixture()).unwrap();
    assert_eq!(
        io::read_header_bytes(&good).unwrap(),
        io::read_header(&fixture()).unwrap()
    );
    let (mem, mem_meta) = io::load_bytes(&good).unwrap();
    let (file, file_meta) = io::load_file(&fixture()).unwrap();
    assert_eq!(mem_meta, file_meta);
    assert_eq!(mem.len(), file.len());
    for ((mn, mt), (f_n, ft)) in mem.iter().zip(&file) {
        assert_eq!(mn, f_n);
        assert!(mt.equal(ft), "{mn}");
    }
    let d = tmpdir("bytes");
    let p = d.join("bad.safetensors");
    for cut in [0, 3, 8, 20, good.len() - 5] {
        let bytes = &good[..cut];
        std::fs::write(&p, bytes).unwrap();
        let from_file = io::load_file(&p).unwrap_err().to_string();
        let from_mem = io::load_bytes(bytes).unwrap_err().to_string();
        // Same message after the path prefix.
        let tail = |s: &str| s.split_once(": ").map(|(_, t)| t.to_string()).unwrap();
        assert_eq!(tail(&from_file), tail(&from_mem), "cut at {cut}");
        assert!(io::read_header_bytes(bytes).is_err() || cut == good.len() - 5);
    }
    std::fs::remove_dir_all(&d).ok();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]
    /// Any single-byte corruption of a valid file loads or fails cleanly, never panics.
    #[test]
    fn mutated_files_never_panic(pos in 0usize..732, byte in any::<u8>()) {
        let mut bytes = std::fs::read(fixture()).unwrap();
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        let d = tmpdir(&format!("mut-{pos}-{byte}"));
        let p = d.join("m.safetensors");
        std::fs::write(&p, &bytes).unwrap();
        let _ = io::read_header(&p);
        let _ = io::load_file(&p);
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn atomic_write_leaves_no_partial_file() {
    let d = tmpdir("atomic");
    let p = d.join("m.safetensors");
    two_param_store()
        .save_safetensors(&p, SaveDType::F32, "first", &[])
        .unwrap();
    // A failing write (directory in the way) leaves the good file untouched and no temp file.
    let blocked = d.join("blocked.safetensors");
    std::fs::create_dir_all(&blocked).unwrap();
    assert!(two_param_store()
        .save_safetensors(&blocked, SaveDType::F32, "x", &[])
        .is_err());
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    assert_eq!(
        io::read_header(&p).unwrap().metadata["architecture"],
        "first"
    );
    std::fs::remove_dir_all(&d).ok();
}
