//! [`Storage`]: the typed, reference-counted buffer behind tensors.

use crate::DType;
use half::{bf16, f16};
use smallvec::SmallVec;

/// A flat buffer of one dtype. Tensors share it through an `Arc`; views
/// share the same storage with a different [`Layout`](crate::Layout).
///
/// Up to 16 bytes of elements (4 f32, 2 f64, 8 f16/bf16, 2 i64, 16 bool)
/// live inline in the storage itself, so a small tensor takes one
/// allocation (the `Arc`) instead of two; larger buffers are on the heap
/// as in a `Vec`. Either way the elements are one contiguous slice.
#[derive(Debug, PartialEq)]
pub enum Storage {
    /// f32 elements.
    F32(SmallVec<[f32; 4]>),
    /// f64 elements.
    F64(SmallVec<[f64; 2]>),
    /// f16 elements.
    F16(SmallVec<[f16; 8]>),
    /// bf16 elements.
    BF16(SmallVec<[bf16; 8]>),
    /// i64 elements.
    I64(SmallVec<[i64; 2]>),
    /// bool elements.
    Bool(SmallVec<[bool; 16]>),
}

impl Clone for Storage {
    // `SmallVec`'s own `clone` copies element by element; `from_slice`
    // copies the block at once (the elements are all `Copy`).
    fn clone(&self) -> Self {
        match self {
            Storage::F32(v) => Storage::F32(SmallVec::from_slice(v)),
            Storage::F64(v) => Storage::F64(SmallVec::from_slice(v)),
            Storage::F16(v) => Storage::F16(SmallVec::from_slice(v)),
            Storage::BF16(v) => Storage::BF16(SmallVec::from_slice(v)),
            Storage::I64(v) => Storage::I64(SmallVec::from_slice(v)),
            Storage::Bool(v) => Storage::Bool(SmallVec::from_slice(v)),
        }
    }
}

impl Storage {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::I64(_) => DType::I64,
            Storage::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::F16(v) => v.len(),
            Storage::BF16(v) => v.len(),
            Storage::I64(v) => v.len(),
            Storage::Bool(v) => v.len(),
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the buffer in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::Storage;
    use crate::Tensor;

    fn inline(t: &Tensor) -> bool {
        match t.storage().as_ref() {
            Storage::F32(v) => !v.spilled(),
            Storage::F64(v) => !v.spilled(),
            Storage::I64(v) => !v.spilled(),
            Storage::Bool(v) => !v.spilled(),
            Storage::F16(v) => !v.spilled(),
            Storage::BF16(v) => !v.spilled(),
        }
    }

    #[test]
    fn small_results_are_inline_large_ones_on_the_heap() {
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
        let y = x.mul(&x).unwrap().tanh().unwrap();
        assert!(inline(&y));
        assert_eq!(
            y.to_vec::<f32>().unwrap(),
            [1.0f32, 4.0, 9.0, 16.0].map(f32::tanh).to_vec()
        );
        let s = Tensor::scalar(2.5f64);
        assert!(inline(&s));
        // Five f32 (20 bytes) no longer fit in 16.
        let big = Tensor::from_vec(vec![1.0f32; 5], &[5]).unwrap();
        let b2 = big.add_scalar(1.0).unwrap();
        assert!(!inline(&b2));
        assert_eq!(b2.to_vec::<f32>().unwrap(), vec![2.0; 5]);
    }

    #[test]
    fn clone_and_copy_on_write_keep_values_apart() {
        for n in [2usize, 100] {
            let a = Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), &[n]).unwrap();
            let deep = a.storage().as_ref().clone();
            assert_eq!(&deep, a.storage().as_ref());
            let mut b = a.clone();
            b.data_mut::<i64>().unwrap()[0] = -1;
            assert_eq!(a.to_vec::<i64>().unwrap()[0], 0);
            assert_eq!(b.to_vec::<i64>().unwrap()[0], -1);
            assert_eq!(
                b.to_vec::<i64>().unwrap()[1..],
                a.to_vec::<i64>().unwrap()[1..]
            );
        }
    }
}
