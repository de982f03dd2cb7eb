//! Batched UDP receive and send: `recvmmsg(2)` and `sendmmsg(2)`, one
//! system call for up to `BATCH` datagrams (used by `udp::front`).
//!
//! Why (issue 5): a BEP 15 announce is cheap in user space and dear in the
//! kernel. `perf` of one worker under aquatic_udp_load_test put 80% of the
//! worker's time in the kernel and 17% in hayate; a syscall per datagram
//! each way paid entry/exit, the file lookup and the address copy every
//! time. The figures with and without batching are in `front.rs`.
//!
//! Buffers are owned here and reused: `BATCH` receive slots of
//! `RECV_SLOT` bytes with their source addresses, and `BATCH` send slots
//! of `SEND_SLOT` bytes with their destinations. The kernel writes only
//! into the slots and lengths we hand it, and we read back only the
//! lengths it reports, clamped to the slot.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::ptr;

use socket2::SockAddr;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// A receive slot: larger than any request we accept (see `front.rs`);
/// a longer datagram is truncated and then fails to decode.
pub const RECV_SLOT: usize = 2048;
/// A send slot: the longest reply we write (an announce with 200 IPv4
/// peers is 1,220 bytes).
pub const SEND_SLOT: usize = 1280;

/// Received datagrams and their sources.
pub struct RecvBatch {
    bufs: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    lens: [usize; BATCH],
    name_lens: [libc::socklen_t; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![0; BATCH * RECV_SLOT].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a
            // valid (AF_UNSPEC) value.
            names: (0..BATCH)
                .map(|_| unsafe { mem::zeroed::<libc::sockaddr_storage>() })
                .collect(),
            lens: [0; BATCH],
            name_lens: [0; BATCH],
        }
    }
}

impl RecvBatch {
    /// Receives up to `BATCH` waiting datagrams from `fd` without
    /// blocking; returns how many (an error only when none came:
    /// `WouldBlock` when nothing waits).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain old data (pointers and
        // integers); all zeroes is valid, and every field the kernel reads
        // is set below.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let base = self.bufs.as_mut_ptr();
        for (i, (iov, msg)) in iovs.iter_mut().zip(msgs.iter_mut()).enumerate() {
            // SAFETY: i < BATCH and bufs is BATCH * RECV_SLOT bytes, so the
            // slot [i * RECV_SLOT, (i + 1) * RECV_SLOT) is inside it.
            iov.iov_base = unsafe { base.add(i * RECV_SLOT) }.cast();
            iov.iov_len = RECV_SLOT;
            let Some(name) = self.names.get_mut(i) else {
                return Ok(0);
            };
            msg.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            msg.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs holds BATCH headers, each pointing at its own iovec
        // (alive in `iovs` until this call returns), its own RECV_SLOT-byte
        // slot of `bufs` and its own sockaddr_storage in `names`, all
        // exclusively borrowed through &mut self; the kernel writes at most
        // iov_len bytes and msg_namelen bytes into them. A null timeout
        // with MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for (i, msg) in msgs.iter().enumerate().take(n) {
            if let (Some(len), Some(name_len)) = (self.lens.get_mut(i), self.name_lens.get_mut(i)) {
                *len = (msg.msg_len as usize).min(RECV_SLOT);
                *name_len = msg.msg_hdr.msg_namelen;
            }
        }
        Ok(n)
    }

    /// Datagram `i` of the last `recv` and its source; `None` for a source
    /// that is not IPv4 or IPv6.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let len = *self.lens.get(i)?;
        let data = self.bufs.get(i * RECV_SLOT..i * RECV_SLOT + len)?;
        let name_len = (*self.name_lens.get(i)?)
            .min(mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        // SAFETY: the storage was filled by recvmmsg, which reported
        // `name_len` valid bytes (clamped to the storage's size above).
        let addr = unsafe { SockAddr::new(*self.names.get(i)?, name_len) };
        Some((data, addr.as_socket()?))
    }
}

/// Replies waiting to go out, with their destinations.
pub struct SendBatch {
    bufs: Box<[u8]>,
    lens: [usize; BATCH],
    to: Vec<SockAddr>,
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            bufs: vec![0; BATCH * SEND_SLOT].into_boxed_slice(),
            lens: [0; BATCH],
            to: Vec::with_capacity(BATCH),
        }
    }
}

/// What a flush did.
#[derive(Debug, Default)]
pub struct Sent {
    /// Datagrams the kernel took.
    pub datagrams: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Datagrams it refused (counted as dropped replies).
    pub failed: usize,
    /// The first refusal's error, for the debug log.
    pub error: Option<io::Error>,
}

impl SendBatch {
    /// Replies queued.
    pub fn len(&self) -> usize {
        self.to.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.to.is_empty()
    }

    /// Queues `reply` for `to`; false (nothing queued) when the batch is
    /// full or the reply longer than a slot. Flush when `len() == BATCH`.
    pub fn push(&mut self, reply: &[u8], to: SocketAddr) -> bool {
        let i = self.to.len();
        if reply.len() > SEND_SLOT || i >= BATCH {
            return false;
        }
        let Some(slot) = self
            .bufs
            .get_mut(i * SEND_SLOT..i * SEND_SLOT + reply.len())
        else {
            return false;
        };
        slot.copy_from_slice(reply);
        if let Some(len) = self.lens.get_mut(i) {
            *len = reply.len();
        }
        self.to.push(SockAddr::from(to));
        true
    }

    /// Sends everything queued on `fd` without blocking and empties the
    /// batch. A datagram the kernel refuses is skipped, not retried (the
    /// client retries), as a single `send_to` would be.
    pub fn flush(&mut self, fd: RawFd) -> Sent {
        let mut sent = Sent::default();
        let n = self.to.len().min(BATCH);
        // SAFETY: as in `recv`: plain old data, every read field set below.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let base = self.bufs.as_mut_ptr();
        for (i, (iov, msg)) in iovs.iter_mut().zip(msgs.iter_mut()).enumerate().take(n) {
            let (Some(&len), Some(to)) = (self.lens.get(i), self.to.get(i)) else {
                break;
            };
            // SAFETY: i < BATCH, and len <= SEND_SLOT (checked in push), so
            // [i * SEND_SLOT, i * SEND_SLOT + len) is inside bufs.
            iov.iov_base = unsafe { base.add(i * SEND_SLOT) }.cast();
            iov.iov_len = len;
            // The kernel only reads the name; sendmmsg's type asks for *mut.
            msg.msg_hdr.msg_name = to.as_ptr().cast_mut().cast();
            msg.msg_hdr.msg_namelen = to.len();
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
        }
        let mut start = 0;
        while start < n {
            let Some(rest) = msgs.get_mut(start..n) else {
                break;
            };
            // SAFETY: `rest` is n - start initialised headers pointing at
            // iovecs in `iovs`, slots of `bufs` and addresses in `self.to`,
            // all alive and unmodified until the call returns; the kernel
            // reads them and writes only each header's msg_len.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                // The datagram at `start` was refused: skip it.
                sent.failed += 1;
                if sent.error.is_none() {
                    sent.error = Some(io::Error::last_os_error());
                }
                start += 1;
                continue;
            }
            let r = (r as usize).min(rest.len());
            sent.datagrams += r;
            sent.bytes += rest
                .iter()
                .take(r)
                .map(|m| m.msg_len as usize)
                .sum::<usize>();
            start += r;
        }
        self.to.clear();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// 40 datagrams in, two batches (32 + 8) out of recvmmsg with their
    /// sources; replies back through sendmmsg to each source; over IPv4
    /// and IPv6.
    #[test]
    fn round_trip_over_both_families() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let server = UdpSocket::bind(host).unwrap();
            let clients: Vec<UdpSocket> = (0..4).map(|_| UdpSocket::bind(host).unwrap()).collect();
            let to = server.local_addr().unwrap();
            for i in 0..40u8 {
                let c = &clients[usize::from(i % 4)];
                c.send_to(&vec![i; 1 + usize::from(i)], to).unwrap();
            }
            let (mut rx, mut tx) = (RecvBatch::default(), SendBatch::default());
            let fd = server.as_raw_fd();
            let mut got = Vec::new();
            for _ in 0..100 {
                match rx.recv(fd) {
                    Ok(n) => {
                        assert!(n <= BATCH);
                        for k in 0..n {
                            let (data, from) = rx.get(k).unwrap();
                            got.push((data.to_vec(), from));
                            assert!(tx.push(data, from));
                        }
                        let sent = tx.flush(fd);
                        assert_eq!((sent.datagrams, sent.failed), (n, 0));
                        assert!(tx.is_empty());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if got.len() == 40 {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got.len(), 40, "{host}");
            for (i, (data, from)) in got.iter().enumerate() {
                assert_eq!(data, &vec![i as u8; 1 + i], "{host}");
                let client = &clients[i % 4];
                assert_eq!(*from, client.local_addr().unwrap(), "{host}");
            }
            for (i, c) in clients.iter().enumerate() {
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 64];
                for j in (i..40).step_by(4) {
                    let (n, from) = c.recv_from(&mut buf).unwrap();
                    assert_eq!((n, from), (1 + j, to), "{host}");
                }
            }
        }
    }

    #[test]
    fn push_refuses_oversized_replies_and_a_full_batch() {
        let mut tx = SendBatch::default();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!tx.push(&[0; SEND_SLOT + 1], to));
        for _ in 0..BATCH {
            assert!(tx.push(&[1; SEND_SLOT], to));
        }
        assert!(!tx.push(&[1], to));
        assert_eq!(tx.len(), BATCH);
    }
}
