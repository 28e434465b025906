//! Model files in the [safetensors] format: save and load a [`ParamStore`]
//! in f32, f16 or bf16, with metadata; read any safetensors file's header
//! without touching its data; atomic writes.
//!
//! The format: 8 bytes little-endian `N` (header length), `N` bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//! ..., "__metadata__": {"k": "v"}}`), then the tensor bytes, little-endian,
//! row-major, offsets relative to the end of the header. Files are written
//! through the `safetensors` crate (the reference implementation's Rust
//! twin) and read back through it; [`read_header`] parses the JSON itself,
//! reading only `8 + N` bytes, so a 14 GB model's header is read in
//! microseconds.
//!
//! Writes are atomic: a temporary file in the same directory is written,
//! flushed to disk (`fsync`) and renamed over the target, so a crash never
//! leaves a half-written file in place of a good one.
//!
//! [safetensors]: https://github.com/huggingface/safetensors
//!
//! ```
//! use heft_nn::{ParamStore, ParamKind, io::{SaveDType, LoadOptions}};
//! use heft_tensor::Tensor;
//! # fn main() -> heft_nn::Result<()> {
//! let dir = std::env::temp_dir().join(format!("heft-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("model.safetensors");
//! let mut store = ParamStore::new();
//! store.add("fc.weight", Tensor::from_vec(vec![0.5f32, -1.25, 3.0, 0.0], &[2, 2])?, ParamKind::Weight)?;
//! store.add("fc.bias", Tensor::from_vec(vec![0.1f32, 0.2], &[2])?, ParamKind::Bias)?;
//! store.save_safetensors(&path, SaveDType::F16, "doc-mlp", &[])?;
//!
//! let header = heft_nn::io::read_header(&path)?;
//! assert_eq!(header.metadata.get("architecture").map(String::as_str), Some("doc-mlp"));
//! assert_eq!(header.tensors.len(), 2);
//!
//! let mut other = ParamStore::new();
//! other.add("fc.weight", Tensor::zeros(&[2, 2], heft_tensor::DType::F32), ParamKind::Weight)?;
//! other.add("fc.bias", Tensor::zeros(&[2], heft_tensor::DType::F32), ParamKind::Bias)?;
//! other.load_safetensors(&path, LoadOptions::default())?;
//! // f16 holds these exactly except 0.1 and 0.2, which round to the nearest f16.
//! assert_eq!(other.value(other.id("fc.weight").unwrap()).to_vec::<f32>()?, vec![0.5, -1.25, 3.0, 0.0]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

use crate::error::{NnError, Result};
use crate::params::ParamStore;
use half::{bf16, f16};
use heft_tensor::{DType, Tensor};
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

/// Named tensors, in file order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// A file's `__metadata__` string map.
pub type Metadata = BTreeMap<String, String>;

/// The format version heft writes in its metadata (`format_version`).
pub const FORMAT_VERSION: &str = "1";

/// The float dtype to store parameters in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveDType {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Each tensor's own dtype.
    Keep,
}

impl SaveDType {
    /// Parse `f32`, `f16`, `bf16` or `keep`.
    pub fn parse(s: &str) -> Option<SaveDType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(SaveDType::F32),
            "f16" => Some(SaveDType::F16),
            "bf16" => Some(SaveDType::BF16),
            "keep" => Some(SaveDType::Keep),
            _ => None,
        }
    }
}

/// One tensor's entry in a file header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    /// Name.
    pub name: String,
    /// The dtype as the file spells it (`F32`, `BF16`, `I8`, ...).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range relative to the start of the data section.
    pub data_offsets: (usize, usize),
}

impl TensorEntry {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bits per element of the file dtype, if known.
    pub fn bits(&self) -> Option<usize> {
        dtype_bits(&self.dtype)
    }
}

/// Bits per element of a safetensors dtype name.
pub fn dtype_bits(name: &str) -> Option<usize> {
    Some(match name {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" => 64,
        _ => return None,
    })
}

/// A parsed file header.
#[derive(Clone, Debug, PartialEq)]
pub struct FileHeader {
    /// Tensors in data order.
    pub tensors: Vec<TensorEntry>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
    /// Length of the JSON header in bytes.
    pub header_len: usize,
    /// Length of the whole file in bytes.
    pub file_len: u64,
}

fn file_err(path: &Path, msg: impl Into<String>) -> NnError {
    NnError::File {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// The largest header heft accepts (as the reference implementation: 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// Read and validate only the header of a safetensors file.
pub fn read_header(path: &Path) -> Result<FileHeader> {
    let mut f = std::fs::File::open(path).map_err(|e| file_err(path, e.to_string()))?;
    let file_len = f
        .metadata()
        .map_err(|e| file_err(path, e.to_string()))?
        .len();
    let mut nb = [0u8; 8];
    f.read_exact(&mut nb)
        .map_err(|_| too_short(path, file_len))?;
    let n = header_len(path, nb, file_len)?;
    let mut buf = vec![0u8; n];
    f.read_exact(&mut buf)
        .map_err(|e| file_err(path, e.to_string()))?;
    parse_header(path, &buf, file_len)
}

/// The label in errors about an in-memory file.
const IN_MEMORY: &str = "<in-memory safetensors>";

/// [`read_header`] of a whole safetensors file already in memory.
pub fn read_header_bytes(bytes: &[u8]) -> Result<FileHeader> {
    header_from_bytes(Path::new(IN_MEMORY), bytes)
}

fn header_from_bytes(path: &Path, bytes: &[u8]) -> Result<FileHeader> {
    let file_len = bytes.len() as u64;
    let nb: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| too_short(path, file_len))?;
    let n = header_len(path, nb, file_len)?;
    parse_header(path, &bytes[8..8 + n], file_len)
}

fn too_short(path: &Path, file_len: u64) -> NnError {
    file_err(
        path,
        format!("not a safetensors file: {file_len} bytes is too short for a header"),
    )
}

/// The header length from the first 8 bytes, checked against the file length.
fn header_len(path: &Path, nb: [u8; 8], file_len: u64) -> Result<usize> {
    let n = u64::from_le_bytes(nb);
    if n > MAX_HEADER || 8 + n > file_len {
        return Err(file_err(
            path,
            format!(
                "not a safetensors file: header length {n} does not fit a file of {file_len} bytes"
            ),
        ));
    }
    Ok(n as usize)
}

fn parse_header(path: &Path, buf: &[u8], file_len: u64) -> Result<FileHeader> {
    let v: serde_json::Value =
        serde_json::from_slice(buf).map_err(|e| file_err(path, format!("corrupt header: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| file_err(path, "corrupt header: not a JSON object"))?;
    let mut tensors = Vec::new();
    let mut metadata = BTreeMap::new();
    for (name, entry) in obj {
        if name == "__metadata__" {
            let m = entry
                .as_object()
                .ok_or_else(|| file_err(path, "corrupt header: __metadata__ is not an object"))?;
            for (k, val) in m {
                metadata.insert(
                    k.clone(),
                    val.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| val.to_string()),
                );
            }
            continue;
        }
        let bad = |what: &str| file_err(path, format!("corrupt header: tensor `{name}`: {what}"));
        let dtype = entry
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("missing dtype"))?
            .to_string();
        let shape: Vec<usize> = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("missing shape"))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .map(|d| d as usize)
                    .ok_or_else(|| bad("shape is not a list of sizes"))
            })
            .collect::<Result<_>>()?;
        let offs = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .ok_or_else(|| bad("missing data_offsets"))?;
        if offs.len() != 2 {
            return Err(bad("data_offsets must have two entries"));
        }
        let b = offs[0].as_u64().ok_or_else(|| bad("bad data_offsets"))? as usize;
        let e = offs[1].as_u64().ok_or_else(|| bad("bad data_offsets"))? as usize;
        let bits = dtype_bits(&dtype).ok_or_else(|| bad(&format!("unknown dtype {dtype}")))?;
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("shape overflows"))?;
        let bytes = numel
            .checked_mul(bits)
            .map(|x| x.div_ceil(8))
            .ok_or_else(|| bad("shape overflows"))?;
        if e < b || e - b != bytes {
            return Err(bad(&format!(
                "data_offsets [{b}, {e}] do not match {numel} elements of {dtype}"
            )));
        }
        tensors.push(TensorEntry {
            name: name.clone(),
            dtype,
            shape,
            data_offsets: (b, e),
        });
    }
    tensors.sort_by_key(|t| t.data_offsets);
    let data_len = file_len - 8 - buf.len() as u64;
    if let Some(last) = tensors.last() {
        if last.data_offsets.1 as u64 > data_len {
            return Err(file_err(
                path,
                format!(
                    "truncated file: tensor `{}` ends at byte {} of a {data_len}-byte data section",
                    last.name, last.data_offsets.1
                ),
            ));
        }
    }
    Ok(FileHeader {
        tensors,
        metadata,
        header_len: buf.len(),
        file_len,
    })
}

/// Decode one tensor's little-endian bytes into a heft tensor.
///
/// Floats keep their dtype (f32, f64, f16, bf16); integer dtypes become
/// i64; bool stays bool. Other dtypes (fp8, fp4, ...) are an error.
pub fn decode(name: &str, dtype: &str, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
    fn le<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N")))
            .collect()
    }
    let t = match dtype {
        "F32" => Tensor::from_vec(le(bytes, f32::from_le_bytes), shape)?,
        "F64" => Tensor::from_vec(le(bytes, f64::from_le_bytes), shape)?,
        "F16" => Tensor::from_vec(le(bytes, |b| f16::from_bits(u16::from_le_bytes(b))), shape)?,
        "BF16" => Tensor::from_vec(le(bytes, |b| bf16::from_bits(u16::from_le_bytes(b))), shape)?,
        "I64" => Tensor::from_vec(le(bytes, i64::from_le_bytes), shape)?,
        "I32" => Tensor::from_vec(le(bytes, |b| i32::from_le_bytes(b) as i64), shape)?,
        "I16" => Tensor::from_vec(le(bytes, |b| i16::from_le_bytes(b) as i64), shape)?,
        "I8" => Tensor::from_vec(
            bytes.iter().map(|&b| b as i8 as i64).collect::<Vec<_>>(),
            shape,
        )?,
        "U8" => Tensor::from_vec(bytes.iter().map(|&b| b as i64).collect::<Vec<_>>(), shape)?,
        "U16" => Tensor::from_vec(le(bytes, |b| u16::from_le_bytes(b) as i64), shape)?,
        "U32" => Tensor::from_vec(le(bytes, |b| u32::from_le_bytes(b) as i64), shape)?,
        "BOOL" => Tensor::from_vec(bytes.iter().map(|&b| b != 0).collect::<Vec<_>>(), shape)?,
        other => {
            return Err(NnError::Config {
                layer: "safetensors",
                msg: format!("tensor `{name}` has dtype {other}, which heft cannot load"),
            })
        }
    };
    Ok(t)
}

/// Load every tensor and the metadata of a safetensors file (validated by the `safetensors` crate).
pub fn load_file(path: &Path) -> Result<(NamedTensors, Metadata)> {
    let header = read_header(path)?;
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e.to_string()))?;
    load_with_header(path, header, &bytes)
}

/// [`load_file`] of a whole safetensors file already in memory.
pub fn load_bytes(bytes: &[u8]) -> Result<(NamedTensors, Metadata)> {
    let path = Path::new(IN_MEMORY);
    load_with_header(path, header_from_bytes(path, bytes)?, bytes)
}

fn load_with_header(
    path: &Path,
    header: FileHeader,
    bytes: &[u8],
) -> Result<(NamedTensors, Metadata)> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| file_err(path, format!("corrupt file: {e}")))?;
    let mut out = Vec::with_capacity(header.tensors.len());
    for entry in &header.tensors {
        let view = st
            .tensor(&entry.name)
            .map_err(|e| file_err(path, format!("tensor `{}`: {e}", entry.name)))?;
        out.push((
            entry.name.clone(),
            decode(&entry.name, &entry.dtype, view.shape(), view.data())?,
        ));
    }
    Ok((out, header.metadata))
}

struct OwnedView {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn encode(t: &Tensor, save: SaveDType) -> Result<OwnedView> {
    let target = match (t.dtype().is_float(), save) {
        (true, SaveDType::F32) => DType::F32,
        (true, SaveDType::F16) => DType::F16,
        (true, SaveDType::BF16) => DType::BF16,
        _ => t.dtype(),
    };
    let c = t.to_dtype(target).contiguous();
    let (dtype, bytes): (Dtype, Vec<u8>) = match target {
        DType::F32 => (
            Dtype::F32,
            c.as_slice::<f32>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::F64 => (
            Dtype::F64,
            c.as_slice::<f64>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::F16 => (
            Dtype::F16,
            c.as_slice::<f16>()?
                .iter()
                .flat_map(|x| x.to_bits().to_le_bytes())
                .collect(),
        ),
        DType::BF16 => (
            Dtype::BF16,
            c.as_slice::<bf16>()?
                .iter()
                .flat_map(|x| x.to_bits().to_le_bytes())
                .collect(),
        ),
        DType::I64 => (
            Dtype::I64,
            c.as_slice::<i64>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::Bool => (
            Dtype::BOOL,
            c.as_slice::<bool>()?.iter().map(|&b| b as u8).collect(),
        ),
    };
    Ok(OwnedView {
        dtype,
        shape: t.shape().to_vec(),
        bytes,
    })
}

/// Serialize named tensors (floats converted to `dtype`) with metadata to bytes.
pub fn to_bytes(
    tensors: &[(String, Tensor)],
    dtype: SaveDType,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let views: Vec<(String, OwnedView)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), encode(t, dtype)?)))
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    safetensors::serialize(views.iter().map(|(n, v)| (n.as_str(), v)), Some(meta)).map_err(|e| {
        NnError::Config {
            layer: "safetensors",
            msg: e.to_string(),
        }
    })
}

/// Write `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| file_err(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(file_err(path, e.to_string()));
    }
    Ok(())
}

/// Save named tensors to a safetensors file, atomically.
pub fn save_file(
    path: &Path,
    tensors: &[(String, Tensor)],
    dtype: SaveDType,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    write_atomic(path, &to_bytes(tensors, dtype, metadata)?)
}

/// Options for loading into a [`ParamStore`].
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Missing, unexpected or mis-shaped tensors are errors (default), or only reported.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { strict: true }
    }
}

/// What a load found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Tensors loaded.
    pub loaded: Vec<String>,
    /// Store entries the file lacks.
    pub missing: Vec<String>,
    /// File tensors the store lacks.
    pub unexpected: Vec<String>,
    /// `(name, store shape, file shape)` that disagree.
    pub wrong_shape: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// The file's metadata.
    pub metadata: BTreeMap<String, String>,
}

impl LoadReport {
    /// True when every store entry was loaded and nothing was left over.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.wrong_shape.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing: {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected: {}", self.unexpected.join(", ")));
        }
        if !self.wrong_shape.is_empty() {
            let w: Vec<String> = self
                .wrong_shape
                .iter()
                .map(|(n, a, b)| format!("{n} (model {a:?}, file {b:?})"))
                .collect();
            parts.push(format!("wrong shape: {}", w.join(", ")));
        }
        parts.join("; ")
    }
}

impl ParamStore {
    /// Save every parameter and buffer, floats as `dtype`, with metadata
    /// `format = heft`, `format_version`, `architecture` and `extra` pairs.
    pub fn save_safetensors(
        &self,
        path: &Path,
        dtype: SaveDType,
        architecture: &str,
        extra: &[(String, String)],
    ) -> Result<()> {
        self.save_safetensors_filtered(path, dtype, architecture, extra, |_| true)
    }

    /// Like [`save_safetensors`](ParamStore::save_safetensors), keeping only
    /// the tensors whose name passes `keep` (e.g. a base model without its
    /// LoRA adapters).
    pub fn save_safetensors_filtered(
        &self,
        path: &Path,
        dtype: SaveDType,
        architecture: &str,
        extra: &[(String, String)],
        keep: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "heft".to_string());
        meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
        meta.insert("architecture".to_string(), architecture.to_string());
        for (k, v) in extra {
            meta.insert(k.clone(), v.clone());
        }
        let tensors: Vec<(String, Tensor)> = self
            .named_tensors()
            .into_iter()
            .filter(|(n, _)| keep(n))
            .collect();
        save_file(path, &tensors, dtype, &meta)
    }

    /// Load parameters and buffers by name, converting each to the store's dtype.
    ///
    /// Strict (the default): any missing, unexpected or mis-shaped tensor is
    /// an error listing all of them, and nothing is changed. Non-strict:
    /// matching tensors are loaded and the rest reported.
    pub fn load_safetensors(&mut self, path: &Path, opts: LoadOptions) -> Result<LoadReport> {
        let (tensors, metadata) = load_file(path)?;
        self.load_tensors(tensors, metadata, opts)
    }

    /// [`load_safetensors`](ParamStore::load_safetensors) from tensors already in memory.
    pub fn load_tensors(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        metadata: BTreeMap<String, String>,
        opts: LoadOptions,
    ) -> Result<LoadReport> {
        let mut report = LoadReport {
            metadata,
            ..Default::default()
        };
        let file: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        let names: Vec<String> = self.named_tensors().into_iter().map(|(n, _)| n).collect();
        let mut ok: Vec<(String, Tensor)> = Vec::new();
        for name in &names {
            let cur = self.shape_of(name).expect("listed");
            match file.get(name) {
                None => report.missing.push(name.clone()),
                Some(t) if t.shape() != cur.as_slice() => {
                    report
                        .wrong_shape
                        .push((name.clone(), cur, t.shape().to_vec()))
                }
                Some(t) => ok.push((name.clone(), t.clone())),
            }
        }
        for name in file.keys() {
            if !names.contains(name) {
                report.unexpected.push(name.clone());
            }
        }
        if opts.strict && !report.is_exact() {
            return Err(NnError::Mismatch(report.describe()));
        }
        for (name, t) in ok {
            let target = match self.id(&name) {
                Some(id) => self.value(id).dtype(),
                None => self.buffer(self.buffer_id(&name).expect("listed")).dtype(),
            };
            if t.dtype().is_float() != target.is_float() {
                let e = NnError::Mismatch(format!(
                    "`{name}` is {} in the file but {target} in the model",
                    t.dtype()
                ));
                return Err(e);
            }
            self.set_named(&name, t.to_dtype(target))?;
            report.loaded.push(name);
        }
        Ok(report)
    }
}
