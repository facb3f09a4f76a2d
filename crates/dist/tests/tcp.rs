//! TcpComm with W = 1, 2, 4 ranks on loopback threads: the same reductions everywhere and on
//! every run; a rank that dies or never joins is reported by name, within the timeout.

use maskfr_dist::{Communicator, Reduce, TcpComm};
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
}
