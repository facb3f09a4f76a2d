//! Zero-size tensors through every CPU op: empty results or empty sums, never a panic (a
//! zero row length once cut buffers into zero-length pieces).

mod cases;

use cases::zero_size::zero_size_results;
use maskfr_core::backend::device_backend;
use maskfr_core::Device;

#[test]
fn every_op_on_zero_size_inputs_gives_empty_results_or_zeros() {
    let cpu = device_backend("test", Device::Cpu).unwrap();
    let results = zero_size_results(cpu, &|t| t.clone());
    assert_eq!(results.len(), 3 * 3 + 2 * 9 + 2 * 15 + 2 + 4);
    let shape = |w: &str| results.iter().find(|(k, _)| k == w).map(|(_, t)| t.shape().to_vec()).unwrap();
    assert_eq!(shape("conv n=2 c=0 o=4 #0"), [2, 4, 5, 5], "a conv over no input channels: zeros");
    assert_eq!(shape("per channel n=0 c=5 #7"), [5], "channel sums over no samples: zeros");
    assert_eq!(shape("rows r=0 d=6 #13"), [6, 6], "a product over no rows: zeros");
    for (what, t) in &results {
        assert!(t.to_vec().iter().all(|&v| v == 0.0), "{what}: {:?} holds non-zero values", t.shape());
    }
}
