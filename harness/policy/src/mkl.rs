//! MKL packed-weight GEMM for small-batch decoding on the CPU (csrc/mkl_packed.cpp).
//!
//! MKL can reorder a weight matrix once into its internal blocked layout for a given number
//! of input rows; products with exactly that many rows then skip the per-call packing that
//! dominates small-batch GEMMs (about 2x faster at 8 rows on the 2-core machine). Other row
//! counts run the ordinary product.
use std::ffi::{c_char, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn harness_mkl_pack_linear_weight(weight: *const C_tensor, batch: i64, error: *mut c_char, capacity: usize) -> *mut C_tensor;
    fn harness_mkl_linear(
        input: *const C_tensor,
        packed: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        batch: i64,
        error: *mut c_char,
        capacity: usize,
    ) -> *mut C_tensor;
}

fn checked(result: *mut C_tensor, error: &[c_char]) -> Result<Tensor, String> {
    if result.is_null() {
        // SAFETY: the shim always NUL-terminates the buffer when it returns null.
        let message = unsafe { CStr::from_ptr(error.as_ptr()) }.to_string_lossy().into_owned();
        return Err(message);
    }
    // SAFETY: a non-null result is a fresh at::Tensor* that the shim allocated for us to own.
    Ok(unsafe { Tensor::from_ptr(result) })
}

/// A linear layer `x W^T + b` whose weight MKL has packed for `batch` input rows.
#[derive(Debug)]
pub struct PackedLinear {
    weight: Tensor,
    packed: Tensor,
    bias: Option<Tensor>,
    batch: i64,
}

impl PackedLinear {
    /// Packs `weight` (`[out, in]`, float32, CPU) for products with `batch` rows. Fails when
    /// this libtorch has no MKL packed GEMM.
    pub fn new(weight: Tensor, bias: Option<Tensor>, batch: i64) -> Result<PackedLinear, String> {
        let weight = weight.contiguous();
        let mut error = [0 as c_char; 512];
        // SAFETY: `weight` outlives the call; the error buffer's length is passed along.
        let packed = checked(
            unsafe { harness_mkl_pack_linear_weight(weight.as_ptr(), batch, error.as_mut_ptr(), error.len()) },
            &error,
        )?;
        Ok(PackedLinear { weight, packed, bias, batch })
    }

    /// `x W^T + b` for `x` of shape `[.., in]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let width = *size.last().expect("input has a feature dimension");
        let rows = x.reshape([-1, width]);
        if rows.size()[0] != self.batch {
            return x.linear(&self.weight, self.bias.as_ref());
        }
        let mut error = [0 as c_char; 512];
        let bias = self.bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr());
        // SAFETY: every tensor outlives the call; a null bias means none.
        let out = checked(
            unsafe {
                harness_mkl_linear(rows.as_ptr(), self.packed.as_ptr(), self.weight.as_ptr(), bias, self.batch, error.as_mut_ptr(), error.len())
            },
            &error,
        )
        // The op was found when the weight was packed and the shapes are checked above, so a
        // failure here is a libtorch bug: fall back rather than lose the generation.
        .unwrap_or_else(|_| rows.linear(&self.weight, self.bias.as_ref()));
        let mut out_size = size;
        *out_size.last_mut().expect("non-empty") = self.weight.size()[0];
        out.reshape(out_size.as_slice())
    }
}
