//! The CPU communicator: TCP on loopback (or any address), rank 0 at the centre of a star.

use crate::{Communicator, Error, Reduce, Result, Wire};
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

/// `data` as `wire` values, little-endian.
fn encode(data: &[f32], wire: Wire) -> Vec<u8> {
    match wire {
        Wire::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Wire::F16 => data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
    }
}

fn decode(bytes: &[u8], wire: Wire) -> Vec<f32> {
    match wire {
        Wire::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        Wire::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect(),
    }
}

/// Sends one frame, its length in bytes then the bytes; returns the bytes written.
fn send(s: &mut TcpStream, payload: &[u8], peer: usize) -> Result<u64> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    frame.extend_from_slice(payload);
    s.write_all(&frame).map_err(io(format!("sending to rank {peer}")))?;
    Ok(frame.len() as u64)
}

fn recv(s: &mut TcpStream, peer: usize) -> Result<Vec<u8>> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).map_err(io(format!("waiting for rank {peer}")))?;
    let mut payload = vec![0u8; u64::from_le_bytes(len) as usize];
    s.read_exact(&mut payload).map_err(io(format!("receiving from rank {peer}")))?;
    Ok(payload)
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
        let w = width(wire);
        let parts = self.gather(encode(buf, wire))?;
        if self.rank == 0 {
            same_lengths("all_reduce", &parts, buf.len() * w, w)?;
            let parts: Vec<Vec<f32>> = parts.iter().map(|p| decode(p, wire)).collect();
            for (i, v) in buf.iter_mut().enumerate() {
                *v =
                    parts.iter().map(|p| p[i]).reduce(|a, b| if op == Reduce::Sum { a + b } else { a.max(b) }).unwrap();
            }
        }
        let frame = if self.rank == 0 { encode(buf, wire) } else { Vec::new() };
        let got = self.spread(frame, buf.len() * w, w)?;
        if self.rank != 0 {
            buf.copy_from_slice(&decode(&got, wire));
        }
        Ok(())
    }

    /// Payload bytes sent by this rank so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Every rank's frame at rank 0 (in rank order), nothing elsewhere.
    fn gather(&mut self, local: Vec<u8>) -> Result<Vec<Vec<u8>>> {
        if self.rank != 0 {
            self.sent += send(&mut self.peers[0], &local, 0)?;
            return Ok(Vec::new());
        }
        let mut all = vec![local];
        for (i, p) in self.peers.iter_mut().enumerate() {
            all.push(recv(p, i + 1)?);
        }
        Ok(all)
    }

    /// Rank 0 sends `frame` to every rank and keeps it; another rank returns rank 0's, which
    /// must be `expect` bytes long (`width` bytes a value, for the message).
    fn spread(&mut self, frame: Vec<u8>, expect: usize, width: usize) -> Result<Vec<u8>> {
        if self.rank == 0 {
            for (i, p) in self.peers.iter_mut().enumerate() {
                self.sent += send(p, &frame, i + 1)?;
            }
            return Ok(frame);
        }
        let got = recv(&mut self.peers[0], 0)?;
        if got.len() != expect {
            let (sent, want) = (count(got.len(), width), count(expect, width));
            return Err(Error(format!("rank {}: rank 0 sent {sent}, expected {want}", self.rank)));
        }
        Ok(got)
    }

    /// Every rank's `local` frame (equal lengths) in rank order, on every rank.
    fn all_gather_frames(&mut self, local: Vec<u8>, width: usize) -> Result<Vec<u8>> {
        let n = local.len();
        let parts = self.gather(local)?;
        if self.rank == 0 {
            same_lengths("all_gather", &parts, n, width)?;
        }
        self.spread(parts.concat(), n * self.world, width)
    }

    /// Every rank's `frame` becomes `root`'s: through rank 0, which gets it by a gather.
    fn broadcast_frame(&mut self, frame: &mut [u8], root: usize, width: usize) -> Result<()> {
        if root != 0 {
            let parts = self.gather(frame.to_vec())?;
            if self.rank == 0 {
                same_lengths("broadcast", &parts, frame.len(), width)?;
                frame.copy_from_slice(&parts[root]);
            }
        }
        let own = if self.rank == 0 { frame.to_vec() } else { Vec::new() };
        let got = self.spread(own, frame.len(), width)?;
        frame.copy_from_slice(&got);
        Ok(())
    }
}

fn width(wire: Wire) -> usize {
    match wire {
        Wire::F32 => 4,
        Wire::F16 => 2,
    }
}

/// `bytes` as the values a message counts: f32/f16 values, or plain bytes (width 1).
fn count(bytes: usize, width: usize) -> String {
    match width {
        1 => format!("{bytes} bytes"),
        _ => format!("{} values", bytes / width),
    }
}

/// Every rank's frame in `parts` must be `bytes` long (`width` bytes a value).
fn same_lengths(what: &str, parts: &[Vec<u8>], bytes: usize, width: usize) -> Result<()> {
    match parts.iter().enumerate().find(|(_, p)| p.len() != bytes) {
        Some((r, p)) => {
            let (sent, has) = (count(p.len(), width), count(bytes, width));
            Err(Error(format!("{what}: rank {r} sent {sent}, rank 0 has {has}")))
        }
        None => Ok(()),
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
        Ok(decode(&self.all_gather_frames(encode(local, Wire::F32), 4)?, Wire::F32))
    }

    fn all_gather_bytes(&mut self, local: &[u8]) -> Result<Vec<u8>> {
        self.all_gather_frames(local.to_vec(), 1)
    }

    fn broadcast(&mut self, buf: &mut [f32], root: usize) -> Result<()> {
        let mut frame = encode(buf, Wire::F32);
        self.broadcast_frame(&mut frame, root, 4)?;
        buf.copy_from_slice(&decode(&frame, Wire::F32));
        Ok(())
    }

    fn broadcast_bytes(&mut self, buf: &mut [u8], root: usize) -> Result<()> {
        self.broadcast_frame(buf, root, 1)
    }
}
