//! When f32 convolutions and matrix products may use TF32 tensor cores (inputs rounded to a
//! 10-bit mantissa, f32 accumulation), as a process-wide setting that mirrors PyTorch's
//! defaults: `torch.backends.cudnn.allow_tf32 = True` (convolutions) and
//! `torch.backends.cuda.matmul.allow_tf32 = False` (GEMMs). f16/bf16 always use tensor cores.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tf32 {
    pub conv: bool,
    pub matmul: bool,
}

impl Default for Tf32 {
    fn default() -> Self {
        Tf32 { conv: true, matmul: false }
    }
}

static CONV: AtomicBool = AtomicBool::new(true);
static MATMUL: AtomicBool = AtomicBool::new(false);

/// The policy for every later op (convolution algorithms are chosen per policy, so a change
/// takes effect at once).
pub fn set_tf32(p: Tf32) {
    CONV.store(p.conv, Ordering::Relaxed);
    MATMUL.store(p.matmul, Ordering::Relaxed);
}

pub fn tf32() -> Tf32 {
    Tf32 { conv: CONV.load(Ordering::Relaxed), matmul: MATMUL.load(Ordering::Relaxed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pytorchs_and_a_setting_is_kept() {
        assert_eq!(Tf32::default(), Tf32 { conv: true, matmul: false });
        assert_eq!(tf32(), Tf32::default());
        set_tf32(Tf32 { conv: false, matmul: true });
        assert_eq!(tf32(), Tf32 { conv: false, matmul: true });
        set_tf32(Tf32::default());
    }
}
