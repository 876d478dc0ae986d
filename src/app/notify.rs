//! systemd readiness and watchdog notifications (`sd_notify` protocol), without libsystemd.
//!
//! When `NOTIFY_SOCKET` is set (a path, or `@name` for an abstract socket), datagrams such as `READY=1`,
//! `WATCHDOG=1`, `STATUS=…` and `STOPPING=1` are sent to it. `WATCHDOG_USEC` gives the watchdog period; the engine
//! pings at half of it, and only while the pipeline is healthy, so a wedged engine is restarted by systemd.
//! Without `NOTIFY_SOCKET` every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A notifier bound to `NOTIFY_SOCKET`.
pub(crate) struct Notifier {
    sock: Option<(UnixDatagram, String)>,
    /// Watchdog period from `WATCHDOG_USEC`.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment.
    pub(crate) fn from_env() -> Self {
        Self::new(std::env::var("NOTIFY_SOCKET").ok(), std::env::var("WATCHDOG_USEC").ok())
    }

    /// From explicit values (tests).
    pub(crate) fn new(socket: Option<String>, watchdog_usec: Option<String>) -> Self {
        let sock = socket.filter(|s| !s.is_empty()).and_then(|s| UnixDatagram::unbound().ok().map(|d| (d, s)));
        let watchdog = watchdog_usec.and_then(|v| v.parse::<u64>().ok()).filter(|&u| u > 0).map(Duration::from_micros);
        Notifier { sock, watchdog }
    }

    /// True when systemd listens.
    #[cfg(test)]
    pub(crate) fn enabled(&self) -> bool {
        self.sock.is_some()
    }

    /// Sends one notification; errors are returned (the caller logs them once).
    pub(crate) fn notify(&self, msg: &str) -> std::io::Result<()> {
        let Some((d, path)) = &self.sock else { return Ok(()) };
        if let Some(name) = path.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                d.send_to_addr(msg.as_bytes(), &addr)?;
                return Ok(());
            }
            #[cfg(not(target_os = "linux"))]
            {
                drop(name); // Unused off Linux.
                return Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "abstract sockets need Linux"));
            }
        }
        d.send_to(msg.as_bytes(), path).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_the_protocol_to_a_local_datagram_socket() {
        let path = crate::app::test_dir("notify").join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let n = Notifier::new(Some(path.display().to_string()), Some("20000000".into()));
        assert!(n.enabled());
        assert_eq!(n.watchdog, Some(Duration::from_secs(20)));
        n.notify("READY=1\nSTATUS=trading 3 symbols").unwrap();
        n.notify("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 256];
        let k = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"READY=1\nSTATUS=trading 3 symbols");
        let k = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"WATCHDOG=1");
        // Abstract namespace.
        let name = format!("rusto-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let abs =
            UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        abs.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Notifier::new(Some(format!("@{name}")), None).notify("STOPPING=1").unwrap();
        let k = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"STOPPING=1");
        // Without NOTIFY_SOCKET: silent no-op.
        let off = Notifier::new(None, None);
        assert!(!off.enabled());
        off.notify("READY=1").unwrap();
    }
}
