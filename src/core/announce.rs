//! Announce and scrape rules (PROTOCOL.md "Counting rules").

/// Counts and timers of an announce reply, shared by HTTP and UDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnnounceStats {
    /// Seeders in the swarm, the announcer included.
    pub complete: u32,
    /// Leechers in the swarm, the announcer included.
    pub incomplete: u32,
    /// Completed downloads of the torrent.
    pub downloaded: u32,
    /// `interval` in seconds (jittered).
    pub interval_secs: u32,
    /// `min interval` in seconds.
    pub min_interval_secs: u32,
}

/// One torrent's line in a scrape reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// Completed downloads.
    pub downloaded: u32,
}
