//! Sans-IO, incremental decoding of a `Transfer-Encoding: chunked` request body, in place in
//! the connection's read buffer. Bounded: chunk-size lines, the decoded total and the (ignored)
//! trailers. Imports nothing outside `http` and `limits`.

use super::parse::ParseError;
use crate::limits::{CHUNK_LINE_BYTES_MAX, CHUNK_TRAILER_BYTES_MAX};

/// Where decoding stands after the bytes buffered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkStatus {
    /// More bytes are needed. The buffer now ends with the decoded data followed by at most one
    /// unfinished framing line (the framing already read has been removed).
    Incomplete,
    /// The body ends here. Relative to the body's start: the decoded body is `..body_len`, and
    /// the chunked message (trailers included) took `..consumed` of the buffer.
    Complete { body_len: usize, consumed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes still to come.
    Data { remaining: usize },
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero-size) chunk: trailer lines until an empty one.
    Trailers,
}

/// Decodes one chunked body. Positions are relative to the body's start, so the connection may
/// move the partial request to the front of its buffer between calls.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Decoded bytes so far, at `body[..decoded]`.
    decoded: usize,
    /// `body[raw..]` is not yet looked at; framing lies between `decoded` and `raw`.
    raw: usize,
    trailer_bytes: usize,
    body_bytes_max: usize,
}

impl ChunkedDecoder {
    pub fn new(body_bytes_max: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            decoded: 0,
            raw: 0,
            trailer_bytes: 0,
            body_bytes_max,
        }
    }

    /// Decodes what `buf[body_start..]` holds. On `Incomplete` the framing read so far is cut
    /// out of `buf` (it shrinks), so the buffer never holds more than the decoded body plus one
    /// framing line: memory stays bounded by `body_bytes_max` plus the line limits.
    pub fn decode(
        &mut self,
        buf: &mut Vec<u8>,
        body_start: usize,
    ) -> Result<ChunkStatus, ParseError> {
        let Some(body) = buf.get_mut(body_start..) else {
            return Err(ParseError::Malformed {
                what: "chunked body start past the buffer",
            });
        };
        let status = self.run(body)?;
        if status == ChunkStatus::Incomplete && self.raw > self.decoded {
            let (from, to) = (body_start + self.raw, body_start + self.decoded);
            let tail = buf.len() - from;
            buf.copy_within(from.., to);
            buf.truncate(to + tail);
            self.raw = self.decoded;
        }
        Ok(status)
    }

    fn run(&mut self, body: &mut [u8]) -> Result<ChunkStatus, ParseError> {
        loop {
            let step = match self.state {
                State::Size => self.size_line(body)?,
                State::Data { remaining } => self.data(body, remaining),
                State::DataEnd => self.data_end(body)?,
                State::Trailers => self.trailer_line(body)?,
            };
            if let Some(status) = step {
                return Ok(status);
            }
        }
    }

    /// Reads a chunk-size line: hex digits, optional `;extensions` (ignored), CRLF.
    fn size_line(&mut self, body: &[u8]) -> Result<Option<ChunkStatus>, ParseError> {
        let Some(line_len) = find_line(&body[self.raw..], CHUNK_LINE_BYTES_MAX)? else {
            return Ok(Some(ChunkStatus::Incomplete));
        };
        let line = strip_crlf(&body[self.raw..self.raw + line_len])?;
        let size = parse_chunk_size(line)?;
        self.raw += line_len;
        if size == 0 {
            self.state = State::Trailers;
            return Ok(None);
        }
        let room = self.body_bytes_max - self.decoded;
        if size > room {
            return Err(ParseError::BodyTooLarge {
                declared: self.decoded.saturating_add(size),
                limit: self.body_bytes_max,
            });
        }
        self.state = State::Data { remaining: size };
        Ok(None)
    }

    /// Moves what is buffered of the current chunk's data down to the decoded end.
    fn data(&mut self, body: &mut [u8], remaining: usize) -> Option<ChunkStatus> {
        let n = remaining.min(body.len() - self.raw);
        if self.raw != self.decoded {
            body.copy_within(self.raw..self.raw + n, self.decoded);
        }
        self.raw += n;
        self.decoded += n;
        if n == remaining {
            self.state = State::DataEnd;
            None
        } else {
            self.state = State::Data {
                remaining: remaining - n,
            };
            Some(ChunkStatus::Incomplete)
        }
    }

    fn data_end(&mut self, body: &[u8]) -> Result<Option<ChunkStatus>, ParseError> {
        let rest = &body[self.raw..];
        let bad = ParseError::Malformed {
            what: "chunk data not followed by CRLF",
        };
        match rest {
            [b'\r', b'\n', ..] => {
                self.raw += 2;
                self.state = State::Size;
                Ok(None)
            }
            [] | [b'\r'] => Ok(Some(ChunkStatus::Incomplete)),
            _ => Err(bad),
        }
    }

    /// Reads one trailer line (ignored); an empty line ends the message.
    fn trailer_line(&mut self, body: &[u8]) -> Result<Option<ChunkStatus>, ParseError> {
        let room = CHUNK_TRAILER_BYTES_MAX - self.trailer_bytes;
        let too_large = ParseError::TrailersTooLarge {
            limit: CHUNK_TRAILER_BYTES_MAX,
        };
        let Some(line_len) = find_line(&body[self.raw..], room).map_err(|_| too_large)? else {
            return Ok(Some(ChunkStatus::Incomplete));
        };
        let line = strip_crlf(&body[self.raw..self.raw + line_len])?;
        self.raw += line_len;
        self.trailer_bytes += line_len;
        if line.is_empty() {
            return Ok(Some(ChunkStatus::Complete {
                body_len: self.decoded,
                consumed: self.raw,
            }));
        }
        if !line.contains(&b':') {
            return Err(ParseError::Malformed {
                what: "trailer line without a colon",
            });
        }
        Ok(None)
    }
}

/// Length of the first line of `bytes` including its `\n`, if one ends within `limit` bytes.
fn find_line(bytes: &[u8], limit: usize) -> Result<Option<usize>, ParseError> {
    let window = &bytes[..bytes.len().min(limit)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(Some(i + 1)),
        None if bytes.len() >= limit => Err(ParseError::Malformed {
            what: "chunk framing line too long",
        }),
        None => Ok(None),
    }
}

/// The line without its CRLF; a bare LF is refused (lenient line endings invite smuggling).
fn strip_crlf(line: &[u8]) -> Result<&[u8], ParseError> {
    match line {
        [rest @ .., b'\r', b'\n'] => Ok(rest),
        _ => Err(ParseError::Malformed {
            what: "chunk framing line not ended by CRLF",
        }),
    }
}

/// `1a;name=value` → 26. Sizes past `usize` saturate (and are then refused as too large).
fn parse_chunk_size(line: &[u8]) -> Result<usize, ParseError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    let bad = ParseError::Malformed {
        what: "bad chunk size",
    };
    if digits.is_empty() {
        return Err(bad);
    }
    // Nothing after the digits, or (optional whitespace then) `;` and extensions.
    if !rest.is_empty() && !rest.trim_ascii_start().starts_with(b";") {
        return Err(bad);
    }
    let mut size: usize = 0;
    for &d in digits {
        // is_ascii_hexdigit above guarantees to_digit succeeds.
        let v = (d as char).to_digit(16).unwrap_or(0) as usize;
        size = size.saturating_mul(16).saturating_add(v);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn decode_all(input: &[u8], max: usize) -> Result<(Vec<u8>, usize), ParseError> {
        let mut buf = b"HEAD".to_vec();
        buf.extend_from_slice(input);
        let mut dec = ChunkedDecoder::new(max);
        match dec.decode(&mut buf, 4)? {
            ChunkStatus::Complete { body_len, consumed } => {
                Ok((buf[4..4 + body_len].to_vec(), consumed))
            }
            ChunkStatus::Incomplete => Err(ParseError::Malformed { what: "incomplete" }),
        }
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let input = b"5\r\nhello\r\n1;ext=1\r\n \r\nA ; x\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (body, consumed) = decode_all(input, MAX).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(&input[consumed..], b"NEXT");
    }

    #[test]
    fn empty_body() {
        let (body, consumed) = decode_all(b"0\r\n\r\n", MAX).unwrap();
        assert!(body.is_empty());
        assert_eq!(consumed, 5);
    }

    #[test]
    fn every_split_point_gives_the_same_body() {
        let input: &[u8] = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nGET";
        for split in 0..=input.len() {
            let mut buf = b"HD".to_vec();
            buf.extend_from_slice(&input[..split]);
            let mut dec = ChunkedDecoder::new(MAX);
            let first = dec.decode(&mut buf, 2).unwrap();
            if first != ChunkStatus::Incomplete {
                assert!(split >= input.len() - 3, "complete too early at {split}");
            }
            buf.extend_from_slice(&input[split..]);
            let status = match first {
                ChunkStatus::Incomplete => dec.decode(&mut buf, 2).unwrap(),
                complete => complete,
            };
            let (len, consumed) = match status {
                ChunkStatus::Complete { body_len, consumed } => (body_len, consumed),
                ChunkStatus::Incomplete => panic!("incomplete after all bytes, split {split}"),
            };
            assert_eq!(&buf[2..2 + len], b"abc0123456789abcdef", "split {split}");
            assert_eq!(&buf[2 + consumed..], b"GET", "split {split}");
            assert_eq!(&buf[..2], b"HD");
        }
    }

    #[test]
    fn byte_at_a_time_keeps_buffer_small() {
        let mut input = Vec::new();
        for _ in 0..50 {
            input.extend_from_slice(b"2;some-extension=value\r\nxy\r\n");
        }
        input.extend_from_slice(b"0\r\n\r\n");
        let mut buf = Vec::new();
        let mut dec = ChunkedDecoder::new(MAX);
        let mut done = None;
        for (i, &b) in input.iter().enumerate() {
            buf.push(b);
            match dec.decode(&mut buf, 0).unwrap() {
                ChunkStatus::Incomplete => {
                    // decoded data plus at most one framing line
                    assert!(buf.len() <= dec.decoded + 30, "byte {i}: {}", buf.len());
                }
                ChunkStatus::Complete { body_len, .. } => {
                    assert_eq!(i, input.len() - 1);
                    done = Some(body_len);
                }
            }
        }
        let len = done.expect("complete");
        assert_eq!(len, 100);
        assert!(buf[..len].chunks(2).all(|c| c == b"xy"));
    }

    #[test]
    fn too_large_from_declared_chunk_size() {
        let err = decode_all(b"401\r\n", MAX).unwrap_err();
        assert_eq!(err.status(), 413);
        // The sum of chunks counts, not each chunk.
        let mut input = Vec::new();
        input.extend_from_slice(b"200\r\n");
        input.extend_from_slice(&[b'a'; 0x200]);
        input.extend_from_slice(b"\r\n201\r\n");
        assert_eq!(decode_all(&input, MAX).unwrap_err().status(), 413);
        // Exactly at the limit is fine.
        let mut input = Vec::new();
        input.extend_from_slice(b"400\r\n");
        input.extend_from_slice(&[b'a'; 0x400]);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(decode_all(&input, MAX).unwrap().0.len(), MAX);
        // A size that overflows usize saturates and is refused as too large.
        let huge = decode_all(b"fffffffffffffffffffffffff\r\n", MAX).unwrap_err();
        assert_eq!(huge.status(), 413);
    }

    #[test]
    fn malformed_framing_is_400() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"-1\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\rX",
            b"0\r\nno colon here\r\n\r\n",
            b"0\r\n\n",
        ] {
            let err = decode_all(bad, MAX).unwrap_err();
            assert_eq!(err.status(), 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn long_size_line_is_refused_before_its_end_arrives() {
        let mut buf = b"5;".to_vec();
        buf.resize(CHUNK_LINE_BYTES_MAX - 1, b'x');
        let mut dec = ChunkedDecoder::new(MAX);
        assert_eq!(dec.decode(&mut buf, 0).unwrap(), ChunkStatus::Incomplete);
        buf.push(b'x');
        assert_eq!(dec.decode(&mut buf, 0).unwrap_err().status(), 400);
    }

    #[test]
    fn trailers_are_bounded() {
        let mut input = b"0\r\n".to_vec();
        while input.len() < CHUNK_TRAILER_BYTES_MAX + 10 {
            input.extend_from_slice(b"X-Trailer: some value\r\n");
        }
        assert_eq!(decode_all(&input, MAX).unwrap_err().status(), 431);
    }

    #[test]
    fn start_past_end_is_an_error_not_a_panic() {
        let mut buf = b"abc".to_vec();
        let mut dec = ChunkedDecoder::new(MAX);
        assert!(dec.decode(&mut buf, 4).is_err());
    }
}
