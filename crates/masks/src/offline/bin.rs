//! A verification `.bin` masked into a `.bin`: the same images in the same order (pair k is
//! images 2k and 2k+1), each masked on the aligned template, and the same `issame` list.

use super::{stream, Engine, OfflineConfig, Tally};
use crate::offline::sidecar::Key;
use maskfr_core::Result;
use maskfr_io::verification_bin::{BinWriter, VerificationBin};
use std::path::Path;
use std::sync::atomic::Ordering;

pub(crate) fn run(input: &Path, out: &Path, engine: &Engine, tally: &mut Tally, cfg: &OfflineConfig) -> Result<u64> {
    let set = VerificationBin::read(input)?;
    tally.progress.total.store(set.len() as u64, Ordering::Relaxed);
    let mut w = BinWriter::create(out)?;
    stream(
        (0..set.len()).map(Ok),
        cfg.threads,
        |&i| {
            let what = format!("{}: image {i}", input.display());
            Ok(engine.mask(set.image(i).to_vec(), &what, Ok(None), i as u64))
        },
        |m| {
            let i = tally.images;
            w.image(&m.bytes)?;
            tally.image(&Key::Number(i), &m)
        },
    )?;
    tally.check()?;
    w.finish(&set.issame)?;
    Ok(0)
}
