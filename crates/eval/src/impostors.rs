//! Impostor scores in bounded memory: a histogram of `bins` equal bins over [−1, 1] and the
//! exact `top` highest scores. The k-th highest score is exact while k ≤ top, and known to
//! within one bin (2/bins) beyond.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A total order on the scores kept (they are never NaN: cosines of finite embeddings).
#[derive(Clone, Copy, PartialEq)]
struct Score(f32);
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Score {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

#[derive(Clone)]
pub struct Impostors {
    pub count: u64,
    hist: Vec<u64>,
    top: BinaryHeap<Reverse<Score>>,
    keep: usize,
}

impl Impostors {
    pub fn new(bins: usize, keep: usize) -> Impostors {
        Impostors { count: 0, hist: vec![0; bins.max(1)], top: BinaryHeap::with_capacity(keep + 1), keep }
    }

    fn bin(&self, s: f32) -> usize {
        let b = self.hist.len();
        (((s.clamp(-1.0, 1.0) + 1.0) * 0.5 * b as f32) as usize).min(b - 1)
    }

    pub fn add(&mut self, s: f32) {
        self.count += 1;
        let b = self.bin(s);
        self.hist[b] += 1;
        if self.top.len() < self.keep {
            self.top.push(Reverse(Score(s)));
        } else if self.keep > 0 && s > self.top.peek().unwrap().0 .0 {
            self.top.pop();
            self.top.push(Reverse(Score(s)));
        }
    }

    pub fn merge(mut self, o: Impostors) -> Impostors {
        self.count += o.count;
        self.hist.iter_mut().zip(&o.hist).for_each(|(a, b)| *a += b);
        for Reverse(Score(s)) in o.top {
            if self.top.len() < self.keep {
                self.top.push(Reverse(Score(s)));
            } else if s > self.top.peek().unwrap().0 .0 {
                self.top.pop();
                self.top.push(Reverse(Score(s)));
            }
        }
        self
    }

    /// The exact top scores, highest first.
    pub fn top(&self) -> Vec<f32> {
        let mut v: Vec<f32> = self.top.iter().map(|r| r.0 .0).collect();
        v.sort_by(|a, b| b.total_cmp(a));
        v
    }

    /// The `k`-th highest score (1-based) and whether it is exact; `None` past the count.
    /// Beyond the exact top it is the upper edge of the bin holding it.
    pub fn kth_highest(&self, k: u64) -> Option<(f32, bool)> {
        if k == 0 || k > self.count {
            return None;
        }
        if k as usize <= self.top.len() {
            return Some((self.top()[k as usize - 1], true));
        }
        let b = self.hist.len();
        let mut seen = 0u64;
        for i in (0..b).rev() {
            seen += self.hist[i];
            if seen >= k {
                return Some(((i + 1) as f32 / b as f32 * 2.0 - 1.0, false));
            }
        }
        None
    }

    /// Bytes held, for the memory reports.
    pub fn bytes(&self) -> usize {
        8 * self.hist.len() + 4 * self.top.capacity()
    }
}
