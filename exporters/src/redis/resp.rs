//! A minimal RESP2 client: enough to send `INFO`, `CONFIG GET`, `SLOWLOG` and `LATENCY`
//! commands and read their replies, over TCP or a unix socket.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest bulk string accepted (INFO and CONFIG replies are a few KiB).
const MAX_BULK: usize = 64 << 20;
/// Largest array accepted.
const MAX_ARRAY: usize = 1 << 20;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 8;

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Nil,
    Int(i64),
    Bytes(Vec<u8>),
    Error(String),
    Array(Vec<Value>),
}

impl Value {
    /// The reply as text (simple and bulk strings, integers).
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        }
    }
}

pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection.
pub(crate) struct Connection {
    io: BufReader<Box<dyn Stream>>,
}

fn protocol(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

impl Connection {
    pub(crate) fn new(stream: Box<dyn Stream>) -> Connection {
        Connection { io: BufReader::new(stream) }
    }

    /// Sends one command and reads its reply; a server error is returned as `Value::Error`.
    pub(crate) async fn command(&mut self, args: &[&str]) -> std::io::Result<Value> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.io.get_mut().write_all(&out).await?;
        self.io.get_mut().flush().await?;
        read_value(&mut self.io, 0).await
    }
}

async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = (&mut *reader).take(MAX_BULK as u64).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(protocol("reply line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| protocol("reply line is not UTF-8"))
}

/// Reads one reply.
pub(crate) async fn read_value<R: AsyncBufRead + Unpin + Send>(reader: &mut R, depth: usize) -> std::io::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(protocol("reply nested too deeply"));
    }
    let line = read_line(reader).await?;
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| protocol("empty reply line"))?;
    match kind {
        "+" => Ok(Value::Bytes(rest.as_bytes().to_vec())),
        "-" => Ok(Value::Error(rest.to_string())),
        ":" => rest.parse().map(Value::Int).map_err(|_| protocol(format!("bad integer {rest:?}"))),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| protocol(format!("bad bulk length {rest:?}")))?;
            if len < 0 {
                return Ok(Value::Nil);
            }
            let len = len as usize;
            if len > MAX_BULK {
                return Err(protocol(format!("bulk string of {len} bytes is too long")));
            }
            let mut buf = vec![0; len + 2];
            reader.read_exact(&mut buf).await?;
            if !buf.ends_with(b"\r\n") {
                return Err(protocol("bulk string without CRLF"));
            }
            buf.truncate(len);
            Ok(Value::Bytes(buf))
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| protocol(format!("bad array length {rest:?}")))?;
            if len < 0 {
                return Ok(Value::Nil);
            }
            let len = len as usize;
            if len > MAX_ARRAY {
                return Err(protocol(format!("array of {len} elements is too long")));
            }
            let mut items = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                items.push(Box::pin(read_value(reader, depth + 1)).await?);
            }
            Ok(Value::Array(items))
        }
        other => Err(protocol(format!("unknown reply type {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> std::io::Result<Value> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut reader = BufReader::new(input);
            read_value(&mut reader, 0).await
        })
    }

    fn check(input: &str, expected: Result<Value, &str>) {
        match (parse(input.as_bytes()), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{input:?}"),
            (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{input:?}: {err}"),
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn replies() {
        check("+OK\r\n", Ok(Value::Bytes(b"OK".to_vec())));
        check("-ERR nope\r\n", Ok(Value::Error("ERR nope".into())));
        check(":42\r\n", Ok(Value::Int(42)));
        check("$3\r\nabc\r\n", Ok(Value::Bytes(b"abc".to_vec())));
        check("$-1\r\n", Ok(Value::Nil));
        check("*2\r\n$1\r\na\r\n:1\r\n", Ok(Value::Array(vec![Value::Bytes(b"a".to_vec()), Value::Int(1)])));
        check("*0\r\n", Ok(Value::Array(vec![])));
        check("$5\r\nab\r\n", Err("eof"));
        check("$3\r\nabcd\r\n", Err("without CRLF"));
        check(":x\r\n", Err("bad integer"));
        check("?\r\n", Err("unknown reply type"));
        check("+OK\n", Err("without CRLF"));
        check("$999999999999\r\n", Err("too long"));
        check("*99999999\r\n", Err("too long"));
        check(&"*1\r\n".repeat(20), Err("nested too deeply"));
    }

    proptest::proptest! {
        #[test]
        fn no_panic_on_garbage(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = parse(&input);
        }

        #[test]
        fn no_panic_on_mutated_replies(cut in 0usize..40, byte in proptest::prelude::any::<u8>(), at in 0usize..40) {
            let mut input = b"*3\r\n$3\r\nfoo\r\n:12\r\n*1\r\n+OK\r\n".to_vec();
            if at < input.len() { input[at] = byte; }
            input.truncate(cut.min(input.len()));
            let _ = parse(&input);
        }
    }
}
