//! The protocol-independent tracker: announces and scrapes in, replies out.
//! Front ends (HTTP, UDP) decode their wire format into these types, call
//! the core, and encode what it returns. Nothing here knows about sockets.

pub mod announce;
pub mod index;
pub mod local;
pub mod peers;
pub mod records;
pub mod small;
pub mod store;
pub mod swarm;
pub mod table;

/// A torrent's 20-byte SHA-1 info hash.
pub type InfoHash = [u8; 20];
/// A client's 20-byte peer id.
pub type PeerId = [u8; 20];

/// The `event` of an announce. `paused` (BEP 21) is a normal update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Regular update (no event, empty, or `paused`).
    None,
    /// `started`
    Started,
    /// `completed`
    Completed,
    /// `stopped`
    Stopped,
}

/// Why a request was refused. The text is what the client sees in
/// `failure reason`; the label names the counter on the stats page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No `info_hash` parameter.
    MissingInfoHash,
    /// `info_hash` does not decode to exactly 20 bytes.
    InvalidInfoHash,
    /// No `peer_id` parameter.
    MissingPeerId,
    /// `peer_id` does not decode to exactly 20 bytes.
    InvalidPeerId,
    /// No `port` parameter.
    MissingPort,
    /// `port` is 0, not a number, or above 65535.
    InvalidPort,
    /// No `left` parameter.
    MissingLeft,
    /// `uploaded`, `downloaded`, `left` or `numwant` is not a decimal number.
    InvalidNumber,
    /// `event` is not one of the known values.
    InvalidEvent,
    /// A percent-escape is malformed (`%zz`, `%4`).
    MalformedQuery,
    /// More `info_hash` values in a scrape than `max_scrape_hashes`.
    TooManyInfoHashes,
    /// A scrape without any `info_hash`.
    FullScrapeDisabled,
    /// A trusted proxy sent an unusable client-address header.
    InvalidProxyHeader,
    /// The torrent is on the denylist.
    TorrentDenied,
    /// An allowlist is in force and the torrent is not on it.
    TorrentNotAllowed,
    /// A second full scrape within `full_scrape_interval`.
    FullScrapeTooOften,
}

impl Failure {
    /// Every variant, in declaration order (index = `self as usize`).
    pub const ALL: [Failure; 16] = [
        Failure::MissingInfoHash,
        Failure::InvalidInfoHash,
        Failure::MissingPeerId,
        Failure::InvalidPeerId,
        Failure::MissingPort,
        Failure::InvalidPort,
        Failure::MissingLeft,
        Failure::InvalidNumber,
        Failure::InvalidEvent,
        Failure::MalformedQuery,
        Failure::TooManyInfoHashes,
        Failure::FullScrapeDisabled,
        Failure::InvalidProxyHeader,
        Failure::TorrentDenied,
        Failure::TorrentNotAllowed,
        Failure::FullScrapeTooOften,
    ];

    /// The `failure reason` text.
    pub fn reason(self) -> &'static str {
        match self {
            Failure::MissingInfoHash => "missing info_hash",
            Failure::InvalidInfoHash => "invalid info_hash (must be 20 bytes)",
            Failure::MissingPeerId => "missing peer_id",
            Failure::InvalidPeerId => "invalid peer_id (must be 20 bytes)",
            Failure::MissingPort => "missing port",
            Failure::InvalidPort => "invalid port",
            Failure::MissingLeft => "missing left",
            Failure::InvalidNumber => "invalid number in uploaded, downloaded, left or numwant",
            Failure::InvalidEvent => "invalid event",
            Failure::MalformedQuery => "malformed query string",
            Failure::TooManyInfoHashes => "too many info_hash values in one scrape",
            Failure::FullScrapeDisabled => "full scrape is disabled",
            Failure::InvalidProxyHeader => "invalid client address header from proxy",
            Failure::TorrentDenied | Failure::TorrentNotAllowed => {
                "torrent not allowed on this tracker"
            }
            Failure::FullScrapeTooOften => "full scrape requested too often",
        }
    }

    /// The `reason` label on the stats page.
    pub fn label(self) -> &'static str {
        match self {
            Failure::MissingInfoHash => "missing_info_hash",
            Failure::InvalidInfoHash => "invalid_info_hash",
            Failure::MissingPeerId => "missing_peer_id",
            Failure::InvalidPeerId => "invalid_peer_id",
            Failure::MissingPort => "missing_port",
            Failure::InvalidPort => "invalid_port",
            Failure::MissingLeft => "missing_left",
            Failure::InvalidNumber => "invalid_number",
            Failure::InvalidEvent => "invalid_event",
            Failure::MalformedQuery => "malformed_query",
            Failure::TooManyInfoHashes => "too_many_info_hashes",
            Failure::FullScrapeDisabled => "full_scrape_disabled",
            Failure::InvalidProxyHeader => "invalid_proxy_header",
            Failure::TorrentDenied => "torrent_denied",
            Failure::TorrentNotAllowed => "torrent_not_allowed",
            Failure::FullScrapeTooOften => "full_scrape_too_often",
        }
    }
}
