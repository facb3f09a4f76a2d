//! maskfr-eval: 1:1 verification from embeddings. Pairs are scored by blocked matrix
//! products; genuine scores are kept exactly, impostor scores as a fine histogram plus their
//! exact top `k` (the only ones that matter at low FMR), so 10⁸ impostor pairs fit in a few
//! MB. Operating points follow the strict rule of sklearn's ROC: at a target FMR, the
//! largest ROC index whose FMR does not exceed it. IJB-B/C template pairs are scored as
//! insightface's `eval_ijbc.py` does (`ijb`): sklearn's whole ROC, read at the nearest FAR.

mod ijb;
mod impostors;
mod pairs;
mod roc;

pub use ijb::{identify, normalize_rows, parse_pairs, score_pairs, tar_at_far, Identification, PairList, Read};
pub use impostors::Impostors;
pub use pairs::{count_cross_groups, score_all_vs_all, score_cross, GroupCounts, Keep, Scores, Set};
pub use roc::{curve, level, nearest, sklearn_roc, Level, Roc};
