//! Query strings: `application/x-www-form-urlencoded` decoding of one parameter, for
//! `GET {ctx}/get?key=…`.

/// The decoded value of the first `name=` parameter (`+` is a space, `%XX` a byte);
/// `None` when absent or not valid percent-encoded UTF-8.
pub fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(decode)
}

fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoding() {
        assert_eq!(param("key=ping", "key").as_deref(), Some("ping"));
        assert_eq!(
            param("x=1&key=a%20b+c%2B", "key").as_deref(),
            Some("a b c+")
        );
        assert_eq!(param("key=%E9%94%AE", "key").as_deref(), Some("键"));
        assert_eq!(param("keys=1", "key"), None);
        assert_eq!(param("key=%zz", "key"), None);
        assert_eq!(param("key=%4", "key"), None);
        assert_eq!(param("key=%ff", "key"), None);
        assert_eq!(param("", "key"), None);
    }
}
