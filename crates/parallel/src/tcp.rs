//! The CPU communicator: TCP on loopback (or any address), rank 0 at the centre of a star.

use crate::{Communicator, Error, Reduce, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub struct TcpComm {
    rank: usize,
    world: usize,
    /// Rank 0: a stream per other rank (index r − 1); others: the stream to rank 0.
    peers: Vec<TcpStream>,
    /// Payload bytes this rank has sent (the compression test reads it).
    sent: u64,
}

/// How values travel: 4-byte f32, or 2-byte f16 (rounded) for compressed gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    F32,
    F16,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |e| {
        let why = match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out (is it alive?)".to_string(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                "connection closed (the rank exited?)".to_string()
            }
            _ => e.to_string(),
        };
        Error(format!("{what}: {why}"))
    }
}

/// Sends `data` (length first) as `wire` values; returns the bytes written.
fn send(s: &mut TcpStream, data: &[f32], peer: usize, wire: Wire) -> Result<u64> {
    let width = if wire == Wire::F16 { 2 } else { 4 };
    let mut bytes = Vec::with_capacity(8 + width * data.len());
    bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
    match wire {
        Wire::F32 => data.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes())),
        Wire::F16 => data.iter().for_each(|v| bytes.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
    }
    s.write_all(&bytes).map_err(io(format!("sending to rank {peer}")))?;
    Ok(bytes.len() as u64)
}

fn recv(s: &mut TcpStream, peer: usize, wire: Wire) -> Result<Vec<f32>> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).map_err(io(format!("waiting for rank {peer}")))?;
    let width = if wire == Wire::F16 { 2 } else { 4 };
    let mut buf = vec![0u8; width * u64::from_le_bytes(len) as usize];
    s.read_exact(&mut buf).map_err(io(format!("receiving from rank {peer}")))?;
    Ok(match wire {
        Wire::F32 => buf.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        Wire::F16 => buf.chunks_exact(2).map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect(),
    })
}

impl TcpComm {
    /// Rank 0: accepts the other `world − 1` ranks on `listener` within `timeout`.
    pub fn root(listener: TcpListener, world: usize, timeout: Duration) -> Result<TcpComm> {
        let deadline = Instant::now() + timeout;
        listener.set_nonblocking(true).map_err(io("rendezvous"))?;
        let mut peers: Vec<Option<TcpStream>> = (1..world).map(|_| None).collect();
        while peers.iter().any(|p| p.is_none()) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).map_err(io("rendezvous"))?;
                    s.set_read_timeout(Some(timeout)).map_err(io("rendezvous"))?;
                    s.set_nodelay(true).map_err(io("rendezvous"))?;
                    let mut hello = [0u8; 16];
                    s.read_exact(&mut hello).map_err(io("rendezvous: reading a rank's number"))?;
                    let r = u64::from_le_bytes(hello[..8].try_into().unwrap()) as usize;
                    let w = u64::from_le_bytes(hello[8..].try_into().unwrap()) as usize;
                    if w != world {
                        return Err(Error(format!(
                            "rendezvous: rank {r} was started for {w} ranks, rank 0 for {world}"
                        )));
                    }
                    if r == 0 || r >= world || peers[r - 1].is_some() {
                        return Err(Error(format!(
                            "rendezvous: a peer announced rank {r}, expected a new one in 1..{world}"
                        )));
                    }
                    peers[r - 1] = Some(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        let missing: Vec<usize> = (1..world).filter(|r| peers[r - 1].is_none()).collect();
                        return Err(Error(format!("rendezvous: ranks {missing:?} did not join within {timeout:?}")));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(io("rendezvous")(e)),
            }
        }
        Ok(TcpComm { rank: 0, world, peers: peers.into_iter().map(Option::unwrap).collect(), sent: 0 })
    }

    /// Rank `rank` > 0: connects to rank 0 at `addr`, retrying until `timeout`.
    pub fn join(addr: &str, rank: usize, world: usize, timeout: Duration) -> Result<TcpComm> {
        let deadline = Instant::now() + timeout;
        let mut s = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    return Err(io(format!("rank {rank}: connecting to rank 0 at {addr}"))(e))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        s.set_read_timeout(Some(timeout)).map_err(io("rendezvous"))?;
        s.set_nodelay(true).map_err(io("rendezvous"))?;
        let hello: Vec<u8> = [rank as u64, world as u64].iter().flat_map(|v| v.to_le_bytes()).collect();
        s.write_all(&hello).map_err(io(format!("rank {rank}: announcing itself")))?;
        Ok(TcpComm { rank, world, peers: vec![s], sent: 0 })
    }

    /// Gathers at rank 0, reduces in rank order (the same sums whatever the arrival order),
    /// spreads the result; values travel as `wire`.
    fn reduce(&mut self, buf: &mut [f32], op: Reduce, wire: Wire) -> Result<()> {
        let parts = self.gather(buf, wire)?;
        if self.rank == 0 {
            for (r, p) in parts.iter().enumerate().skip(1) {
                if p.len() != buf.len() {
                    return Err(Error(format!(
                        "all_reduce: rank {r} sent {} values, rank 0 has {}",
                        p.len(),
                        buf.len()
                    )));
                }
            }
            for (i, v) in buf.iter_mut().enumerate() {
                *v =
                    parts.iter().map(|p| p[i]).reduce(|a, b| if op == Reduce::Sum { a + b } else { a.max(b) }).unwrap();
            }
        }
        self.spread(buf, wire)
    }

    /// Payload bytes sent by this rank so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Every rank's buffer at rank 0 (in rank order), nothing elsewhere.
    fn gather(&mut self, local: &[f32], wire: Wire) -> Result<Vec<Vec<f32>>> {
        if self.rank != 0 {
            self.sent += send(&mut self.peers[0], local, 0, wire)?;
            return Ok(Vec::new());
        }
        let mut all = vec![local.to_vec()];
        for (i, p) in self.peers.iter_mut().enumerate() {
            all.push(recv(p, i + 1, wire)?);
        }
        Ok(all)
    }

    /// Rank 0's `buf` to every rank.
    fn spread(&mut self, buf: &mut [f32], wire: Wire) -> Result<()> {
        if self.rank == 0 {
            for (i, p) in self.peers.iter_mut().enumerate() {
                self.sent += send(p, buf, i + 1, wire)?;
            }
            return Ok(());
        }
        let got = recv(&mut self.peers[0], 0, wire)?;
        if got.len() != buf.len() {
            return Err(Error(format!("rank {}: rank 0 sent {} values, expected {}", self.rank, got.len(), buf.len())));
        }
        buf.copy_from_slice(&got);
        Ok(())
    }
}

impl Communicator for TcpComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }

    fn all_reduce(&mut self, buf: &mut [f32], op: Reduce) -> Result<()> {
        self.reduce(buf, op, Wire::F32)
    }

    fn all_reduce_f16(&mut self, buf: &mut [f32]) -> Result<()> {
        crate::round_f16(buf);
        self.reduce(buf, Reduce::Sum, Wire::F16)?;
        crate::round_f16(buf); // rank 0's copy: the others received it rounded
        Ok(())
    }

    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<f32>> {
        let parts = self.gather(local, Wire::F32)?;
        let mut all = vec![0.0; local.len() * self.world];
        if self.rank == 0 {
            if let Some((r, p)) = parts.iter().enumerate().find(|(_, p)| p.len() != local.len()) {
                return Err(Error(format!("all_gather: rank {r} sent {} values, rank 0 has {}", p.len(), local.len())));
            }
            all = parts.concat();
        }
        self.spread(&mut all, Wire::F32)?;
        Ok(all)
    }

    fn broadcast(&mut self, buf: &mut [f32], root: usize) -> Result<()> {
        // Through rank 0: root's buffer reaches it by a gather, then spreads.
        if root != 0 {
            let parts = self.gather(buf, Wire::F32)?;
            if self.rank == 0 {
                buf.copy_from_slice(&parts[root]);
            }
        }
        self.spread(buf, Wire::F32)
    }
}
