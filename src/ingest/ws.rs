//! A bounded, allocation-free websocket client codec (RFC 6455) over any non-blocking `Read + Write` stream.
//!
//! The HTTP upgrade uses tungstenite's key generation and accept-key derivation; after it, frames are decoded in
//! place from one reused read buffer per connection, so a text frame reaches the parser as a slice of that buffer
//! (fragmented messages are assembled in a second reused buffer). Server frames are unmasked; every frame we send
//! (pong, close, SUBSCRIBE text) is masked, as the RFC requires of clients.
//!
//! Contracts:
//! - [`WsConn::read`] reads until the stream says `WouldBlock` (or `max_reads` reads, to stay fair to the other
//!   connection), then decodes every complete frame; it never blocks.
//! - Pings are answered with a pong carrying the same payload, queued in the write buffer and flushed at once.
//! - Limits: a frame or reassembled message larger than `max_frame` bytes is a [`WsError::FrameTooLarge`]; control
//!   frames over 125 bytes, a masked server frame, an unknown opcode or a bad continuation are [`WsError::Protocol`].
//!   The write buffer is bounded too ([`WsError::WriteBufferFull`]).

use std::io::{ErrorKind, Write};

pub(crate) use crate::ingest::transport::{ReadStamp, StampedRead};

/// Websocket errors, one per kind of failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsError {
    /// Transport error.
    #[error("io: {0}")]
    Io(std::io::Error),
    /// The peer closed the TCP connection.
    #[error("connection closed by peer")]
    Eof,
    /// The upgrade response was not a valid 101.
    #[error("websocket upgrade refused: {0}")]
    Handshake(String),
    /// A frame broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A frame or message larger than the limit.
    #[error("frame of {0} bytes exceeds the limit")]
    FrameTooLarge(u64),
    /// The peer sent a close frame.
    #[error("closed by peer (code {0})")]
    Closed(u16),
    /// Too much queued output.
    #[error("write buffer full")]
    WriteBufferFull,
}

// Not `#[from]`: that would make the cause a `source()` too, and it is already in the message (printed twice).
impl From<std::io::Error> for WsError {
    fn from(e: std::io::Error) -> Self {
        WsError::Io(e)
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsState {
    /// Upgrade request sent (or queued), waiting for the 101.
    Upgrading,
    /// Frames flow.
    Open,
    /// Our close frame is queued: frames the peer sent before it saw it are still read, until its close reply.
    Closing,
    /// Closed.
    Closed,
}

/// What one `read` call saw besides text messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReadStats {
    /// Text messages delivered.
    pub texts: u32,
    /// Pings answered.
    pub pings: u32,
    /// Bytes read from the stream.
    pub bytes: usize,
    /// `now()` right after the last read that returned data (0 when nothing was read).
    pub read_done_ns: u64,
    /// True when the stream said `WouldBlock` (or EOF): everything that had arrived was read. False when the read
    /// stopped at `max_reads` (or a TLS record still incomplete after its reads): bytes may be waiting, and since
    /// mio's readiness is edge-triggered no new event comes for them, so the caller must read again.
    pub drained: bool,
}

/// Most bytes queued for writing.
pub(crate) const WRITE_BUFFER_MAX: usize = 1 << 20;

/// A connection's buffers: the read buffer (a frame of `max_frame` bytes and its header, plus 64 KiB to read
/// into), the reassembly buffer of fragmented messages and the write buffer. The network thread keeps them with the
/// connection-table slot ([`WsConn::into_buffers`]) and hands them to the slot's next connection
/// ([`WsConn::with_buffers`]), so a reconnect or a rotation allocates (and zeroes) nothing large.
pub(crate) struct WsBuffers {
    rbuf: Vec<u8>,
    msg: Vec<u8>,
    wbuf: Vec<u8>,
}

impl WsBuffers {
    /// Buffers for frames of at most `max_frame` bytes (allocated here, once per slot).
    pub(crate) fn new(max_frame: usize) -> Self {
        WsBuffers {
            rbuf: vec![0; read_buffer_len(max_frame)],
            msg: Vec::with_capacity(max_frame),
            wbuf: Vec::with_capacity(64 << 10),
        }
    }

    /// Where the read buffer starts (tests: the successor reads into the same memory).
    #[cfg(test)]
    pub(crate) fn read_ptr(&self) -> *const u8 {
        self.rbuf.as_ptr()
    }
}

/// The read buffer's size for frames of at most `max_frame` bytes.
fn read_buffer_len(max_frame: usize) -> usize {
    max_frame + 16 + (64 << 10)
}

/// The client connection.
pub(crate) struct WsConn<S> {
    stream: S,
    rbuf: Vec<u8>,
    rlen: usize,
    msg: Vec<u8>,
    in_fragment: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    key: String,
    state: WsState,
    max_frame: usize,
    seed: u32,
}

impl<S: StampedRead + Write> WsConn<S> {
    /// Wraps a connected (possibly still handshaking TLS) stream and queues the upgrade request for `path` on
    /// `host`, with new buffers (see [`WsConn::with_buffers`]).
    #[cfg(test)]
    pub(crate) fn new(stream: S, host: &str, path: &str, max_frame: usize, seed: u32) -> Self {
        Self::with_buffers(stream, host, path, max_frame, seed, WsBuffers::new(max_frame))
    }

    /// As [`WsConn::new`], reading and writing in `bufs` (a closed connection's, from [`WsConn::into_buffers`]):
    /// nothing large is allocated, and the read buffer is not zeroed again (only the bytes read are ever looked at).
    pub(crate) fn with_buffers(
        stream: S,
        host: &str,
        path: &str,
        max_frame: usize,
        seed: u32,
        bufs: WsBuffers,
    ) -> Self {
        let WsBuffers { mut rbuf, mut msg, mut wbuf } = bufs;
        if rbuf.len() != read_buffer_len(max_frame) {
            rbuf = vec![0; read_buffer_len(max_frame)];
        }
        msg.clear();
        msg.reserve(max_frame);
        wbuf.clear();
        let key = tungstenite::handshake::client::generate_key();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: rusto/{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        wbuf.extend_from_slice(req.as_bytes());
        WsConn {
            stream,
            rbuf,
            rlen: 0,
            msg,
            in_fragment: false,
            wbuf,
            wpos: 0,
            key,
            state: WsState::Upgrading,
            max_frame,
            seed: seed | 1,
        }
    }

    /// Ends the connection and gives back its buffers for the next one (the stream is dropped, which closes it).
    pub(crate) fn into_buffers(self) -> WsBuffers {
        WsBuffers { rbuf: self.rbuf, msg: self.msg, wbuf: self.wbuf }
    }

    /// Replaces the masking-key seed.
    pub(crate) fn reseed(&mut self, seed: u32) {
        self.seed = seed | 1;
    }

    /// State.
    pub(crate) fn state(&self) -> WsState {
        self.state
    }

    /// The stream.
    pub(crate) fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// True while output is queued.
    pub(crate) fn wants_write(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Writes queued output until done or `WouldBlock`.
    pub(crate) fn flush(&mut self) -> Result<(), WsError> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(WsError::Eof),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        match self.stream.flush() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masking keys need not be cryptographic for a client talking to a known server.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x.to_le_bytes()
    }

    /// Queues a masked frame.
    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), WsError> {
        if self.wbuf.len() + payload.len() + 14 > WRITE_BUFFER_MAX {
            return Err(WsError::WriteBufferFull);
        }
        if self.wpos > 0 && self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        let mask = self.next_mask();
        self.wbuf.push(0x80 | opcode);
        let n = payload.len();
        if n < 126 {
            self.wbuf.push(0x80 | n as u8);
        } else if n <= 0xffff {
            self.wbuf.push(0x80 | 126);
            self.wbuf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.wbuf.push(0x80 | 127);
            self.wbuf.extend_from_slice(&(n as u64).to_be_bytes());
        }
        self.wbuf.extend_from_slice(&mask);
        self.wbuf.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        Ok(())
    }

    /// Queues a text message (e.g. a SUBSCRIBE request) and tries to send it.
    pub(crate) fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        self.queue_frame(0x1, text.as_bytes())?;
        self.flush()
    }

    /// Queues a close frame and starts the closing handshake ([`WsState::Closing`]): reads go on delivering what
    /// the peer sent before it saw the close, until its close reply ends the connection ([`WsError::Closed`]). A
    /// connection that is not open is simply marked closed.
    pub(crate) fn close(&mut self, code: u16) -> Result<(), WsError> {
        if self.state == WsState::Open {
            self.queue_frame(0x8, &code.to_be_bytes())?;
            self.state = WsState::Closing;
            // Ignoring the result is right: a failed flush shows up as the read error that ends the handshake, and
            // a caller that drops the stream right away does not wait for it.
            let _ = self.flush();
        } else {
            self.state = WsState::Closed;
        }
        Ok(())
    }

    /// Reads what is available and delivers each complete text message to `on_text` (tests; the network loop uses
    /// [`WsConn::read_stamped`]).
    #[cfg(test)]
    pub(crate) fn read(&mut self, max_reads: usize, mut on_text: impl FnMut(&[u8])) -> Result<ReadStats, WsError> {
        self.read_stamped(max_reads, &|| 0, &mut 0, |_| {}, |t, _| on_text(t))
    }

    /// As [`WsConn::read`], stamping with `now`: `on_read` gets the stamps of every read that returned data, and
    /// each text comes with the stamps of the read that completed it. `ReadStats::read_done_ns` is the last socket
    /// read's stamp; `clock_reads` counts the `now()` calls.
    pub(crate) fn read_stamped(
        &mut self,
        max_reads: usize,
        now: &impl Fn() -> u64,
        clock_reads: &mut u64,
        mut on_read: impl FnMut(ReadStamp),
        mut on_text: impl FnMut(&[u8], ReadStamp),
    ) -> Result<ReadStats, WsError> {
        let mut st = ReadStats::default();
        let mut eof = false;
        let mut stamp = ReadStamp::default();
        // Decode after every read that brought data, so frames reach the parser before the next (possibly
        // WouldBlock) read syscall; a full buffer is decoded before reading more.
        for _ in 0..max_reads.max(1) {
            let got = if self.rlen == self.rbuf.len() {
                false
            } else {
                match self.stream.read_stamped(&mut self.rbuf[self.rlen..], now, clock_reads) {
                    Ok((0, _)) => {
                        eof = true;
                        st.drained = true;
                        false
                    }
                    Ok((n, s)) => {
                        self.rlen += n;
                        st.bytes += n;
                        st.read_done_ns = s.socket_ns;
                        stamp = s;
                        on_read(s);
                        true
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        st.drained = true;
                        false
                    }
                    // Interrupted, or a TLS record not complete after its reads: read on (a read of `max_reads`).
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if self.state == WsState::Upgrading {
                self.finish_upgrade()?;
            }
            if matches!(self.state, WsState::Open | WsState::Closing) && self.rlen > 0 {
                self.decode(&mut st, &mut |t: &[u8]| on_text(t, stamp))?;
            }
            if !got {
                break;
            }
        }
        if self.wants_write() {
            self.flush()?;
        }
        if eof {
            return Err(WsError::Eof);
        }
        Ok(st)
    }

    fn finish_upgrade(&mut self) -> Result<(), WsError> {
        let Some(end) = self.rbuf[..self.rlen].windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.rlen > 16 << 10 {
                return Err(WsError::Handshake("response headers too large".into()));
            }
            return Ok(());
        };
        let head =
            std::str::from_utf8(&self.rbuf[..end]).map_err(|_| WsError::Handshake("non-UTF-8 headers".into()))?;
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or("");
        if !status.starts_with("HTTP/1.1 101") {
            return Err(WsError::Handshake(status.chars().take(80).collect()));
        }
        let want = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let ok = lines.any(|l| {
            let mut kv = l.splitn(2, ':');
            let k = kv.next().unwrap_or("").trim();
            let v = kv.next().unwrap_or("").trim();
            k.eq_ignore_ascii_case("sec-websocket-accept") && v == want
        });
        if !ok {
            return Err(WsError::Handshake("missing or wrong Sec-WebSocket-Accept".into()));
        }
        let used = end + 4;
        self.rbuf.copy_within(used..self.rlen, 0);
        self.rlen -= used;
        self.state = WsState::Open;
        Ok(())
    }

    fn decode(&mut self, st: &mut ReadStats, on_text: &mut impl FnMut(&[u8])) -> Result<(), WsError> {
        let mut pos = 0;
        while let Some(h) = Header::parse(&self.rbuf[pos..self.rlen], self.max_frame)? {
            let total = h.hdr + h.len;
            if self.rlen - pos < total {
                break;
            }
            let at = pos + h.hdr;
            match h.opcode {
                0x0..=0x2 => self.data_frame(h, at, st, on_text)?,
                0x8 => return Err(self.close_frame(h, at)),
                0x9 | 0xA => self.control_frame(h, at, st)?,
                _ => return Err(WsError::Protocol("unknown opcode")),
            }
            pos += total;
        }
        if pos > 0 {
            self.rbuf.copy_within(pos..self.rlen, 0);
            self.rlen -= pos;
        }
        Ok(())
    }

    /// A text, binary or continuation frame whose payload starts at `at`: a whole text message goes to `on_text`
    /// from the read buffer, fragments are assembled in `msg` first.
    #[inline]
    fn data_frame(
        &mut self,
        h: Header,
        at: usize,
        st: &mut ReadStats,
        on_text: &mut impl FnMut(&[u8]),
    ) -> Result<(), WsError> {
        if h.opcode != 0 && self.in_fragment {
            return Err(WsError::Protocol("new message inside a fragmented one"));
        }
        if h.opcode == 0 && !self.in_fragment {
            return Err(WsError::Protocol("continuation without a start"));
        }
        let payload = at..at + h.len;
        if h.fin && !self.in_fragment {
            if h.opcode == 0x1 {
                st.texts += 1;
                on_text(&self.rbuf[payload]);
            }
            return Ok(());
        }
        if h.opcode != 0 {
            self.msg.clear();
            self.in_fragment = true;
        }
        if self.msg.len() + h.len > self.max_frame {
            return Err(WsError::FrameTooLarge((self.msg.len() + h.len) as u64));
        }
        self.msg.extend_from_slice(&self.rbuf[payload]);
        if h.fin {
            self.in_fragment = false;
            st.texts += 1;
            on_text(&self.msg);
        }
        Ok(())
    }

    /// The peer's close frame: echoed (best effort; not when it answers ours) and the connection is closed.
    fn close_frame(&mut self, h: Header, at: usize) -> WsError {
        let code = if h.len >= 2 { u16::from_be_bytes([self.rbuf[at], self.rbuf[at + 1]]) } else { 1005 };
        if self.state == WsState::Open {
            // Ignoring both results is right: the connection ends with this frame whether or not the echo goes
            // out (the caller drops it on the error returned).
            let _ = self.queue_frame(0x8, &code.to_be_bytes());
            let _ = self.flush();
        }
        self.state = WsState::Closed;
        WsError::Closed(code)
    }

    /// A ping (answered with a pong of the same payload) or a pong (ignored).
    fn control_frame(&mut self, h: Header, at: usize, st: &mut ReadStats) -> Result<(), WsError> {
        if !h.fin || h.len > 125 {
            return Err(WsError::Protocol("bad control frame"));
        }
        if h.opcode == 0x9 {
            let mut p = [0u8; 125];
            p[..h.len].copy_from_slice(&self.rbuf[at..at + h.len]);
            self.queue_frame(0xA, &p[..h.len])?;
            st.pings += 1;
        }
        Ok(())
    }
}

/// A frame header read from the front of the read buffer.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    /// Header bytes.
    hdr: usize,
    /// Payload bytes.
    len: usize,
}

impl Header {
    /// The header at the start of `avail` (`None` while it is incomplete), checked against the protocol and the
    /// frame limit.
    #[inline]
    fn parse(avail: &[u8], max_frame: usize) -> Result<Option<Header>, WsError> {
        if avail.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (avail[0], avail[1]);
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 != 0 {
            return Err(WsError::Protocol("masked frame from server"));
        }
        let (len, hdr) = match b1 & 0x7f {
            126 if avail.len() < 4 => return Ok(None),
            126 => (u16::from_be_bytes([avail[2], avail[3]]) as u64, 4),
            127 if avail.len() < 10 => return Ok(None),
            127 => (u64::from_be_bytes(avail[2..10].try_into().unwrap_or([0xff; 8])), 10),
            n => (n as u64, 2),
        };
        if len > max_frame as u64 {
            return Err(WsError::FrameTooLarge(len));
        }
        Ok(Some(Header { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, hdr, len: len as usize }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::io::Read;

    /// A scripted non-blocking stream: reads come from `input` in the given chunks, then WouldBlock.
    struct Script {
        input: VecDeque<Vec<u8>>,
        written: Vec<u8>,
    }

    impl StampedRead for Script {}

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.input.front_mut() {
                None => Err(ErrorKind::WouldBlock.into()),
                Some(chunk) if chunk.is_empty() => {
                    self.input.pop_front();
                    Ok(0)
                }
                Some(chunk) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    chunk.drain(..n);
                    if chunk.is_empty() {
                        self.input.pop_front();
                    }
                    Ok(n)
                }
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            v.push(payload.len() as u8);
        } else {
            v.push(126);
            v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    fn open(chunks: Vec<Vec<u8>>) -> WsConn<Script> {
        let mut c = WsConn::new(
            Script { input: VecDeque::new(), written: vec![] },
            "localhost",
            "/public/stream?streams=x",
            1 << 16,
            7,
        );
        let accept = tungstenite::handshake::derive_accept_key(c.key.as_bytes());
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let mut first = resp.into_bytes();
        let mut rest = chunks.into_iter();
        if let Some(c0) = rest.next() {
            first.extend(c0);
        }
        c.stream.input.push_back(first);
        c.stream.input.extend(rest);
        c
    }

    #[test]
    fn upgrade_then_text_split_across_reads_and_fragments() {
        let msg = br#"{"e":"trade"}"#;
        let f = frame(1, true, msg);
        let (a, b) = f.split_at(5);
        let mut c =
            open(vec![a.to_vec(), b.to_vec(), frame(1, false, b"ab"), frame(0, false, b"cd"), frame(0, true, b"ef")]);
        let mut got: Vec<Vec<u8>> = vec![];
        let st = c.read(16, |t| got.push(t.to_vec())).unwrap();
        assert_eq!(c.state(), WsState::Open);
        assert_eq!(got, vec![msg.to_vec(), b"abcdef".to_vec()]);
        assert_eq!(st.texts, 2);
        assert!(c.stream.written.starts_with(b"GET /public/stream?streams=x HTTP/1.1\r\n"));
    }

    #[test]
    fn the_next_connection_reads_into_the_buffers_of_the_last() {
        let mut c = open(vec![frame(1, true, b"first")]);
        let mut got = Vec::new();
        c.read(4, |t| got.push(t.to_vec())).unwrap();
        let bufs = c.into_buffers();
        let at = bufs.read_ptr();
        let mut next = WsConn::with_buffers(
            Script { input: VecDeque::new(), written: vec![] },
            "localhost",
            "/public/stream?streams=x",
            1 << 16,
            7,
            bufs,
        );
        assert_eq!(next.rbuf.as_ptr(), at, "same read buffer");
        assert_eq!((next.rlen, next.state()), (0, WsState::Upgrading), "a fresh connection all the same");
        assert!(next.stream.written.is_empty() && next.wbuf.starts_with(b"GET /public/stream?streams=x HTTP/1.1\r\n"));
        next.flush().unwrap();
        assert_eq!(got, vec![b"first".to_vec()]);
    }

    #[test]
    fn ping_is_answered_with_a_masked_pong() {
        let mut c = open(vec![frame(9, true, b"hi")]);
        c.flush().unwrap();
        let before = c.stream.written.len();
        let st = c.read(4, |_| {}).unwrap();
        assert_eq!(st.pings, 1);
        let w = &c.stream.written[before..];
        assert_eq!(w[0], 0x8A);
        assert_eq!(w[1], 0x80 | 2);
        let mask = &w[2..6];
        assert_eq!([w[6] ^ mask[0], w[7] ^ mask[1]], *b"hi");
    }

    #[test]
    fn after_our_close_frames_are_still_read_until_the_peer_answers() {
        let mut c = open(vec![]);
        c.read(4, |_| {}).unwrap();
        assert_eq!(c.state(), WsState::Open);
        c.close(1000).unwrap();
        assert_eq!(c.state(), WsState::Closing);
        let sent = c.stream.written.len();
        c.stream.input.push_back(frame(1, true, b"late"));
        c.stream.input.push_back(frame(8, true, &1000u16.to_be_bytes()));
        let mut got = Vec::new();
        let r = c.read(4, |t| got.push(t.to_vec()));
        assert!(matches!(r, Err(WsError::Closed(1000))), "{r:?}");
        assert_eq!(got, vec![b"late".to_vec()], "what the peer sent before our close is delivered");
        assert_eq!(c.stream.written.len(), sent, "the peer's close answers ours: no echo");
        assert_eq!(c.state(), WsState::Closed);
    }

    #[test]
    fn limits_and_protocol_errors() {
        let mut c = open(vec![frame(1, true, &[b'x'; 200])]);
        c.max_frame = 100;
        assert!(matches!(c.read(4, |_| {}), Err(WsError::FrameTooLarge(200))));
        let mut c = open(vec![vec![0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0]]);
        assert!(matches!(c.read(4, |_| {}), Err(WsError::Protocol(_))));
        let mut c = open(vec![frame(0, true, b"x")]);
        assert!(matches!(c.read(4, |_| {}), Err(WsError::Protocol(_))));
        let mut c = open(vec![frame(8, true, &1000u16.to_be_bytes())]);
        assert!(matches!(c.read(4, |_| {}), Err(WsError::Closed(1000))));
        let mut c = open(vec![frame(1, true, b"x"), vec![]]);
        assert!(matches!(c.read(4, |_| {}), Err(WsError::Eof)));
        let mut bad = WsConn::new(
            Script { input: VecDeque::from(vec![b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec()]), written: vec![] },
            "h",
            "/",
            1024,
            1,
        );
        assert!(matches!(bad.read(4, |_| {}), Err(WsError::Handshake(_))));
    }
}
