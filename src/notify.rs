//! systemd readiness notification (`Type=notify`) without libsystemd: one
//! datagram per state change to the Unix socket named by `$NOTIFY_SOCKET`
//! (a path, or `@name` for the abstract namespace). Without the variable
//! every call does nothing. Failures are logged once and otherwise ignored:
//! the tracker must never stop because its supervisor is unreachable.

use std::os::unix::net::UnixDatagram;

/// Sends `READY=1`, `RELOADING=1`, `STOPPING=1` and `STATUS=...`.
pub struct Notifier {
    target: Option<(UnixDatagram, String)>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or a silent one when it is unset.
    pub fn from_env() -> Notifier {
        let target =
            std::env::var("NOTIFY_SOCKET")
                .ok()
                .and_then(|path| match UnixDatagram::unbound() {
                    Ok(socket) => Some((socket, path)),
                    Err(e) => {
                        log::warn!("NOTIFY_SOCKET: {e}");
                        None
                    }
                });
        Notifier { target }
    }

    /// Every socket is bound: the service is up.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload (SIGHUP) begins; `ready` ends it.
    pub fn reloading(&self) {
        self.send("RELOADING=1");
    }

    /// Shutdown begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// A one-line status for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    fn send(&self, message: &str) {
        let Some((socket, path)) = &self.target else {
            return;
        };
        let sent = match path.strip_prefix('@') {
            Some(name) => send_abstract(socket, name, message),
            None => socket.send_to(message.as_bytes(), path).map(|_| ()),
        };
        if let Err(e) = sent {
            log::debug!("NOTIFY_SOCKET {path}: {e}");
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &str, message: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(message.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
