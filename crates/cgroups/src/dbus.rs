//! A minimal D-Bus client: what the systemd driver needs and nothing more (method calls with
//! replies, signals, SASL EXTERNAL). Our own rather than libdbus or an async crate, so that husk
//! stays one small static binary.
//!
//! Wire format (D-Bus specification, "Message Protocol"): little-endian; every value aligned to
//! its size from the start of the message; a header of fixed fields plus an array of
//! `(code, variant)` fields, padded to 8, then the body.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A D-Bus error: of the connection, or an error reply (`name` as
/// `org.freedesktop.systemd1.NoSuchUnit`).
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("D-Bus: {0}")]
    Protocol(String),
    #[error("{name}: {message}")]
    Reply { name: String, message: String },
}

type Result<T> = std::result::Result<T, DbusError>;

/// One D-Bus value; `Array` carries its element signature so that empty arrays marshal.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Entry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// The value's type signature.
    pub fn sig(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(vs) => format!("({})", vs.iter().map(Value::sig).collect::<String>()),
            Value::Entry(k, v) => format!("{{{}{}}}", k.sig(), v.sig()),
            Value::Variant(_) => "v".into(),
        }
    }

    /// `(name, value)` as a systemd property: `(sv)`.
    pub fn prop(name: &str, v: Value) -> Value {
        Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }
}

fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    while buf.len() % align != 0 {
        buf.push(0);
    }
}

/// Appends `v` to `buf`, aligned relative to the start of `buf`.
pub fn marshal(buf: &mut Vec<u8>, v: &Value) {
    pad(buf, align_of(v.sig().as_bytes()[0]));
    match v {
        Value::Byte(b) => buf.push(*b),
        Value::Bool(b) => buf.extend_from_slice(&u32::from(*b).to_le_bytes()),
        Value::I32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U32(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::I64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::U64(n) => buf.extend_from_slice(&n.to_le_bytes()),
        Value::Str(s) | Value::Path(s) => {
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Sig(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Array(elem, items) => {
            let len_at = buf.len();
            buf.extend_from_slice(&0u32.to_le_bytes());
            // The length counts from after the padding to the first element.
            pad(buf, align_of(elem.as_bytes()[0]));
            let start = buf.len();
            for item in items {
                marshal(buf, item);
            }
            let len = (buf.len() - start) as u32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Value::Struct(vs) => vs.iter().for_each(|x| marshal(buf, x)),
        Value::Entry(k, val) => {
            marshal(buf, k);
            marshal(buf, val);
        }
        Value::Variant(inner) => {
            marshal(buf, &Value::Sig(inner.sig()));
            marshal(buf, inner);
        }
    }
}

/// Reads values of a signature from a message (alignment relative to `data`'s start).
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { data, pos }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| DbusError::Protocol("message truncated".into()))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn align(&mut self, a: usize) -> Result<()> {
        let p = self.pos.div_ceil(a) * a;
        self.take(p - self.pos).map(|_| ())
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn string(&mut self, len: usize) -> Result<String> {
        let s = self.take(len + 1)?;
        String::from_utf8(s[..len].to_vec()).map_err(|_| DbusError::Protocol("bad UTF-8".into()))
    }

    /// Every value of `sig` in order.
    pub fn read_all(&mut self, sig: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut rest = sig.as_bytes();
        while !rest.is_empty() {
            let (one, tail) = split_one(rest)?;
            out.push(self.read(one)?);
            rest = tail;
        }
        Ok(out)
    }

    /// One value of the single complete type `sig`.
    pub fn read(&mut self, sig: &[u8]) -> Result<Value> {
        self.align(align_of(sig[0]))?;
        Ok(match sig[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b'x' | b't' => {
                let n = u64::from_le_bytes(self.take(8)?.try_into().unwrap());
                if sig[0] == b'x' {
                    Value::I64(n as i64)
                } else {
                    Value::U64(n)
                }
            }
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.string(len)?;
                if sig[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.string(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let s = self.string(len)?;
                let (one, _) = split_one(s.as_bytes())?;
                Value::Variant(Box::new(self.read(one)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(align_of(elem[0]))?;
                let end = self.pos + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.read(elem)?);
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' => {
                let inner = &sig[1..sig.len() - 1];
                Value::Struct(self.read_all(std::str::from_utf8(inner).unwrap_or(""))?)
            }
            b'{' => {
                let inner = std::str::from_utf8(&sig[1..sig.len() - 1]).unwrap_or("");
                let mut kv = self.read_all(inner)?.into_iter();
                match (kv.next(), kv.next()) {
                    (Some(k), Some(v)) => Value::Entry(Box::new(k), Box::new(v)),
                    _ => return Err(DbusError::Protocol("bad dict entry".into())),
                }
            }
            c => {
                return Err(DbusError::Protocol(format!(
                    "type {:?} unsupported",
                    c as char
                )))
            }
        })
    }
}

/// Splits the first complete type off a signature.
fn split_one(sig: &[u8]) -> Result<(&[u8], &[u8])> {
    let bad = || DbusError::Protocol(format!("bad signature {:?}", String::from_utf8_lossy(sig)));
    let mut i = 0;
    while sig.get(i) == Some(&b'a') {
        i += 1;
    }
    match sig.get(i) {
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut depth = 0;
            for (j, &c) in sig.iter().enumerate().skip(i) {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(sig.split_at(j + 1));
                    }
                }
            }
            Err(bad())
        }
        Some(_) => Ok(sig.split_at(i + 1)),
        None => Err(bad()),
    }
}

/// A received message: its type, header fields of interest and body.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// Builds a method call message.
pub fn method_call(
    serial: u32,
    dest: Option<&str>,
    path: &str,
    iface: &str,
    member: &str,
    args: &[Value],
) -> Vec<u8> {
    let mut body = Vec::new();
    for a in args {
        marshal(&mut body, a);
    }
    let sig: String = args.iter().map(Value::sig).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::Str(iface.into())),
        field(3, Value::Str(member.into())),
    ];
    if let Some(d) = dest {
        fields.push(field(6, Value::Str(d.into())));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut msg = vec![b'l', METHOD_CALL, 0, 1];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    marshal(&mut msg, &Value::Array("(yv)".into(), fields));
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    msg
}

/// Parses one complete message (as returned by `message_len`).
pub fn parse(data: &[u8]) -> Result<Message> {
    if data.len() < 16 || data[0] != b'l' {
        return Err(DbusError::Protocol("not a little-endian message".into()));
    }
    let body_len = u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize;
    let mut r = Reader::new(data, 8);
    let serial = r.u32()?;
    let Value::Array(_, fields) = r.read(b"a(yv)")? else {
        unreachable!()
    };
    r.align(8)?;
    let body_start = r.pos;
    let mut m = Message {
        kind: data[1],
        serial,
        reply_serial: None,
        path: None,
        interface: None,
        member: None,
        error_name: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(mut kv) = f else { continue };
        let (Some(Value::Variant(v)), Some(Value::Byte(code))) = (kv.pop(), kv.pop()) else {
            continue;
        };
        let s = v.as_str().map(str::to_owned);
        match code {
            1 => m.path = s,
            2 => m.interface = s,
            3 => m.member = s,
            4 => m.error_name = s,
            5 => m.reply_serial = v.as_u32(),
            8 => sig = s.unwrap_or_default(),
            _ => {}
        }
    }
    let body = data
        .get(body_start..body_start + body_len)
        .ok_or_else(|| DbusError::Protocol("body truncated".into()))?;
    // The body's alignment starts at its own beginning, which is 8-aligned in the message.
    m.body = Reader::new(body, 0).read_all(&sig)?;
    Ok(m)
}

/// The total length of the message whose first 16 bytes are `head`.
fn message_len(head: &[u8; 16]) -> usize {
    let body = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
    let fields = u32::from_le_bytes(head[12..16].try_into().unwrap()) as usize;
    (16 + fields).div_ceil(8) * 8 + body
}

/// The caller's real uid as the parent user namespace sees it (`/proc/self/uid_map`): the uid
/// a bus or systemd sees on our socket. Outside any user namespace, the uid itself.
pub fn host_uid() -> u32 {
    let uid = crate::sys::getuid();
    std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|m| outside_uid(&m, uid))
        .unwrap_or(uid)
}

/// `uid` mapped through a `uid_map` text (`inside outside count` lines).
pub fn outside_uid(map: &str, uid: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let mut f = l.split_whitespace().map(|x| x.parse::<u64>().ok());
        let (inside, outside, count) = (f.next()??, f.next()??, f.next()??);
        let uid = u64::from(uid);
        (inside <= uid && uid < inside + count)
            .then(|| u32::try_from(outside + (uid - inside)).ok())
            .flatten()
    })
}

/// A connection to a bus or to a peer (systemd's private socket).
pub struct Conn {
    stream: BufReader<UnixStream>,
    serial: u32,
    /// Messages that arrived while waiting for something else (signals before a reply).
    queued: Vec<Message>,
    /// Whether this is a bus (needs Hello and destinations) rather than a direct peer.
    bus: bool,
}

impl Conn {
    /// Connects to `path`, authenticates as our uid (SASL EXTERNAL) and, on a bus, says Hello.
    pub fn connect(path: &Path, bus: bool, timeout: Duration) -> Result<Conn> {
        let ctx = |e| DbusError::Io(format!("connecting to {}", path.display()), e);
        let s = UnixStream::connect(path).map_err(ctx)?;
        s.set_read_timeout(Some(timeout)).map_err(ctx)?;
        s.set_write_timeout(Some(timeout)).map_err(ctx)?;
        let mut stream = BufReader::new(s);
        // The bus checks the claimed uid against the socket's peer credentials, which it sees
        // in its own (the initial) user namespace: inside a rootless engine's namespace, where
        // we are uid 0, that is the user's own uid.
        let uid = host_uid();
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let auth = format!("\0AUTH EXTERNAL {hex}\r\n");
        let io = |e| DbusError::Io("authenticating".into(), e);
        stream.get_mut().write_all(auth.as_bytes()).map_err(io)?;
        let mut line = String::new();
        stream.read_line(&mut line).map_err(io)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Protocol(format!(
                "authentication refused: {:?}",
                line.trim_end()
            )));
        }
        stream.get_mut().write_all(b"BEGIN\r\n").map_err(io)?;
        let mut c = Conn {
            stream,
            serial: 0,
            queued: Vec::new(),
            bus,
        };
        if bus {
            c.call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )?;
        }
        Ok(c)
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.stream
            .get_mut()
            .write_all(msg)
            .map_err(|e| DbusError::Io("sending".into(), e))
    }

    /// Reads the next message from the socket.
    fn recv(&mut self) -> Result<Message> {
        let io = |e: std::io::Error| {
            let what = if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                "timed out waiting for a reply"
            } else {
                "receiving"
            };
            DbusError::Io(what.into(), e)
        };
        let mut head = [0u8; 16];
        self.stream.read_exact(&mut head).map_err(io)?;
        let len = message_len(&head);
        if len > 128 << 20 {
            return Err(DbusError::Protocol(format!("message of {len} bytes")));
        }
        let mut data = head.to_vec();
        data.resize(len, 0);
        self.stream.read_exact(&mut data[16..]).map_err(io)?;
        parse(&data)
    }

    /// Calls a method and returns its reply's body; an error reply becomes `DbusError::Reply`.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Vec<Value>> {
        self.serial += 1;
        let serial = self.serial;
        let dest = self.bus.then_some(dest);
        self.send(&method_call(serial, dest, path, iface, member, args))?;
        loop {
            let m = self.recv()?;
            match (m.kind, m.reply_serial) {
                (METHOD_RETURN, Some(s)) if s == serial => return Ok(m.body),
                (ERROR, Some(s)) if s == serial => {
                    return Err(DbusError::Reply {
                        name: m.error_name.unwrap_or_default(),
                        message: m.body.first().and_then(Value::as_str).unwrap_or("").into(),
                    })
                }
                (SIGNAL, _) => self.queued.push(m),
                _ => {}
            }
        }
    }

    /// Waits for a signal for which `want` returns `Some`, looking at queued ones first.
    pub fn wait_signal<T>(&mut self, mut want: impl FnMut(&Message) -> Option<T>) -> Result<T> {
        for m in std::mem::take(&mut self.queued) {
            if let Some(t) = want(&m) {
                return Ok(t);
            }
        }
        loop {
            let m = self.recv()?;
            if m.kind == SIGNAL {
                if let Some(t) = want(&m) {
                    return Ok(t);
                }
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Tells the peer at once that we are gone, even while a forked child still holds a
        // copy of the fd: without it, systemd 252 left calls on the next fresh connection to
        // a user manager's private socket unanswered (seen in the systemd lane).
        let _ = self.stream.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_with_alignment() {
        let mut b = vec![1u8]; // one byte in: a u32 pads to 4
        marshal(&mut b, &Value::U32(0x0102_0304));
        assert_eq!(b, [1, 0, 0, 0, 4, 3, 2, 1]);
        let mut b = Vec::new();
        marshal(&mut b, &Value::Str("ab".into()));
        assert_eq!(b, [2, 0, 0, 0, b'a', b'b', 0]);
        // a(sv) with one property: array length excludes the padding to the struct's 8.
        let mut b = Vec::new();
        marshal(
            &mut b,
            &Value::Array("(sv)".into(), vec![Value::prop("D", Value::Bool(true))]),
        );
        assert_eq!(
            b,
            [
                16, 0, 0, 0, 0, 0, 0, 0, // length 16, pad to 8
                1, 0, 0, 0, b'D', 0, // "D"
                1, b'b', 0, // signature "b"
                0, 0, 0, // pad to 4
                1, 0, 0, 0 // true
            ]
        );
        // An empty array of 8-aligned elements still pads.
        let mut b = Vec::new();
        marshal(&mut b, &Value::Array("(sa(sv))".into(), vec![]));
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Value::Array("(sv)".into(), vec![]).sig() + &Value::Array("u".into(), vec![]).sig(),
            "a(sv)au"
        );
    }

    #[test]
    fn a_message_round_trips() {
        let args = [
            Value::Str("husk-x.scope".into()),
            Value::Str("replace".into()),
            Value::Array(
                "(sv)".into(),
                vec![
                    Value::prop("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                    Value::prop("MemoryMax", Value::U64(1 << 25)),
                    Value::prop(
                        "AllowedCPUs",
                        Value::Array("y".into(), vec![Value::Byte(3)]),
                    ),
                ],
            ),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let msg = method_call(
            7,
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            &args,
        );
        let mut head = [0u8; 16];
        head.copy_from_slice(&msg[..16]);
        assert_eq!(message_len(&head), msg.len());
        let m = parse(&msg).unwrap();
        assert_eq!(m.kind, METHOD_CALL);
        assert_eq!(m.serial, 7);
        assert_eq!(m.member.as_deref(), Some("StartTransientUnit"));
        assert_eq!(m.body, args);
    }

    #[test]
    fn uids_map_to_the_parent_namespace() {
        // No namespace: the identity map of the initial namespace.
        assert_eq!(
            outside_uid("         0          0 4294967295\n", 1001),
            Some(1001)
        );
        // A rootless engine's namespace: root is the user, the rest its subordinate range.
        let map = "0 1001 1\n1 100000 65536\n";
        assert_eq!(outside_uid(map, 0), Some(1001));
        assert_eq!(outside_uid(map, 1), Some(100000));
        assert_eq!(outside_uid(map, 65536), Some(165535));
        assert_eq!(outside_uid(map, 65537), None);
        assert_eq!(outside_uid("", 0), None);
    }

    #[test]
    fn splits_signatures() {
        assert_eq!(split_one(b"a(sv)s").unwrap(), (&b"a(sv)"[..], &b"s"[..]));
        assert_eq!(split_one(b"a{sv}").unwrap().0, b"a{sv}");
        assert_eq!(split_one(b"uoss").unwrap(), (&b"u"[..], &b"oss"[..]));
        assert!(split_one(b"(s").is_err());
    }
}
