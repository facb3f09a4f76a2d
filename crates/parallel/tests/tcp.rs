//! TcpComm with W = 1, 2, 4 ranks on loopback threads: the same reductions everywhere and on
//! every run; a rank that dies or never joins is reported by name, within the timeout.

use maskfr_parallel::{Communicator, Reduce, TcpComm};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// Runs `f(comm)` on `world` ranks; returns each rank's result in rank order.
fn ranks<R: Send + 'static>(world: usize, f: fn(&mut TcpComm) -> R) -> Vec<R> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let others: Vec<_> = (1..world)
        .map(|r| {
            let addr = addr.clone();
            thread::spawn(move || f(&mut TcpComm::join(&addr, r, world, T).unwrap()))
        })
        .collect();
    let mut out = vec![f(&mut TcpComm::root(listener, world, T).unwrap())];
    out.extend(others.into_iter().map(|h| h.join().unwrap()));
    out
}

/// Rank r's data: values that make summation order matter in f32.
fn data(rank: usize) -> Vec<f32> {
    (0..7).map(|i| 1e7 * ((rank * 7 + i) as f32).sin() + (i as f32) * 0.1).collect()
}

/// Results of sum, max, gather, broadcast and reduce-scatter on one rank.
type Results = [Vec<f32>; 5];

fn collective(c: &mut TcpComm) -> Results {
    let mut sum = data(c.rank());
    c.all_reduce(&mut sum, Reduce::Sum).unwrap();
    let mut max = data(c.rank());
    c.all_reduce(&mut max, Reduce::Max).unwrap();
    let gathered = c.all_gather(&data(c.rank())[..3]).unwrap();
    let mut b = data(c.rank());
    c.broadcast(&mut b, c.world() - 1).unwrap();
    let scattered = c.reduce_scatter(&vec![c.rank() as f32 + 1.0; 2 * c.world()]).unwrap();
    c.barrier().unwrap();
    [sum, max, gathered, b, scattered]
}

#[test]
fn collectives_agree_across_ranks_and_runs() {
    for world in [1, 2, 4] {
        let a = ranks(world, collective);
        let b = ranks(world, collective);
        assert_eq!(a, b, "W={world}: identical on every run");
        let expect_sum: Vec<f32> = (0..7).map(|i| (0..world).map(|r| data(r)[i]).fold(0.0, |s, v| s + v)).collect();
        let expect_max: Vec<f32> = (0..7).map(|i| (0..world).map(|r| data(r)[i]).fold(f32::MIN, f32::max)).collect();
        for (r, [sum, max, gathered, bcast, scattered]) in a.iter().enumerate() {
            assert_eq!(sum, &expect_sum, "W={world} rank {r}: sum in rank order");
            assert_eq!(max, &expect_max);
            assert_eq!(gathered, &(0..world).flat_map(|q| data(q)[..3].to_vec()).collect::<Vec<_>>());
            assert_eq!(bcast, &data(world - 1));
            let total = (world * (world + 1) / 2) as f32;
            assert_eq!(scattered, &vec![total; 2]);
        }
    }
}

/// Labels past 2^24, where f32 has no odd integers: rank r's are 2^24 + 1 + 2·(3r + i),
/// then the extremes.
fn labels_past_f32(c: &mut TcpComm) -> Vec<i32> {
    let r = c.rank() as i32;
    let mine: Vec<i32> = (0..3).map(|i| (1 << 24) + 1 + 2 * (3 * r + i)).chain([i32::MAX - r, i32::MIN + r]).collect();
    c.all_gather_i32(&mine).unwrap()
}

#[test]
fn integers_past_2_pow_24_are_gathered_exactly() {
    for world in [2, 4] {
        let want: Vec<i32> = (0..world as i32)
            .flat_map(|r| (0..3).map(move |i| (1 << 24) + 1 + 2 * (3 * r + i)).chain([i32::MAX - r, i32::MIN + r]))
            .collect();
        assert_ne!(want[0] as f32 as i32, want[0], "the first label is not an f32");
        for (r, got) in ranks(world, labels_past_f32).iter().enumerate() {
            assert_eq!(got, &want, "W={world} rank {r}");
        }
    }
}

/// 128 seeded random bytes of rank `rank`, with words that are NaN as f32 (quiet with a
/// payload, signalling, all ones) where a float path could alter them.
fn id_bytes(rank: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..128).map(|i| maskfr_core::random::mix(rank as u64 + 1, i) as u8).collect();
    for (at, word) in [(0, 0x7fc0_0001u32), (4, 0x7f80_0001), (64, 0xffff_ffff), (124, 0xff80_1234)] {
        b[at..at + 4].copy_from_slice(&word.to_le_bytes());
    }
    b
}

/// Broadcasts from rank 0 and from the last rank; returns what this rank ends with.
fn broadcast_ids(c: &mut TcpComm) -> [Vec<u8>; 2] {
    let (mut from0, mut from_last) = (id_bytes(c.rank()), id_bytes(c.rank()));
    c.broadcast_bytes(&mut from0, 0).unwrap();
    c.broadcast_bytes(&mut from_last, c.world() - 1).unwrap();
    [from0, from_last]
}

#[test]
fn bytes_broadcast_untouched_even_where_they_read_as_nan() {
    assert!(f32::from_le_bytes(id_bytes(0)[4..8].try_into().unwrap()).is_nan());
    assert!(id_bytes(0).iter().filter(|&&b| b != 0).count() > 100, "random, not zeros");
    for world in [1, 2, 4] {
        for (r, [from0, from_last]) in ranks(world, broadcast_ids).iter().enumerate() {
            assert_eq!(from0, &id_bytes(0), "W={world} rank {r}: rank 0's bytes");
            assert_eq!(from_last, &id_bytes(world - 1), "W={world} rank {r}: the last rank's bytes");
        }
    }
}

#[test]
fn a_rank_that_dies_or_never_joins_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = TcpComm::root(listener, 3, Duration::from_millis(300)).err().unwrap();
    assert_eq!(e.0, "rendezvous: ranks [1, 2] did not join within 300ms");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dying = thread::spawn(move || drop(TcpComm::join(&addr, 1, 2, T).unwrap()));
    let mut root = TcpComm::root(listener, 2, Duration::from_millis(500)).unwrap();
    dying.join().unwrap();
    let e = root.all_reduce(&mut [1.0], Reduce::Sum).err().unwrap();
    assert!(e.0.starts_with("waiting for rank 1: "), "{}", e.0);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let wrong = thread::spawn(move || TcpComm::join(&addr, 1, 3, T).map(|_| ()));
    let e = TcpComm::root(listener, 2, T).err().unwrap();
    assert_eq!(e.0, "rendezvous: rank 1 was started for 3 ranks, rank 0 for 2");
    wrong.join().unwrap().ok();
}

// ---- the sharded classifier ----

use maskfr_core::{Margin, Tensor};
use maskfr_parallel::{shard, PartialFc};

const C: usize = 11;
const D: usize = 6;
const B: usize = 8;
/// Two classes at a time: every shard is scored in several chunks.
const CHUNK: usize = 2;

fn value(seed: usize, i: usize) -> f32 {
    ((seed * 7919 + i * 104_729) as f32 * 0.618_034).sin() * 2.0
}
fn labels() -> Vec<i32> {
    (0..B).map(|i| ((i * 5 + 3) % C) as i32).collect()
}

/// One rank's step: its slice of the batch, its shard of the classes (ArcFace margin).
fn fc_step(c: &mut TcpComm) -> (f64, Vec<f32>, Vec<f32>) {
    let (w, r) = (c.world(), c.rank());
    let b = B / w;
    let emb: Vec<f32> = (r * b * D..(r + 1) * b * D).map(|i| value(1, i)).collect();
    let lab = labels()[r * b..(r + 1) * b].to_vec();
    let (start, n) = shard(C, w, r);
    let weight: Vec<f32> = (start * D..(start + n) * D).map(|i| value(2, i)).collect();
    let fc = PartialFc {
        start,
        classes: n,
        total: C,
        dim: D,
        margin: Margin { s: 64.0, m_arc: 0.5, m_cos: 0.0 },
        sample_rate: 1.0,
        seed: 0,
        chunk: CHUNK,
    };
    let (weight, emb) = (Tensor::from_vec(weight, &[n, D]).unwrap(), Tensor::from_vec(emb, &[b, D]).unwrap());
    let s = fc.step(c, &weight, &emb, &lab, 0).unwrap();
    (s.loss.to_vec()[0] as f64, s.grad_embeddings.to_vec(), s.grad_weight.to_vec())
}

fn close(a: &[f32], e: &[f32], what: &str) {
    let scale = e.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(e).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(a.len() == e.len() && err <= 1e-5 * scale, "{what}: max error {err:e} vs scale {scale}");
}

#[test]
fn the_sharded_classifier_does_not_depend_on_the_world_size() {
    let one = ranks(1, fc_step).remove(0);
    // The loss against a direct f64 computation (normalise, cosines, ArcFace margin with its
    // fallback past θ + m > π, CE).
    let arc =
        |c: f64| if c > (std::f64::consts::PI - 0.5).cos() { (c.acos() + 0.5).cos() } else { c - 0.5 * 0.5f64.sin() };
    let norm = |v: Vec<f64>| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<_>>()
    };
    let lab = labels();
    let direct = (0..B)
        .map(|i| {
            let e = norm((0..D).map(|k| value(1, i * D + k) as f64).collect());
            let z: Vec<f64> = (0..C)
                .map(|j| {
                    let w = norm((0..D).map(|k| value(2, j * D + k) as f64).collect());
                    let c: f64 = e.iter().zip(&w).map(|(a, b)| a * b).sum();
                    64.0 * if j == lab[i] as usize { arc(c) } else { c }
                })
                .collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - z[lab[i] as usize]
        })
        .sum::<f64>()
        / B as f64;
    assert!((one.0 - direct).abs() <= 1e-4 * direct.abs(), "loss {} vs direct {direct}", one.0);
    for world in [2, 4] {
        let parts = ranks(world, fc_step);
        for (r, p) in parts.iter().enumerate() {
            assert!((p.0 - one.0).abs() <= 1e-5 * one.0.abs(), "W={world} rank {r}: loss {} vs {}", p.0, one.0);
        }
        close(
            &parts.iter().flat_map(|p| p.1.clone()).collect::<Vec<_>>(),
            &one.1,
            &format!("W={world} embedding gradient"),
        );
        close(
            &parts.iter().flat_map(|p| p.2.clone()).collect::<Vec<_>>(),
            &one.2,
            &format!("W={world} weight gradient"),
        );
    }
    assert_eq!((0..3).map(|r| shard(11, 3, r)).collect::<Vec<_>>(), vec![(0, 4), (4, 4), (8, 3)]);
}

#[test]
fn negative_sampling_keeps_every_positive_and_tops_up_with_seeded_negatives() {
    let fc = PartialFc {
        start: 100,
        classes: 50,
        total: 300,
        dim: D,
        margin: Margin { s: 64.0, m_arc: 0.0, m_cos: 0.4 },
        sample_rate: 0.2,
        seed: 9,
        chunk: 0,
    };
    let labels: Vec<i64> = vec![100, 107, 107, 149, 3, 260];
    let picked = fc.sampled(&labels, 4);
    assert_eq!(picked.len(), 10, "⌈0.2·50⌉ classes");
    for j in [0, 7, 49] {
        assert!(picked.contains(&j), "positive class {} kept", j + 100);
    }
    assert!(picked.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(picked, fc.sampled(&labels, 4), "seeded");
    assert_ne!(picked, fc.sampled(&labels, 5), "another step, other negatives");
    let many: Vec<i64> = (100..140).collect();
    assert_eq!(fc.sampled(&many, 0).len(), 40, "more positives than ρ·n: all of them, no negatives");
    let full = PartialFc { sample_rate: 1.0, ..fc };
    assert_eq!(full.sampled(&labels, 0), (0..50).collect::<Vec<_>>());
}

// ---- collectives queued in the background ----

use maskfr_parallel::CommQueue;

#[test]
fn queued_collectives_run_in_order_and_report_the_first_failure() {
    let out = ranks(2, |c| {
        let rank = c.rank();
        let mut q = CommQueue::new(Box::new(std::mem::replace(
            c,
            TcpComm::root(TcpListener::bind("127.0.0.1:0").unwrap(), 1, T).unwrap(),
        )));
        let results = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tickets: Vec<u64> = (0..5)
            .map(|k| {
                let r = results.clone();
                q.submit(move |c| {
                    let mut v = [(rank * 10 + k) as f32];
                    c.all_reduce(&mut v, Reduce::Sum)?;
                    r.lock().unwrap().push(v[0]);
                    Ok(())
                })
            })
            .collect();
        q.wait(tickets[4]).unwrap();
        let gathered = q.run(move |c| c.all_gather(&[rank as f32])).unwrap();
        let v = results.lock().unwrap().clone();
        (v, gathered)
    });
    for (v, gathered) in out {
        assert_eq!(v, vec![10.0, 12.0, 14.0, 16.0, 18.0], "in submission order");
        assert_eq!(gathered, vec![0.0, 1.0]);
    }
    let mut solo = CommQueue::new(Box::new(TcpComm::root(TcpListener::bind("127.0.0.1:0").unwrap(), 1, T).unwrap()));
    let bad = solo.submit(|_| Err(maskfr_parallel::Error("boom".into())));
    let after = solo.submit(|_| Ok(()));
    assert_eq!(solo.wait(after).err().unwrap().0, "boom");
    assert_eq!(solo.wait(bad).err().unwrap().0, "boom");
}

/// (compressed sum, bytes sent for it, bytes sent for the same sum in f32) on one rank.
fn compressed(c: &mut TcpComm) -> (Vec<f32>, u64, u64) {
    let x: Vec<f32> = (0..1000).map(|i| ((c.rank() * 1000 + i) as f32 * 0.37).sin() * 3.0).collect();
    let (mut h, mut f) = (x.clone(), x);
    let s0 = c.bytes_sent();
    c.all_reduce_f16(&mut h).unwrap();
    let s1 = c.bytes_sent();
    c.all_reduce(&mut f, Reduce::Sum).unwrap();
    (h, s1 - s0, c.bytes_sent() - s1)
}

#[test]
fn f16_compressed_sums_round_the_inputs_and_the_sum_and_halve_the_bytes() {
    for world in [1, 2, 4] {
        let out = ranks(world, compressed);
        // The reference: every rank's values rounded to f16, summed in f32 in rank order, rounded.
        let want: Vec<f32> = (0..1000)
            .map(|i| {
                let s = (0..world)
                    .map(|r| half::f16::from_f32(((r * 1000 + i) as f32 * 0.37).sin() * 3.0).to_f32())
                    .fold(0f32, |a, b| a + b);
                half::f16::from_f32(s).to_f32()
            })
            .collect();
        for (r, (got, bytes16, bytes32)) in out.iter().enumerate() {
            assert_eq!(got, &want, "world {world}, rank {r}");
            if world > 1 {
                // The same messages, each 8 length bytes and 2 instead of 4 bytes a value.
                assert_eq!(bytes16 * (8 + 4000), bytes32 * (8 + 2000), "rank {r}: {bytes16} vs {bytes32} bytes");
            }
        }
    }
}

// ---- ops by name ----

use maskfr_parallel::{ReduceOp, Wire};

#[test]
fn ops_and_compression_are_parsed_once_with_messages_that_list_the_choices() {
    assert_eq!("mean".parse::<ReduceOp>().unwrap(), ReduceOp::Mean);
    assert_eq!("avg".parse::<ReduceOp>().err().unwrap().0, "allReduce: op 'avg', expected sum, mean or max");
    assert_eq!(Wire::parse(None, ReduceOp::Max).unwrap(), Wire::F32);
    assert_eq!(Wire::parse(Some("f16"), ReduceOp::Mean).unwrap(), Wire::F16);
    assert_eq!(
        Wire::parse(Some("f16"), ReduceOp::Max).err().unwrap().0,
        "allReduce: compression 'f16' with op 'max': expected none, or f16 with sum or mean"
    );
}
