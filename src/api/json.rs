//! The JSON of the original API: decoding `{"key","value"}` request bodies with the original's
//! leniencies (field names in any case, last duplicate wins, unknown fields ignored, invalid
//! UTF-8 replaced by U+FFFD), and encoding answers byte for byte as the original's Go
//! `encoding/json` does (`<`, `>`, `&`, U+2028, U+2029 escaped; other non-ASCII raw).
//!
//! Decoding goes through serde, so both JSON crates can be measured on the real bodies
//! (`benches/api.rs`); [`decode`] uses the one that measured faster. Both recurse once per
//! nested array or object, on the core thread's stack, so a body nested deeper than
//! [`JSON_DEPTH_MAX`] is refused by a byte scan ([`nests_deeper_than`]) before either sees it.
//! Must not import `replication` or `storage`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::limits::{JSON_DEPTH_MAX, JSON_SCAN_BLOCK_BYTES};

/// A string field of a request body, as found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<'a> {
    #[default]
    Missing,
    Str(Cow<'a, str>),
    /// Present, but a number, object, array, boolean or null.
    NotString,
}

/// A decoded `{"key": …, "value": …}` body, with the fields the original did not have and
/// that are honoured now rather than ignored (`with_version` on get, `ttl_ms` on set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvBody<'a> {
    pub key: Field<'a>,
    pub value: Field<'a>,
    /// `"with_version": true` asks a get for the value's version.
    pub with_version: Flag,
    /// `ttl_ms` (expiry), as found.
    pub ttl_ms: Millis,
}

/// A field that must be a whole number of milliseconds, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Millis {
    #[default]
    Missing,
    Ms(u64),
    /// Present, but not a non-negative whole number.
    Invalid,
}

/// A boolean field of a request body, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flag {
    #[default]
    Missing,
    Bool(bool),
    /// Present, but not a boolean.
    NotBool,
}

/// Which JSON crate decodes: the user chose sonic-rs; `benches/api.rs` measures both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    SerdeJson,
    SonicRs,
}

/// The decoder used on the request path: sonic-rs, the user's choice, which `benches/api.rs`
/// measured 0.77–0.84× the time of serde_json through this decoder on all four of the API's
/// real bodies (see README, "Benchmarks"). Built without `target-cpu`, so the binary runs on
/// any x86-64.
pub const DECODER: Decoder = Decoder::SonicRs;

/// Why a body is not a `{"key": …, "value": …}` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not one JSON object: the original's 参数有误, answered byte for byte as it did.
    #[error("not one JSON object")]
    NotOneObject,
    /// Arrays and objects nested deeper than [`JSON_DEPTH_MAX`]; no parser has seen it.
    #[error("JSON nested deeper than {JSON_DEPTH_MAX} levels")]
    TooDeep,
}

/// Decodes a request body. Invalid UTF-8 is replaced byte by byte with U+FFFD first, as Go does.
pub fn decode(body: &[u8]) -> Result<KvBody<'static>, DecodeError> {
    decode_with(DECODER, body)
}

pub fn decode_with(decoder: Decoder, body: &[u8]) -> Result<KvBody<'static>, DecodeError> {
    if nests_deeper_than(body, JSON_DEPTH_MAX) {
        return Err(DecodeError::TooDeep);
    }
    let kv = match std::str::from_utf8(body) {
        Ok(text) => parse(decoder, text).map(KvBody::into_owned),
        Err(_) => parse(decoder, &replace_invalid_utf8(body)).map(KvBody::into_owned),
    };
    kv.ok_or(DecodeError::NotOneObject)
}

/// Decodes without copying strings that need no unescaping.
pub fn decode_str(decoder: Decoder, text: &str) -> Result<KvBody<'_>, DecodeError> {
    if nests_deeper_than(text.as_bytes(), JSON_DEPTH_MAX) {
        return Err(DecodeError::TooDeep);
    }
    parse(decoder, text).ok_or(DecodeError::NotOneObject)
}

/// The parse itself. Recurses once per level of nesting: only for text whose depth was checked.
fn parse(decoder: Decoder, text: &str) -> Option<KvBody<'_>> {
    match decoder {
        Decoder::SerdeJson => serde_json::from_str(text).ok(),
        Decoder::SonicRs => sonic_rs::from_str(text).ok(),
    }
}

/// Whether arrays and objects in `body` nest deeper than `depth_max` (the outermost one is
/// level 1). A scan of the bytes that skips strings, escapes included, so brackets inside
/// strings do not count; it validates nothing else, that is the parser's job. For any prefix
/// a parser accepts, its nesting is the scan's, so no parser recurses deeper than `depth_max`
/// on a body this lets through. Unmatched closing brackets do not lower the count below 0.
pub fn nests_deeper_than(body: &[u8], depth_max: usize) -> bool {
    if cfg!(feature = "planted-unbounded-json") {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(body, i),
            b'{' | b'[' => {
                depth += 1;
                if depth > depth_max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Where the string whose contents start at `i` ends: just past its closing quote, or the end
/// of `body` when it is unterminated. A backslash escapes the byte after it.
fn string_end(body: &[u8], mut i: usize) -> usize {
    while i < body.len() {
        // Values are mostly string contents: skip whole blocks without a quote or a backslash
        // (the fold has no early exit, so it compiles to vector compares).
        if let Some(block) = body.get(i..i + JSON_SCAN_BLOCK_BYTES) {
            if !block
                .iter()
                .fold(false, |seen, &b| seen | (b == b'"') | (b == b'\\'))
            {
                i += JSON_SCAN_BLOCK_BYTES;
                continue;
            }
        }
        match body[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    body.len()
}

impl<'a> Field<'a> {
    fn into_owned(self) -> Field<'static> {
        match self {
            Field::Missing => Field::Missing,
            Field::NotString => Field::NotString,
            Field::Str(s) => Field::Str(Cow::Owned(s.into_owned())),
        }
    }
}

impl<'a> KvBody<'a> {
    pub fn into_owned(self) -> KvBody<'static> {
        KvBody {
            key: self.key.into_owned(),
            value: self.value.into_owned(),
            with_version: self.with_version,
            ttl_ms: self.ttl_ms,
        }
    }
}

/// Go's decoder turns each byte of an invalid UTF-8 sequence into one U+FFFD.
fn replace_invalid_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(err) => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                // Safe to unwrap: from_utf8 just said this prefix is valid.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = &rest[1..];
            }
        }
    }
}

enum Name {
    Key,
    Value,
    WithVersion,
    TtlMs,
    Other,
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name, E> {
                Ok(if name.eq_ignore_ascii_case("key") {
                    Name::Key
                } else if name.eq_ignore_ascii_case("value") {
                    Name::Value
                } else if name.eq_ignore_ascii_case("with_version") {
                    Name::WithVersion
                } else if name.eq_ignore_ascii_case("ttl_ms") {
                    Name::TtlMs
                } else {
                    Name::Other
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_unit<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_none<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::NotString)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::NotString)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, ms: u64) -> Result<Millis, E> {
                Ok(Millis::Ms(ms))
            }
            fn visit_i64<E>(self, ms: i64) -> Result<Millis, E> {
                Ok(u64::try_from(ms).map_or(Millis::Invalid, Millis::Ms))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Millis, E> {
                Ok(Millis::Invalid)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Millis, E> {
                Ok(Millis::Invalid)
            }
            fn visit_str<E>(self, _: &str) -> Result<Millis, E> {
                Ok(Millis::Invalid)
            }
            fn visit_unit<E>(self) -> Result<Millis, E> {
                Ok(Millis::Invalid)
            }
            fn visit_none<E>(self) -> Result<Millis, E> {
                Ok(Millis::Invalid)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Millis, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Millis, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Millis::Invalid)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Millis, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Millis::Invalid)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Flag, E> {
                Ok(Flag::Bool(b))
            }
            fn visit_str<E>(self, _: &str) -> Result<Flag, E> {
                Ok(Flag::NotBool)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Flag, E> {
                Ok(Flag::NotBool)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Flag, E> {
                Ok(Flag::NotBool)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Flag, E> {
                Ok(Flag::NotBool)
            }
            fn visit_unit<E>(self) -> Result<Flag, E> {
                Ok(Flag::NotBool)
            }
            fn visit_none<E>(self) -> Result<Flag, E> {
                Ok(Flag::NotBool)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Flag, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Flag, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Flag::NotBool)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Flag, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Flag::NotBool)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for KvBody<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KvBody<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KvBody<'de>, A::Error> {
                let mut body = KvBody::default();
                while let Some(name) = map.next_key::<Name>()? {
                    match name {
                        Name::Key => body.key = map.next_value()?,
                        Name::Value => body.value = map.next_value()?,
                        Name::WithVersion => body.with_version = map.next_value()?,
                        Name::TtlMs => body.ttl_ms = map.next_value()?,
                        Name::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(body)
            }
        }
        d.deserialize_map(V)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string exactly as Go's `encoding/json` writes it: `"`, `\`, `\n`,
/// `\r`, `\t` escaped by name, other control bytes and `<` `>` `&` as `\u00XX`, U+2028 and
/// U+2029 as `\u2028`/`\u2029`, invalid UTF-8 as `\ufffd`, everything else raw.
pub fn write_go_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            let escape: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                b'<' | b'>' | b'&' | 0..=0x1f => Some(b""),
                _ => None,
            };
            if let Some(named) = escape {
                out.extend_from_slice(&s[start..i]);
                if named.is_empty() {
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 0xf) as usize],
                    ]);
                } else {
                    out.extend_from_slice(named);
                }
                start = i + 1;
            }
            i += 1;
            continue;
        }
        let width = utf8_width(&s[i..]);
        if width == 0 {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(b"\\ufffd");
            i += 1;
            start = i;
            continue;
        }
        if width == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)
        {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(if s[i + 2] == 0xA8 {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            start = i + 3;
        }
        i += width;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// The length of the valid UTF-8 sequence at the start of `s` (non-empty, first byte ≥ 0x80),
/// or 0 when it is not valid.
fn utf8_width(s: &[u8]) -> usize {
    let width = match s[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return 0,
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(_)) => width,
        _ => 0,
    }
}

pub const BODY_OK: &[u8] = br#"{"code":200,"success":true}"#;

/// `{"code":200,"success":true,"result":{"key":K,"value":V}}`, with `value` left out when
/// empty (Go's `omitempty`), as the original answers.
pub fn encode_get_ok(key: &[u8], value: &[u8]) -> Vec<u8> {
    encode_get_ok_with(key, value, None)
}

/// [`encode_get_ok`], with `"version":V` after the value when `version` is given (already a
/// JSON-safe string), and then `"ttl_ms":N`, the time it has left, for a value that expires.
pub fn encode_get_ok_with(
    key: &[u8],
    value: &[u8],
    version: Option<(&str, Option<u64>)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + key.len() + value.len() + value.len() / 8);
    out.extend_from_slice(br#"{"code":200,"success":true,"result":{"key":"#);
    write_go_string(&mut out, key);
    if !value.is_empty() {
        out.extend_from_slice(br#","value":"#);
        write_go_string(&mut out, value);
    }
    if let Some((version, ttl_ms)) = version {
        out.extend_from_slice(br#","version":""#);
        out.extend_from_slice(version.as_bytes());
        out.push(b'"');
        if let Some(ms) = ttl_ms {
            out.extend_from_slice(format!(r#","ttl_ms":{ms}"#).as_bytes());
        }
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(body: &[u8]) -> Option<KvBody<'static>> {
        let a = decode_with(Decoder::SerdeJson, body).ok();
        let b = decode_with(Decoder::SonicRs, body).ok();
        assert_eq!(
            a,
            b,
            "decoders disagree on {:?}",
            String::from_utf8_lossy(body)
        );
        a
    }

    fn s(v: &str) -> Field<'static> {
        Field::Str(Cow::Owned(v.to_owned()))
    }

    #[test]
    fn decodes_the_originals_leniencies() {
        let kv = both(br#"{"key":"ping","value":"pong"}"#).unwrap();
        assert_eq!((kv.key, kv.value), (s("ping"), s("pong")));
        let kv = both(br#"{"KEY":"kcase","VaLuE":"vv"}"#).unwrap();
        assert_eq!((kv.key, kv.value), (s("kcase"), s("vv")));
        let kv = both(br#"{"key":"d1","key":"d2","value":"dv"}"#).unwrap();
        assert_eq!(kv.key, s("d2"));
        let kv = both(br#"{"key":"k","value":"s","extra":{"a":[1,2]}}"#).unwrap();
        assert_eq!(kv.value, s("s"));
        let kv = both(br#"{"key":"\u952e\ud83d\udd11"}"#).unwrap();
        assert_eq!((kv.key, kv.value), (s("键🔑"), Field::Missing));
        let kv = both(b"{\"key\":\"bad8\",\"value\":\"\xff\xfe\"}").unwrap();
        assert_eq!(kv.value, s("\u{FFFD}\u{FFFD}"));
    }

    #[test]
    fn classifies_non_string_fields() {
        for body in [
            r#"{"key":"k","value":123}"#,
            r#"{"key":"k","value":{"a":1}}"#,
            r#"{"key":"k","value":true}"#,
            r#"{"key":"k","value":null}"#,
            r#"{"key":"k","value":[1]}"#,
        ] {
            assert_eq!(
                both(body.as_bytes()).unwrap().value,
                Field::NotString,
                "{body}"
            );
        }
        assert_eq!(both(br#"{"key":123}"#).unwrap().key, Field::NotString);
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for body in [
            &b""[..],
            b"{\"key\":\"a\",\"value\":",
            b"{\"key\":\"tg\",\"value\":\"v\"} x",
            b"{}{}",
            b"[1,2]",
            b"\xef\xbb\xbf{\"key\":\"a\"}",
            b"hello world",
            b"key=a&value=b",
            b"\"str\"",
            b"null",
        ] {
            assert_eq!(both(body), None, "{:?}", String::from_utf8_lossy(body));
        }
    }

    /// `{"key":"k","x":[[…1…]]}`: `levels` levels, the object included.
    fn nested(levels: usize) -> String {
        let inner = levels - 1;
        format!(
            r#"{{"key":"k","x":{}1{}}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
    }

    /// `{"a":{"a":…{"key":"k"}…}}`: `levels` objects.
    fn nested_objects(levels: usize) -> String {
        let inner = levels - 1;
        format!(
            r#"{}{{"key":"k"}}{}"#,
            r#"{"a":"#.repeat(inner),
            "}".repeat(inner)
        )
    }

    fn depth_of(body: &[u8]) -> Result<KvBody<'static>, DecodeError> {
        let a = decode_with(Decoder::SerdeJson, body);
        assert_eq!(a, decode_with(Decoder::SonicRs, body));
        a
    }

    #[test]
    fn nesting_at_the_limit_is_accepted_one_more_refused() {
        let at = depth_of(nested(JSON_DEPTH_MAX).as_bytes()).unwrap();
        assert_eq!(at.key, s("k"));
        assert_eq!(at.value, Field::Missing);
        let over = nested(JSON_DEPTH_MAX + 1);
        assert_eq!(depth_of(over.as_bytes()), Err(DecodeError::TooDeep));
        assert_eq!(decode_str(DECODER, &over), Err(DecodeError::TooDeep));
        assert!(depth_of(nested_objects(JSON_DEPTH_MAX).as_bytes()).is_ok());
        let over = nested_objects(JSON_DEPTH_MAX + 1);
        assert_eq!(depth_of(over.as_bytes()), Err(DecodeError::TooDeep));
        // Unmatched closers earn no credit.
        let closers = format!("{}{}", "]}".repeat(100), nested(JSON_DEPTH_MAX + 1));
        assert_eq!(depth_of(closers.as_bytes()), Err(DecodeError::TooDeep));
    }

    /// The reported crash: ~18,500 levels aborted the process; the scan refuses it first.
    #[test]
    fn the_reported_deep_bodies_are_refused_without_recursion() {
        for levels in [18_500, 20_000, 1_000_000] {
            let closed = nested(levels);
            assert_eq!(depth_of(closed.as_bytes()), Err(DecodeError::TooDeep));
            let open = format!(r#"{{"key":"k","x":{}"#, "[".repeat(levels));
            assert_eq!(depth_of(open.as_bytes()), Err(DecodeError::TooDeep));
            let objects = nested_objects(levels);
            assert_eq!(depth_of(objects.as_bytes()), Err(DecodeError::TooDeep));
        }
    }

    #[test]
    fn brackets_in_strings_and_escaped_quotes_do_not_count() {
        let deep = "[{".repeat(5_000);
        let body = format!(r#"{{"key":"{deep}","value":"{deep}"}}"#);
        assert_eq!(depth_of(body.as_bytes()).unwrap().key, s(&deep));
        // `\"` does not end the string: the brackets after it are still inside.
        let body = format!(r#"{{"key":"a\"{deep}","value":"v"}}"#);
        assert!(depth_of(body.as_bytes()).is_ok());
        // `\\` is an escaped backslash: the quote after it ends the string.
        let body = format!(r#"{{"key":"a\\","x":{}}}"#, "[".repeat(JSON_DEPTH_MAX));
        assert_eq!(depth_of(body.as_bytes()), Err(DecodeError::TooDeep));
        // An escaped quote, an escaped backslash and a closing quote at every offset of a scan
        // block: at the limit passes, one more does not (miscounting the string's brackets
        // or missing its end would tip either).
        for at in 0..2 * JSON_SCAN_BLOCK_BYTES + 2 {
            let pad = "x".repeat(at);
            for string in [
                format!(r#"{pad}\"[[[["#),
                format!(r#"{pad}\\"#),
                pad.clone(),
            ] {
                for (arrays, deeper) in [(JSON_DEPTH_MAX - 1, false), (JSON_DEPTH_MAX, true)] {
                    let body = format!(r#"{{"key":"{string}","x":{}"#, "[".repeat(arrays));
                    let got = nests_deeper_than(body.as_bytes(), JSON_DEPTH_MAX);
                    assert_eq!(got, deeper, "{body}");
                }
            }
        }
    }

    /// The block-skipping scan against the plain byte-by-byte definition.
    #[test]
    fn the_scan_matches_a_byte_by_byte_scan() {
        fn plain(body: &[u8]) -> usize {
            let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
            for &b in body {
                match (in_string, escaped, b) {
                    (true, true, _) => escaped = false,
                    (true, false, b'\\') => escaped = true,
                    (true, false, b'"') => in_string = false,
                    (true, false, _) => {}
                    (false, _, b'"') => in_string = true,
                    (false, _, b'{' | b'[') => {
                        depth += 1;
                        max = max.max(depth);
                    }
                    (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            max
        }
        let alphabet = b"[]{}\"\\x";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (state % 200) as usize;
            let mut body = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                body.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let depth = plain(&body);
            for limit in [depth.saturating_sub(1), depth] {
                assert_eq!(nests_deeper_than(&body, limit), depth > limit, "{body:?}");
            }
        }
    }

    fn go(s: &str) -> String {
        let mut out = Vec::new();
        write_go_string(&mut out, s.as_bytes());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_strings_as_go_does() {
        assert_eq!(go("h<>&"), r#""h\u003c\u003e\u0026""#);
        assert_eq!(
            go("a<b>&c \"q\" \\ \n\t \u{2028} /"),
            r#""a\u003cb\u003e\u0026c \"q\" \\ \n\t \u2028 /""#
        );
        assert_eq!(
            go("a\0b\u{1}\u{7f}\r"),
            r#""a\u0000b\u0001\r""#.replace("\\r", "\u{7f}\\r")
        );
        assert_eq!(go("键🔑 值✓ é \u{2029}"), "\"键🔑 值✓ é \\u2029\"");
        let mut out = Vec::new();
        write_go_string(&mut out, b"x\xffy\xe2\x80");
        assert_eq!(out, br#""x\ufffdy\ufffd\ufffd""#);
    }

    #[test]
    fn encodes_get_answers_byte_for_byte() {
        assert_eq!(
            encode_get_ok(b"ping", b"pong"),
            br#"{"code":200,"success":true,"result":{"key":"ping","value":"pong"}}"#
        );
        assert_eq!(
            encode_get_ok(b"knum", b""),
            br#"{"code":200,"success":true,"result":{"key":"knum"}}"#
        );
        let body = encode_get_ok(
            "h<>&".as_bytes(),
            "a<b>&c \"q\" \\ \n\t \u{2028} /".as_bytes(),
        );
        assert_eq!(body.len(), 121);
    }
}
