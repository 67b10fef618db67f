//! systemd `sd_notify` over its Unix datagram socket, without libsystemd.
//!
//! Owns the protocol: one datagram of `KEY=value` lines to the socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace), and the watchdog
//! interval from `$WATCHDOG_USEC`/`$WATCHDOG_PID`. It must not decide *when* to notify: the
//! daemon sends `READY=1` once the first stylized frame is pushed and `WATCHDOG=1` from the
//! frame loop, so a hung loop stops the pings. Outside systemd there is no socket and
//! [`Notifier::from_env`] returns `None`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={address:?} is not a usable socket address: {source}")]
    Address {
        address: OsString,
        source: io::Error,
    },
    #[error("cannot create a datagram socket for sd_notify: {0}")]
    Socket(io::Error),
    #[error("cannot send {state:?} to the systemd notify socket: {source}")]
    Send { state: String, source: io::Error },
}

/// A handle on systemd's notify socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for through `$NOTIFY_SOCKET`; `None` when not run by
    /// systemd (or with a socket address that cannot work, which is logged).
    pub fn from_env() -> Option<Self> {
        let address = std::env::var_os("NOTIFY_SOCKET")?;
        Self::connect(&address)
            .inspect_err(|error| tracing::warn!(%error, "systemd notify disabled"))
            .ok()
    }

    /// A notifier for `address`: a socket path, or `@name` for an abstract socket.
    pub fn connect(address: &OsStr) -> Result<Self, NotifyError> {
        let bytes = address.as_bytes();
        let parsed = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name),
            None if bytes.first() == Some(&b'/') => SocketAddr::from_pathname(address),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "expected an absolute path or @name",
            )),
        };
        let address = parsed.map_err(|source| NotifyError::Address {
            address: address.to_owned(),
            source,
        })?;
        let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
        Ok(Self { socket, address })
    }

    /// `READY=1`: startup is finished (send once the first stylized frame is out).
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.send("READY=1")
    }

    /// `WATCHDOG=1`: still alive. Send at least every [`watchdog_interval`] / 2.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    /// `STATUS=...`: one line shown by `systemctl status`; line breaks become spaces.
    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        let line: String = status
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.send(&format!("STATUS={line}"))
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1")
    }

    /// Sends one raw datagram of newline-separated `KEY=value` assignments.
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.address)
            .map(drop)
            .map_err(|source| NotifyError::Send {
                state: state.to_owned(),
                source,
            })
    }
}

/// The watchdog interval systemd expects pings within (`WatchdogSec=`), if it is enabled
/// for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] from the variables' values: `WATCHDOG_USEC` must be a positive
/// number of microseconds, and `WATCHDOG_PID`, when set, must be `our_pid` (otherwise the
/// watchdog is meant for another process, such as a parent shell).
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(our_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(listener: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_each_state_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::connect(path.as_os_str()).unwrap();
        notifier.ready().unwrap();
        assert_eq!(receive(&listener), "READY=1");
        notifier.watchdog().unwrap();
        assert_eq!(receive(&listener), "WATCHDOG=1");
        notifier.status("29.8 fps\np95 24.1 ms").unwrap();
        assert_eq!(receive(&listener), "STATUS=29.8 fps p95 24.1 ms");
        notifier.stopping().unwrap();
        assert_eq!(receive(&listener), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("stylerd-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&address).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::connect(OsStr::new(&format!("@{name}"))).unwrap();
        notifier.ready().unwrap();
        assert_eq!(receive(&listener), "READY=1");
    }

    #[test]
    fn bad_addresses_and_absent_listeners_are_errors() {
        let error = Notifier::connect(OsStr::new("relative/path")).unwrap_err();
        assert!(error.to_string().contains("relative/path"), "{error}");
        let long = format!("/{}", "x".repeat(200));
        assert!(Notifier::connect(OsStr::new(&long)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("nobody-listens");
        let notifier = Notifier::connect(gone.as_os_str()).unwrap();
        let error = notifier.ready().unwrap_err().to_string();
        assert!(error.contains("READY=1"), "{error}");
    }

    #[test]
    fn watchdog_interval_needs_usec_and_our_pid() {
        let ten_s = Some(Duration::from_secs(10));
        assert_eq!(parse_watchdog(Some("10000000"), None, 42), ten_s);
        assert_eq!(parse_watchdog(Some("10000000"), Some("42"), 42), ten_s);
        assert_eq!(parse_watchdog(Some("10000000"), Some("41"), 42), None);
        assert_eq!(parse_watchdog(Some("10000000"), Some("x"), 42), None);
        assert_eq!(parse_watchdog(Some("0"), None, 42), None);
        assert_eq!(parse_watchdog(Some("ten"), None, 42), None);
        assert_eq!(parse_watchdog(None, Some("42"), 42), None);
    }
}
