//! A minimal RESP2 client: command encoding, an incremental reply parser,
//! a blocking connection that can report the kernel's receive timestamp of
//! each reply (`SO_TIMESTAMPNS`), and an async request helper for the
//! many-client drivers. Small and allocation-light, so the client side costs
//! little next to the server it measures.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A parsed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` (None for `$-1`)
    Bulk(Option<Vec<u8>>),
    /// `*n` (None for `*-1`)
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The integer value of `:n` or of a decimal bulk/simple string.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Simple(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The items of an array reply.
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(Some(v)) => v,
            _ => &[],
        }
    }

    /// The reply, or an error naming `what` for an error reply.
    pub fn ok(self, what: &str) -> io::Result<Value> {
        match self {
            Value::Error(e) => Err(io::Error::other(format!("{what}: {e}"))),
            v => Ok(v),
        }
    }
}

/// Appends `*n $len arg ...` for one command.
pub fn encode_into(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One encoded command.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    encode_into(&mut v, args);
    v
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let pos = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..pos], at + pos + 2))
}

fn int_of(b: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::other(format!("bad RESP integer {:?}", String::from_utf8_lossy(b)))
        })
}

/// The offset after the complete reply at `at`, or `None` when incomplete
/// (no allocation: cheap to retry as bytes arrive).
pub fn skip(buf: &[u8], at: usize) -> io::Result<Option<usize>> {
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match tag {
        b'+' | b'-' | b':' => Ok(Some(next)),
        b'$' => {
            let n = int_of(body)?;
            if n < 0 {
                return Ok(Some(next));
            }
            let end = next + n as usize + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' => {
            let n = int_of(body)?;
            let mut pos = next;
            for _ in 0..n.max(0) {
                match skip(buf, pos)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        other => Err(io::Error::other(format!(
            "unexpected RESP type byte {other:#x}"
        ))),
    }
}

/// Parses one reply at `at`: `Ok(None)` when incomplete, else the value and
/// the offset after it.
pub fn parse(buf: &[u8], at: usize) -> io::Result<Option<(Value, usize)>> {
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    Ok(Some(match tag {
        b'+' => (
            Value::Simple(String::from_utf8_lossy(body).into_owned()),
            next,
        ),
        b'-' => (
            Value::Error(String::from_utf8_lossy(body).into_owned()),
            next,
        ),
        b':' => (Value::Int(int_of(body)?), next),
        b'$' => {
            let n = int_of(body)?;
            if n < 0 {
                (Value::Bulk(None), next)
            } else {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                (Value::Bulk(Some(buf[next..end].to_vec())), end + 2)
            }
        }
        b'*' => {
            let n = int_of(body)?;
            if n < 0 {
                (Value::Array(None), next)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                let mut pos = next;
                for _ in 0..n {
                    match parse(buf, pos)? {
                        Some((v, p)) => {
                            items.push(v);
                            pos = p;
                        }
                        None => return Ok(None),
                    }
                }
                (Value::Array(Some(items)), pos)
            }
        }
        other => {
            return Err(io::Error::other(format!(
                "unexpected RESP type byte {other:#x}"
            )))
        }
    }))
}

/// A blocking connection with a read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    timestamps: bool,
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME, the clock of the
/// kernel's receive timestamps).
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

impl Conn {
    /// Connects to 127.0.0.1:`port` with TCP_NODELAY.
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1 << 16),
            start: 0,
            timestamps: false,
        })
    }

    /// Asks the kernel to stamp every received segment (SO_TIMESTAMPNS).
    pub fn enable_timestamps(&mut self) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: valid fd and option value.
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.timestamps = true;
        Ok(())
    }

    /// Sends raw encoded bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.send_raw(&encode(args))
    }

    /// Reads more bytes; returns the kernel receive timestamp (ns) when enabled.
    fn fill(&mut self) -> io::Result<Option<i64>> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.reserve(1 << 18);
        let room = self.buf.capacity() - old;
        let mut iov = libc::iovec {
            // SAFETY: `old` is within the allocation; the kernel writes at most `room` bytes.
            iov_base: unsafe { self.buf.as_mut_ptr().add(old) }.cast(),
            iov_len: room,
        };
        let mut cbuf = [0u64; 16];
        // SAFETY: zeroed msghdr is valid; pointers stay valid for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if self.timestamps {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        }
        let n = loop {
            // SAFETY: see above.
            let n = unsafe { libc::recvmsg(self.stream.as_raw_fd(), &mut msg, 0) };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        // SAFETY: the kernel initialized `n` bytes after `old`.
        unsafe { self.buf.set_len(old + n) };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        let mut stamp = None;
        if self.timestamps {
            // SAFETY: walking the control messages the kernel wrote.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET
                        && (*c).cmsg_type == libc::SCM_TIMESTAMPNS
                    {
                        let ts =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                        stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
        }
        Ok(stamp)
    }

    /// Reads one reply and the kernel timestamp of the segment that completed it.
    pub fn read_stamped(&mut self) -> io::Result<(Value, Option<i64>)> {
        let mut stamp = None;
        loop {
            if skip(&self.buf, self.start)?.is_some() {
                if let Some((v, next)) = parse(&self.buf, self.start)? {
                    self.start = next;
                    return Ok((v, stamp));
                }
            }
            if let Some(s) = self.fill()? {
                stamp = Some(s);
            }
        }
    }

    /// Reads one reply.
    pub fn read(&mut self) -> io::Result<Value> {
        self.read_stamped().map(|(v, _)| v)
    }

    /// Sends one command and reads its reply (error replies are values).
    pub fn request(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        self.send(args)?;
        self.read()
    }

    /// Like [`Conn::request`], with error replies turned into errors.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        let what = String::from_utf8_lossy(args[0]).into_owned();
        self.request(args)?.ok(&what)
    }
}

/// Async request/reply on a tokio stream (one request in flight).
pub async fn request_async(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    cmd: &[u8],
    replies: usize,
) -> io::Result<Vec<Value>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(cmd).await?;
    buf.clear();
    let mut out = Vec::with_capacity(replies);
    let mut pos = 0;
    let mut chunk = [0u8; 16384];
    while out.len() < replies {
        let complete = match skip(buf, pos)? {
            Some(_) => parse(buf, pos)?,
            None => None,
        };
        match complete {
            Some((v, next)) => {
                out.push(v);
                pos = next;
            }
            None => {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_and_partial() {
        let b = b"*3\r\n:1\r\n$3\r\nabc\r\n*-1\r\n";
        let (v, n) = parse(b, 0).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert_eq!(v.items()[1], Value::Bulk(Some(b"abc".to_vec())));
        assert_eq!(v.items()[2], Value::Array(None));
        for cut in 0..b.len() {
            assert!(parse(&b[..cut], 0).unwrap().is_none());
            assert!(skip(&b[..cut], 0).unwrap().is_none());
        }
        assert_eq!(skip(b, 0).unwrap(), Some(b.len()));
        assert_eq!(encode(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
    }
}
