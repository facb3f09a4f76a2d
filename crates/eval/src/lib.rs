//! maskfr-eval: 1:1 verification from embeddings. Pairs are scored by blocked matrix
//! products; genuine scores are kept exactly, impostor scores as a fine histogram plus their
//! exact top `k` (the only ones that matter at low FMR), so 10⁸ impostor pairs fit in a few
//! MB. Operating points follow the strict rule of sklearn's ROC: at a target FMR, the
//! largest ROC index whose FMR does not exceed it.

mod impostors;
mod pairs;
mod roc;

pub use impostors::Impostors;
pub use pairs::{score_all_vs_all, score_cross, Keep, Scores, Set};
pub use roc::{curve, level, Level};
