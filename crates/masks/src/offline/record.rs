//! A `.rec` masked into a `.rec`: every record in the input's order under its own key, image
//! records with their IRHeader unchanged (identity, landmarks) and their image masked on the
//! face's own landmarks when the header has them; record 0 and the identity records copied.

use super::{stream, Engine, Masked, OfflineConfig, Tally};
use crate::offline::sidecar::Key;
use maskfr_core::Result;
use maskfr_io::recordio::{pack, unpack, Layout, RecordFile, RecordWriter};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct Entry {
    key: u64,
    offset: u64,
    /// The image's ordinal in input order (its seed), or None for a record that is no image.
    image: Option<u64>,
}

enum Done {
    Image(u64, Vec<u8>, Masked),
    Other(u64, Vec<u8>),
}

/// Masks `input` (with its `.idx` beside it when there is one) into `out` and `out`'s `.idx`;
/// returns the records copied that are not images.
pub(crate) fn run(input: &Path, out: &Path, engine: &Engine, tally: &mut Tally, cfg: &OfflineConfig) -> Result<u64> {
    let idx = input.with_extension("idx");
    let file = Arc::new(RecordFile::open(input, idx.exists().then_some(idx.as_path()))?);
    let layout = Layout::of(&file)?;
    // With InsightFace's header the images are keys [1, a) and every key there is one;
    // without it every record is.
    let last_image = layout.images.iter().copied().max().unwrap_or(0);
    let headed = layout.identities.is_some();
    tally.progress.total.store(layout.images.len() as u64, Ordering::Relaxed);
    drop(layout);
    let mut ordinal = 0u64;
    let entries = file.index().iter().map(|&(key, offset)| {
        let image = (!headed || (1..=last_image).contains(&key)).then(|| {
            ordinal += 1;
            ordinal - 1
        });
        Ok(Entry { key, offset, image })
    });
    let mut w = RecordWriter::create(out, &out.with_extension("idx"))?;
    let mut copied = 0u64;
    stream(
        entries,
        cfg.threads,
        |e| {
            let payload = file.read_at(e.offset)?;
            let Some(ordinal) = e.image else { return Ok(Done::Other(e.key, payload)) };
            let what = format!("{}: record {}", input.display(), e.key);
            let (h, body) = match unpack(&payload, &what) {
                Ok(x) => x,
                Err(err) => {
                    let m = Masked { bytes: vec![], info: None, bad: Some(err.0) };
                    return Ok(Done::Image(e.key, payload, m));
                }
            };
            let m = engine.mask(body.to_vec(), &what, h.landmarks(&what), ordinal);
            let out = if m.info.is_some() { pack(&h, &m.bytes) } else { payload };
            Ok(Done::Image(e.key, out, Masked { bytes: vec![], ..m }))
        },
        |d| match d {
            Done::Image(key, payload, m) => {
                w.write(key, &payload)?;
                tally.image(&Key::Number(key), &m)
            }
            Done::Other(key, payload) => {
                copied += 1;
                w.write(key, &payload)
            }
        },
    )?;
    tally.check()?;
    w.finish()?;
    Ok(copied)
}
