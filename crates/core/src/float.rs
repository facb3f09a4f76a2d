//! The element types kernels are generic over: f32 ships, f64 checks gradients.

use num_traits::{Float as NumFloat, FromPrimitive, ToPrimitive};
use std::iter::Sum;
use std::ops::{AddAssign, MulAssign, SubAssign};

pub trait Float:
    NumFloat
    + FromPrimitive
    + ToPrimitive
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Converts an f64 constant (exact for the constants we use).
    fn c(v: f64) -> Self {
        Self::from_f64(v).expect("f64 constant fits the float type")
    }
    fn f64(self) -> f64 {
        self.to_f64().expect("float converts to f64")
    }
}

impl Float for f32 {}
impl Float for f64 {}
