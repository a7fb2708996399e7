//! Encoding replies in RESP2, or RESP3 for a connection that asked with `HELLO 3`: the same
//! calls write `$-1\r\n` or `_\r\n` for a null, a flat array or `%N` for a map. No I/O.

/// The reply protocol of one connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

/// The replies of one connection, appended to its output buffer.
pub struct Reply<'a> {
    pub out: &'a mut Vec<u8>,
    pub protocol: Protocol,
}

impl Reply<'_> {
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// `+text`; `text` must not hold CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// `-text`: the first word is the error's code (`ERR`, `NOTMOST`, …).
    pub fn error(&mut self, text: &str) {
        self.line(b'-', text.as_bytes());
    }

    pub fn int(&mut self, n: i64) {
        self.line(b':', itoa::Buffer::new().format(n).as_bytes());
    }

    pub fn bulk(&mut self, bytes: &[u8]) {
        self.line(b'$', itoa::Buffer::new().format(bytes.len()).as_bytes());
        self.out.extend_from_slice(bytes);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string, or null.
    pub fn bulk_or_null(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(bytes) => self.bulk(bytes),
            None => self.null(),
        }
    }

    pub fn null(&mut self) {
        match self.protocol {
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The header of an array of `n` elements (they follow).
    pub fn array(&mut self, n: usize) {
        self.line(b'*', itoa::Buffer::new().format(n).as_bytes());
    }

    /// The header of a map of `n` pairs (keys and values follow, alternating): a flat array
    /// of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.protocol {
            Protocol::Resp2 => self.array(2 * n),
            Protocol::Resp3 => self.line(b'%', itoa::Buffer::new().format(n).as_bytes()),
        }
    }

    /// A verbatim text (INFO): a bulk string in RESP2, `=N\r\ntxt:…` in RESP3.
    pub fn text(&mut self, text: &str) {
        match self.protocol {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                let len = text.len() + 4;
                self.line(b'=', itoa::Buffer::new().format(len).as_bytes());
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn line(&mut self, kind: u8, text: &[u8]) {
        self.out.push(kind);
        // A CR or LF inside would end the line early: the client would read garbage after it.
        self.out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(protocol: Protocol, f: impl FnOnce(&mut Reply<'_>)) -> String {
        let mut out = Vec::new();
        f(&mut Reply {
            out: &mut out,
            protocol,
        });
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn each_kind_encodes_as_redis_does() {
        let all = |r: &mut Reply<'_>| {
            r.ok();
            r.error("ERR bad\r\nthing");
            r.int(-3);
            r.bulk(b"a\r\nb");
            r.null();
            r.map(1);
            r.text("x");
        };
        assert_eq!(
            encoded(Protocol::Resp2, all),
            "+OK\r\n-ERR bad  thing\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n*2\r\n$1\r\nx\r\n"
        );
        assert_eq!(
            encoded(Protocol::Resp3, all),
            "+OK\r\n-ERR bad  thing\r\n:-3\r\n$4\r\na\r\nb\r\n_\r\n%1\r\n=5\r\ntxt:x\r\n"
        );
    }
}
