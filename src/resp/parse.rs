//! Framing of client commands: RESP2 multibulk (`*N\r\n$L\r\n…\r\n`, what every client library
//! sends) and inline commands (`PING\r\n`, as typed into telnet), both bounded: the argument
//! count, a bulk's length, an inline line's length. No I/O, no allocation but the caller's
//! argument list (ranges into the buffer; an inline command with quotes is unescaped into
//! owned arguments).

use std::ops::Range;

use crate::limits::{RESP_ARGS_MAX, RESP_INLINE_BYTES_MAX};

/// A header line (`*N` or `$L`) longer than this is not one.
const HEADER_LINE_BYTES_MAX: usize = 32;

/// Why the bytes are not a command; the connection answers `-ERR Protocol error: …` and
/// closes, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

/// One framed command.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// Its arguments are `ranges` of the buffer (pushed into the caller's list); `used` bytes.
    Ranges { used: usize },
    /// An inline command with quoted arguments, unescaped.
    Owned { args: Vec<Vec<u8>>, used: usize },
}

/// Frames the command at the start of `buf`: `Ok(None)` when it is not all here yet. An empty
/// command (`*0`, a blank line) frames with no arguments (the caller skips it).
pub fn frame(
    buf: &[u8],
    bulk_bytes_max: usize,
    ranges: &mut Vec<Range<usize>>,
) -> Result<Option<Framed>, ProtocolError> {
    ranges.clear();
    match buf.first() {
        None => Ok(None),
        Some(b'*') => multibulk(buf, bulk_bytes_max, ranges),
        Some(_) => inline(buf, ranges),
    }
}

fn multibulk(
    buf: &[u8],
    bulk_bytes_max: usize,
    ranges: &mut Vec<Range<usize>>,
) -> Result<Option<Framed>, ProtocolError> {
    const BAD_COUNT: ProtocolError = ProtocolError("invalid multibulk length");
    let Some((count, mut pos)) = header(buf, 0, BAD_COUNT)? else {
        return Ok(None);
    };
    if count <= 0 {
        return Ok(Some(Framed::Ranges { used: pos }));
    }
    if count as usize > RESP_ARGS_MAX {
        return Err(BAD_COUNT);
    }
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(ProtocolError("expected '$'")),
        }
        const BAD_LEN: ProtocolError = ProtocolError("invalid bulk length");
        let Some((len, start)) = header(buf, pos, BAD_LEN)? else {
            return Ok(None);
        };
        if len < 0 || len as usize > bulk_bytes_max {
            return Err(BAD_LEN);
        }
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError("a bulk string does not end with CRLF"));
        }
        ranges.push(start..end);
        pos = end + 2;
    }
    Ok(Some(Framed::Ranges { used: pos }))
}

/// The number after the type byte at `buf[at]`, up to CRLF, and where the next line starts.
fn header(
    buf: &[u8],
    at: usize,
    bad: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let line = &buf[at + 1..];
    let Some(cr) = line
        .iter()
        .take(HEADER_LINE_BYTES_MAX)
        .position(|&b| b == b'\r')
    else {
        return match line.len() >= HEADER_LINE_BYTES_MAX {
            true => Err(bad),
            false => Ok(None),
        };
    };
    match line.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(bad),
    }
    let number = std::str::from_utf8(&line[..cr])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(bad)?;
    Ok(Some((number, at + 1 + cr + 2)))
}

/// An inline command: words separated by spaces or tabs, up to LF (a CR before it is dropped);
/// `"…"` and `'…'` quote a word (with `\"`, `\\`, `\n`, `\r`, `\t`, `\xHH` in double quotes).
fn inline(buf: &[u8], ranges: &mut Vec<Range<usize>>) -> Result<Option<Framed>, ProtocolError> {
    let Some(lf) = buf
        .iter()
        .take(RESP_INLINE_BYTES_MAX)
        .position(|&b| b == b'\n')
    else {
        return match buf.len() >= RESP_INLINE_BYTES_MAX {
            true => Err(ProtocolError("too big inline request")),
            false => Ok(None),
        };
    };
    let used = lf + 1;
    let line = match buf[..lf].last() {
        Some(b'\r') => &buf[..lf - 1],
        _ => &buf[..lf],
    };
    if line.iter().any(|&b| b == b'"' || b == b'\'') {
        let args = unquote(line)?;
        if args.len() > RESP_ARGS_MAX {
            return Err(ProtocolError("invalid multibulk length"));
        }
        return Ok(Some(Framed::Owned { args, used }));
    }
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' || line[i] == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && line[i] != b' ' && line[i] != b'\t' {
            i += 1;
        }
        if ranges.len() == RESP_ARGS_MAX {
            return Err(ProtocolError("invalid multibulk length"));
        }
        ranges.push(start..i);
    }
    Ok(Some(Framed::Ranges { used }))
}

/// The words of an inline line with quotes, as redis-cli splits them.
fn unquote(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    const UNBALANCED: ProtocolError = ProtocolError("unbalanced quotes in request");
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' || line[i] == b'\t' {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        while i < line.len() && line[i] != b' ' && line[i] != b'\t' {
            let quote = line[i];
            if quote != b'"' && quote != b'\'' {
                word.push(quote);
                i += 1;
                continue;
            }
            i += 1;
            loop {
                let Some(&b) = line.get(i) else {
                    return Err(UNBALANCED);
                };
                i += 1;
                match b {
                    b if b == quote => break,
                    b'\\' if quote == b'"' => {
                        let (byte, len) = escape(&line[i..]).ok_or(UNBALANCED)?;
                        word.push(byte);
                        i += len;
                    }
                    b => word.push(b),
                }
            }
        }
        args.push(word);
    }
    Ok(args)
}

/// The byte an escape after `\` stands for, and how many bytes it takes.
fn escape(rest: &[u8]) -> Option<(u8, usize)> {
    let byte = match *rest.first()? {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'x' => {
            let hex = std::str::from_utf8(rest.get(1..3)?).ok()?;
            return Some((u8::from_str_radix(hex, 16).ok()?, 3));
        }
        other => other,
    };
    Some((byte, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Args = Option<(Vec<Vec<u8>>, usize)>;

    fn args(buf: &[u8]) -> Result<Args, ProtocolError> {
        let mut ranges = Vec::new();
        Ok(frame(buf, 1024, &mut ranges)?.map(|framed| match framed {
            Framed::Ranges { used } => (
                ranges.iter().map(|r| buf[r.clone()].to_vec()).collect(),
                used,
            ),
            Framed::Owned { args, used } => (args, used),
        }))
    }

    fn words(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_commands_frame_exactly_and_wait_for_the_rest() {
        let cmd = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n*1\r\n$4\r\nPING\r\n";
        let (got, used) = args(cmd).unwrap().unwrap();
        assert_eq!(
            got,
            vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\nxy".to_vec()]
        );
        assert_eq!(&cmd[used..], b"*1\r\n$4\r\nPING\r\n");
        for cut in 0..used {
            assert_eq!(args(&cmd[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(args(b"*0\r\n").unwrap(), Some((vec![], 4)));
    }

    #[test]
    fn bad_or_oversized_frames_are_protocol_errors() {
        for bad in [
            &b"*x\r\n"[..],
            b"*1\r\n:1\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$1025\r\n",
            b"*1\r\n$1\r\nab\r\n",
            b"*99999999\r\n",
            b"*1\r\n$1\r\na\r\r",
            b"*123456789012345678901234567890123456\r\n",
        ] {
            assert!(args(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let too_many = format!("*{}\r\n", RESP_ARGS_MAX + 1);
        assert!(args(too_many.as_bytes()).is_err());
    }

    #[test]
    fn inline_commands_split_on_blanks_and_quotes() {
        assert_eq!(args(b"PING\r\n").unwrap(), Some((words(&["PING"]), 6)));
        assert_eq!(
            args(b"set  k\tv\n").unwrap(),
            Some((words(&["set", "k", "v"]), 9))
        );
        assert_eq!(
            args(b"SET k \"a b\\x41\\n\" 'c\\d'\r\n")
                .unwrap()
                .unwrap()
                .0,
            vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"a bA\n".to_vec(),
                b"c\\d".to_vec()
            ]
        );
        assert_eq!(args(b"\r\n").unwrap(), Some((vec![], 2)));
        assert_eq!(args(b"GET k").unwrap(), None);
        assert!(args(b"SET \"unbalanced\r\n").is_err());
        let long = vec![b'a'; RESP_INLINE_BYTES_MAX];
        assert!(args(&long).is_err());
    }
}
