//! Local peers first (issue #4): an announcer is handed the peers in its
//! own subnet (`local_prefix_v4`, `local_prefix_v6`) first, then the peers
//! in the configured local network it is in (`local_networks`), then the
//! rest; random within each group, never a repeat, never itself, and a
//! seeder still gets leechers only.
//!
//! `Locality` is worked out from the announcer's addresses before the
//! stripe lock is taken; `sample_near` runs under it, allocates nothing and
//! looks at no more than `SCAN_PEERS` records whatever the swarm size.
//!
//! Locking: nothing here locks; the caller holds the swarm's stripe.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::BitAnd;

use ipnet::IpNet;

use super::peers::{coprime_stride, PeerRecord, Records};
use super::swarm::{V4Peer, V6Peer};
use crate::rng::{scale, Rng};

/// Swarms up to this many peers (in the announcer's pool) are scanned
/// whole, so every local peer is found; a bigger pool is scanned through a
/// window of this many records at a random place, so an announce never
/// looks at more than this many records however big the swarm.
///
/// Decision (issue #4): this bounded scan, not a per-subnet index.
/// `cargo bench --bench announce -- local`, numwant 50, 1% of the swarm in
/// the announcer's /24, median per announce on the 2-core dev VM:
///
/// ```text
/// swarm size                       100      5k       100k
/// preference off                 301 ns   325 ns    386 ns
/// bounded scan (kept)            429 ns   3.51 µs   3.49 µs   41 of 50 from the /24
/// per-subnet index (tried)       = scan   425 ns    438 ns    50 of 50
/// swarm heap, scan / index       3 KB     183 / 647 KB    2.9 / 10.7 MB
/// scan, local_networks set       569 ns   5.08 µs   5.06 µs
/// ```
///
/// The index (subnet → positions plus a back-pointer per peer, kept by
/// upsert/swap/remove, built above `SCAN_PEERS` like the key index) makes
/// big swarms 8× cheaper but does not lower the worst case: below
/// `SCAN_PEERS` every local must be found, so both designs scan the whole
/// pool there (3.2 µs scan, 3.4 µs index at 4,000 peers). It costs 77 more
/// heap bytes a peer in big swarms (3.6×), a join + leave at 100k goes from
/// 0.67 to 1.31 µs (scan: 3.56 µs, selection included), a reload of the
/// prefix invalidates it, and `local_networks` still needs the window.
/// Memory per peer is a product figure, and the scan keeps no state in the
/// swarm. Revisit if big-swarm announce CPU starts to matter more.
pub const SCAN_PEERS: usize = 4096;

/// How near a candidate is to the announcer; lower is handed out first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// In the announcer's own /prefix.
    Subnet,
    /// In the configured local network the announcer is in.
    Network,
    /// Anywhere else.
    Other,
}

/// One family's view of "near" for one announcer, as address bit masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Near<A> {
    /// Netmask of the announcer's subnet.
    mask: A,
    /// The announcer's subnet.
    mine: A,
    /// A configured network holds the announcer: `net_mask`, `net` are its
    /// netmask and network (plain fields, not an `Option`, for the scan).
    has_net: bool,
    net_mask: A,
    net: A,
}

impl<A: Copy + Eq + BitAnd<Output = A>> Near<A> {
    /// Which group a peer at `addr` falls in.
    pub fn group(&self, addr: A) -> Group {
        // A window scan runs through this once per record: one branch
        // that is nearly always "no", and `has_net` is the same for the
        // whole scan (the compiler keeps a loop for each case).
        let subnet = addr & self.mask == self.mine;
        if !self.has_net {
            return if subnet { Group::Subnet } else { Group::Other };
        }
        let network = addr & self.net_mask == self.net;
        if !(subnet | network) {
            Group::Other
        } else if subnet {
            Group::Subnet
        } else {
            Group::Network
        }
    }
}

impl Near<u32> {
    /// Nearness to `me` with `prefix` bits of subnet and `networks`.
    ///
    /// Configured networks that contain `me` all contain each other (two
    /// CIDR blocks sharing an address are nested), so "shares a configured
    /// network with me" is "is in the widest one that contains me".
    pub fn v4(me: Ipv4Addr, prefix: usize, networks: &[IpNet]) -> Near<u32> {
        let mask = mask_u32(prefix);
        let net = networks
            .iter()
            .filter_map(|n| match n {
                IpNet::V4(n) if n.contains(&me) => Some(n),
                _ => None,
            })
            .min_by_key(|n| n.prefix_len())
            .map(|n| (u32::from(n.netmask()), u32::from(n.network())));
        let (net_mask, net_bits) = net.unwrap_or_default();
        Near {
            mask,
            mine: u32::from(me) & mask,
            has_net: net.is_some(),
            net_mask,
            net: net_bits,
        }
    }
}

impl Near<u128> {
    /// Nearness to `me` with `prefix` bits of subnet and `networks`.
    pub fn v6(me: Ipv6Addr, prefix: usize, networks: &[IpNet]) -> Near<u128> {
        let mask = mask_u128(prefix);
        let net = networks
            .iter()
            .filter_map(|n| match n {
                IpNet::V6(n) if n.contains(&me) => Some(n),
                _ => None,
            })
            .min_by_key(|n| n.prefix_len())
            .map(|n| (u128::from(n.netmask()), u128::from(n.network())));
        let (net_mask, net_bits) = net.unwrap_or_default();
        Near {
            mask,
            mine: u128::from(me) & mask,
            has_net: net.is_some(),
            net_mask,
            net: net_bits,
        }
    }
}

fn mask_u32(prefix: usize) -> u32 {
    match prefix.min(32) {
        0 => 0,
        p => u32::MAX << (32 - p),
    }
}

fn mask_u128(prefix: usize) -> u128 {
    match prefix.min(128) {
        0 => 0,
        p => u128::MAX << (128 - p),
    }
}

/// The announcer's nearness per family; `None` for a family it has no
/// address in (or when preference is off): plain random selection there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Locality {
    /// IPv4 nearness.
    pub v4: Option<Near<u32>>,
    /// IPv6 nearness.
    pub v6: Option<Near<u128>>,
}

impl Locality {
    /// Nearness for an announcer at `v4` / `v6`.
    pub fn of(
        v4: Option<SocketAddrV4>,
        v6: Option<SocketAddrV6>,
        prefix_v4: usize,
        prefix_v6: usize,
        networks: &[IpNet],
    ) -> Locality {
        Locality {
            v4: v4.map(|a| Near::v4(*a.ip(), prefix_v4, networks)),
            v6: v6.map(|a| Near::v6(*a.ip(), prefix_v6, networks)),
        }
    }
}

/// The address bits of an IPv4 record.
pub fn bits_v4(p: &V4Peer) -> u32 {
    let c = p.compact();
    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
}

/// The address bits of an IPv6 record.
pub fn bits_v6(p: &V6Peer) -> u128 {
    let mut a = [0; 16];
    a.copy_from_slice(&p.compact()[..16]);
    u128::from_be_bytes(a)
}

/// Positions `0..n` in a random order: a random start and a stride
/// coprime to `n` visit each position once (as `peers::sample` does).
#[derive(Debug)]
struct Walk {
    pos: usize,
    stride: usize,
    n: usize,
    left: usize,
}

impl Walk {
    fn new(n: usize, rng: &mut Rng) -> Walk {
        Walk {
            pos: rng.below(n),
            stride: coprime_stride(n, rng),
            n,
            left: n,
        }
    }
}

impl Iterator for Walk {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let here = self.pos;
        self.pos += self.stride;
        if self.pos >= self.n {
            self.pos -= self.n;
        }
        Some(here)
    }
}

/// Reused positions of the near peers one scan found (one per worker, in
/// its `PeerBuf`). Sized for the widest window at creation, so a scan never
/// grows it under a stripe lock.
#[derive(Debug)]
pub struct Scratch {
    subnet: Vec<u32>,
    network: Vec<u32>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            subnet: Vec::with_capacity(SCAN_PEERS),
            network: Vec::with_capacity(SCAN_PEERS),
        }
    }
}

/// Like `peers::sample`, but hands out the peers `group` puts in
/// `Subnet` first, then `Network`, then `Other`: up to `want` distinct
/// peers, never the one at `exclude`, leechers only for a seeder.
///
/// One pass in storage order over a window of `SCAN_PEERS` records at a
/// random place (the whole pool when it is smaller, so then every near
/// peer is found) notes where the near peers are; each group is then
/// handed out as a random subset in random order (a partial Fisher–Yates
/// shuffle of its positions), and the rest is filled as `sample` does,
/// from the whole pool, skipping the window's near peers (already out).
/// `ahead`: the draw for the window's start when it was made before the
/// lock, so the window could be prefetched (`Swarm::reach`).
#[allow(clippy::too_many_arguments)]
pub fn sample_near<P: PeerRecord>(
    list: &impl Records<P>,
    want: usize,
    for_seeder: bool,
    exclude: Option<usize>,
    ahead: Option<u64>,
    rng: &mut Rng,
    group: impl Fn(&P) -> Group,
    scratch: &mut Scratch,
    mut out: impl FnMut(&P),
) {
    let start = if for_seeder { list.seeders() } else { 0 };
    let n = list.len().saturating_sub(start);
    let pool = |i: usize| list.get(start + i);
    let exclude = exclude
        .and_then(|e| e.checked_sub(start))
        .filter(|&e| e < n);
    let available = n - usize::from(exclude.is_some());
    let want = want.min(available);
    if want == 0 {
        return;
    }
    let width = n.min(SCAN_PEERS);
    // A random start even when the window is the whole pool: the scan
    // stops once it has `want` subnet peers, and those must not always be
    // the first ones in storage order. (Stopping there: a swarm where most
    // peers share the announcer's subnet, like a load test on loopback,
    // no longer pays for scanning 4,096 records: `sample_near` was 6.8% of
    // a UDP worker's profile under aquatic_udp_load_test, where every peer
    // is 127.0.0.1; user CPU per response 1.08 → 0.90 µs, A/B.)
    let first = ahead.map_or_else(|| rng.below(n), |d| scale(d, n));
    // The window is [first, first + width), wrapping: at most two runs.
    let wrapped = (first + width).saturating_sub(n);
    scratch.subnet.clear();
    scratch.network.clear();
    for (lo, hi) in [(first, first + width - wrapped), (0, wrapped)] {
        if scratch.subnet.len() >= want {
            break;
        }
        list.visit(start + lo..start + hi, |at, p| {
            let i = at - start;
            match group(p) {
                Group::Other => {}
                _ if Some(i) == exclude => {}
                Group::Subnet => scratch.subnet.push(i as u32),
                Group::Network => scratch.network.push(i as u32),
            }
            scratch.subnet.len() < want
        });
    }
    let mut taken = 0;
    for near in [&mut scratch.subnet, &mut scratch.network] {
        let k = near.len().min(want - taken);
        for t in 0..k {
            let j = t + rng.below(near.len() - t);
            near.swap(t, j);
            if let Some(p) = near.get(t).and_then(|&i| pool(i as usize)) {
                out(&p);
            }
        }
        taken += k;
    }
    if taken == want {
        return;
    }
    // Every near peer of the window is out; the rest comes from anywhere.
    let in_window = |i: usize| (if i >= first { i - first } else { i + n - first }) < width;
    for i in Walk::new(n, rng) {
        let Some(p) = pool(i).filter(|_| Some(i) != exclude) else {
            continue;
        };
        if in_window(i) && group(&p) != Group::Other {
            continue;
        }
        out(&p);
        taken += 1;
        if taken == want {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::core::announce::{Announce, Gauges, PeerBuf, Tracker};
    use crate::core::peers::{upsert, PeerList};
    use crate::core::swarm::{Delta, PeerUpdate, Swarm};
    use crate::core::Event;
    use std::collections::HashSet;
    use std::net::IpAddr;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// The group of `peer` for an announcer at `me` (same family).
    fn group_of(me: &str, prefix: usize, networks: &[&str], peer: &str) -> Group {
        let networks = nets(networks);
        match (me.parse().unwrap(), peer.parse().unwrap()) {
            (IpAddr::V4(me), IpAddr::V4(p)) => Near::v4(me, prefix, &networks).group(u32::from(p)),
            (IpAddr::V6(me), IpAddr::V6(p)) => Near::v6(me, prefix, &networks).group(u128::from(p)),
            _ => panic!("mixed families"),
        }
    }

    #[test]
    fn group_table() {
        use Group::*;
        let cases: &[(&str, usize, &[&str], &str, Group)] = &[
            ("10.1.2.200", 24, &[], "10.1.2.3", Subnet),
            ("10.1.2.200", 24, &[], "10.1.2.200", Subnet),
            ("10.1.2.200", 24, &[], "10.1.3.3", Other),
            ("10.1.2.200", 24, &["10.1.0.0/16"], "10.1.3.3", Network),
            ("10.1.2.200", 24, &["10.1.0.0/16"], "10.1.2.9", Subnet),
            ("10.1.2.200", 24, &["10.1.0.0/16"], "10.2.3.3", Other),
            // A network the announcer is not in is nobody's network.
            ("10.1.2.200", 24, &["10.9.0.0/16"], "10.9.1.1", Other),
            // Nested networks around the announcer: the widest counts.
            (
                "10.1.2.200",
                24,
                &["10.1.0.0/16", "10.0.0.0/8"],
                "10.200.0.1",
                Network,
            ),
            (
                "10.1.2.200",
                24,
                &["10.1.2.128/25", "10.1.0.0/16"],
                "10.1.9.9",
                Network,
            ),
            // Another family's networks do not apply.
            ("10.1.2.200", 24, &["::/0"], "11.0.0.1", Other),
            ("10.1.2.200", 0, &[], "192.0.2.1", Subnet),
            ("10.1.2.200", 32, &[], "10.1.2.201", Other),
            ("10.1.2.200", 16, &[], "10.1.77.1", Subnet),
            ("10.1.2.200", 33, &[], "10.1.2.200", Subnet),
            ("2001:db8:1:2::ff", 64, &[], "2001:db8:1:2:ffff::1", Subnet),
            ("2001:db8:1:2::ff", 64, &[], "2001:db8:1:3::1", Other),
            (
                "2001:db8:1:2::ff",
                64,
                &["2001:db8:1::/48"],
                "2001:db8:1:3::1",
                Network,
            ),
            (
                "2001:db8:1:2::ff",
                64,
                &["2001:db8:1::/48"],
                "2001:db8:2::1",
                Other,
            ),
            (
                "2001:db8:1:2::ff",
                64,
                &["0.0.0.0/0"],
                "2001:db8:2::1",
                Other,
            ),
            ("2001:db8:1:2::ff", 128, &[], "2001:db8:1:2::fe", Other),
            ("2001:db8:1:2::ff", 0, &[], "fe80::1", Subnet),
        ];
        for &(me, prefix, networks, peer, want) in cases {
            assert_eq!(
                group_of(me, prefix, networks, peer),
                want,
                "{peer} seen from {me}/{prefix} with {networks:?}"
            );
        }
    }

    use crate::core::peers::KeyOnly as P;

    /// 1 in 20 peers is a neighbour, 2 in 20 are in the local network.
    fn group_by_key(p: &P) -> Group {
        match p.0 % 20 {
            0 => Group::Subnet,
            1 | 2 => Group::Network,
            _ => Group::Other,
        }
    }

    fn list(n: u32) -> PeerList<P> {
        let mut l = PeerList::default();
        for k in 0..n {
            upsert(&mut l, P(k), k % 3 == 0);
        }
        l
    }

    fn take(l: &PeerList<P>, want: usize, seeder: bool, me: u32, rng: &mut Rng) -> Vec<u32> {
        let mut got = Vec::new();
        let exclude = l.find(&me);
        sample_near(
            l,
            want,
            seeder,
            exclude,
            None,
            rng,
            group_by_key,
            &mut Scratch::default(),
            |p| got.push(p.0),
        );
        got
    }

    #[test]
    fn sample_near_invariants() {
        let mut rng = Rng::from_seed(11);
        let sizes = [
            1,
            2,
            3,
            10,
            64,
            1000,
            SCAN_PEERS as u32,
            SCAN_PEERS as u32 + 1,
            10_000,
        ];
        for n in sizes {
            let l = list(n);
            for want in [0usize, 1, 5, 50, 5000] {
                for seeder in [false, true] {
                    // The announcer is a neighbour of itself: never handed out.
                    let me = 20;
                    let got = take(&l, want, seeder, me, &mut rng);
                    let ctx = format!("n={n} want={want} seeder={seeder}");
                    let uniq: HashSet<u32> = got.iter().copied().collect();
                    assert_eq!(uniq.len(), got.len(), "repeats, {ctx}");
                    assert!(!got.contains(&me), "self, {ctx}");
                    let pool: Vec<u32> = (0..n)
                        .filter(|k| *k != me && !(seeder && k % 3 == 0))
                        .collect();
                    assert_eq!(got.len(), want.min(pool.len()), "{ctx}");
                    if seeder {
                        assert!(got.iter().all(|k| k % 3 != 0), "seeder got seeders, {ctx}");
                    }
                    let groups: Vec<Group> = got.iter().map(|&k| group_by_key(&P(k))).collect();
                    if n as usize <= SCAN_PEERS {
                        // Whole pool scanned: near peers first, all found.
                        assert!(groups.windows(2).all(|w| w[0] <= w[1]), "order, {ctx}");
                        let mut left = want;
                        for g in [Group::Subnet, Group::Network, Group::Other] {
                            let there = pool.iter().filter(|&&k| group_by_key(&P(k)) == g).count();
                            let handed = groups.iter().filter(|&&x| x == g).count();
                            assert_eq!(handed, left.min(there), "{g:?}, {ctx}");
                            left -= handed;
                        }
                    } else {
                        // A window of SCAN_PEERS holds ~200 neighbours.
                        let head = want.min(50);
                        assert!(
                            groups[..head].iter().all(|&g| g == Group::Subnet),
                            "{ctx}: {groups:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sample_near_is_random_within_each_group() {
        let mut rng = Rng::from_seed(5);
        let l = list(1000);
        // 50 neighbours, 10 wanted: every neighbour turns up over time,
        // nobody else ever does.
        let mut seen = HashSet::new();
        for _ in 0..300 {
            for k in take(&l, 10, false, 999, &mut rng) {
                assert_eq!(group_by_key(&P(k)), Group::Subnet);
                seen.insert(k);
            }
        }
        assert_eq!(seen.len(), 50);
        // 50 neighbours + 100 in the network, 60 wanted: the 10 network
        // peers of each reply are spread over all 100.
        let mut seen = HashSet::new();
        for _ in 0..300 {
            let got = take(&l, 60, false, 999, &mut rng);
            seen.extend(got[50..].iter().copied());
            assert!(got[50..]
                .iter()
                .all(|&k| group_by_key(&P(k)) == Group::Network));
        }
        assert_eq!(seen.len(), 100);
        // And the rest is spread over the whole swarm.
        let mut seen = HashSet::new();
        for _ in 0..300 {
            seen.extend(take(&l, 200, false, 999, &mut rng).into_iter().skip(150));
        }
        assert!(seen.len() > 800, "{}", seen.len());
    }

    #[test]
    fn every_neighbour_found_up_to_the_scan_limit() {
        // Three neighbours hidden at random places among SCAN_PEERS peers.
        let mut rng = Rng::from_seed(3);
        for round in 0..20u32 {
            let mut l = PeerList::default();
            let near: Vec<u32> = (0..3).map(|_| rng.below(SCAN_PEERS) as u32).collect();
            for k in 0..SCAN_PEERS as u32 {
                upsert(&mut l, P(k), k % 2 == 0);
            }
            let group = |p: &P| {
                if near.contains(&p.0) {
                    Group::Subnet
                } else {
                    Group::Other
                }
            };
            for seeder in [false, true] {
                let mut got = Vec::new();
                sample_near(
                    &l,
                    5,
                    seeder,
                    None,
                    None,
                    &mut rng,
                    group,
                    &mut Scratch::default(),
                    |p| got.push(p.0),
                );
                let mut first: Vec<u32> =
                    got.iter().copied().filter(|k| near.contains(k)).collect();
                let mut expect: Vec<u32> = near
                    .iter()
                    .copied()
                    .filter(|k| !seeder || k % 2 == 1)
                    .collect();
                first.sort();
                expect.sort();
                expect.dedup();
                assert_eq!(first, expect, "round {round} seeder={seeder}");
                assert!(got[..expect.len()].iter().all(|k| near.contains(k)));
            }
        }
    }

    fn v4(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> SocketAddrV6 {
        s.parse().unwrap()
    }

    #[test]
    fn swarm_select_puts_the_ipv6_slash_64_first() {
        let mut s = Swarm::default();
        let d = &mut Delta::default();
        let mut add = |a: SocketAddrV6, seeder: bool| {
            let u = PeerUpdate {
                v4: None,
                v6: Some(a),
                seeder,
                completed: false,
            };
            s.update(&u, 0, d)
        };
        for i in 0..40u16 {
            add(
                v6(&format!("[2001:db8:1:{:x}::{:x}]:6881", 100 + i, i + 1)),
                i % 2 == 0,
            );
        }
        for i in 1..=4u16 {
            add(v6(&format!("[2001:db8:1:2::{i}]:6881")), i == 1);
        }
        let me = add(v6("[2001:db8:1:2::ff]:6881"), false);
        let near = Locality::of(None, Some(v6("[2001:db8:1:2::ff]:6881")), 24, 64, &[]);
        let mut rng = Rng::from_seed(8);
        let (mut o4, mut o6) = (Vec::new(), Vec::new());
        for seeder in [false, true] {
            o6.clear();
            s.select(
                me,
                seeder,
                0,
                10,
                &near,
                &mut Scratch::default(),
                None,
                &mut rng,
                &mut o4,
                &mut o6,
            );
            let got: Vec<[u8; 18]> = o6.chunks(18).map(|c| c.try_into().unwrap()).collect();
            assert_eq!(got.len(), 10);
            let locals = if seeder { 3 } else { 4 };
            for (i, c) in got.iter().enumerate() {
                let in64 = c[..8] == [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2];
                assert_eq!(in64, i < locals, "seeder={seeder} #{i} {c:?}");
                assert_ne!(c[15], 0xff, "self");
            }
            if seeder {
                // Leechers only: ::1 and the even 2001:db8:1:xx:: are seeders.
                assert!(got
                    .iter()
                    .all(|c| c[15] != 1 && (c[7] < 100 || c[15] % 2 == 0)));
            }
        }
    }

    /// An announce from `from` (10.x) to torrent 1, numwant 5.
    fn announce<'a>(from: &str, networks: &'a [IpNet]) -> Announce<'a> {
        Announce {
            info_hash: [1; 20],
            v4: Some(v4(from)),
            v6: None,
            left: 1,
            event: Event::None,
            numwant: 5,
            want_v4: true,
            want_v6: true,
            local_networks: networks,
        }
    }

    #[test]
    fn tracker_takes_prefix_and_switch_from_apply() {
        let mut config = Config {
            stripes: 1,
            ..Config::default()
        };
        let tracker = Tracker::new(&config, Clock::new());
        let (g, mut out, mut rng) = (Gauges::default(), PeerBuf::default(), Rng::from_seed(2));
        for i in 0..60u8 {
            let from = format!("10.{}.{}.1:6881", 2 + i % 5, 10 + i);
            tracker.announce(&announce(&from, &[]), &mut rng, &mut out, &g);
        }
        tracker.announce(&announce("10.1.2.7:6881", &[]), &mut rng, &mut out, &g);
        tracker.announce(&announce("10.1.9.7:6881", &[]), &mut rng, &mut out, &g);
        let me = "10.1.2.200:6881";
        let count = |out: &PeerBuf, prefix: &[u8]| {
            out.v4.chunks(6).filter(|c| c.starts_with(prefix)).count()
        };
        // Defaults: /24, so 10.1.2.7 comes first.
        tracker.announce(&announce(me, &[]), &mut rng, &mut out, &g);
        assert!(out.v4.starts_with(&[10, 1, 2, 7]));
        // /16: both 10.1.x come first.
        config.local_prefix_v4 = 16;
        tracker.apply(&config);
        tracker.announce(&announce(me, &[]), &mut rng, &mut out, &g);
        assert_eq!(count(&out, &[10, 1]), 2);
        assert_eq!(
            out.v4[..12].iter().step_by(6).copied().collect::<Vec<_>>(),
            [10, 10]
        );
        assert_eq!((out.v4[1], out.v4[7]), (1, 1));
        // /24 again with 10.0.0.0/8 configured: 10.1.2.7 first, then the network.
        config.local_prefix_v4 = 24;
        tracker.apply(&config);
        let network = nets(&["10.0.0.0/8"]);
        tracker.announce(&announce(me, &network), &mut rng, &mut out, &g);
        assert!(out.v4.starts_with(&[10, 1, 2, 7]));
        // Off: over 50 announces 10.1.x turns up about 50 × 5 × 2/62 ≈ 8 times, not 100.
        config.prefer_local_peers = false;
        tracker.apply(&config);
        let mut near = 0;
        for _ in 0..50 {
            tracker.announce(&announce(me, &[]), &mut rng, &mut out, &g);
            near += count(&out, &[10, 1]);
        }
        assert!(near < 40, "{near}");
    }
}
