//! `GET /dashboard`: one HTML page embedded in the binary, its style and script inline (no
//! build toolchain, no external assets). The page holds no data and loads without the API
//! key; its script asks this node's own `/cluster`, `/metrics` and `/admin/config` with the
//! credentials the operator types in (kept for the browser session only), and renders every
//! value as text, never as HTML.
//!
//! A strict Content-Security-Policy allows exactly the page's own inline style and script (by
//! their SHA-256, computed once), requests to this origin only, no frames, no forms elsewhere.
//!
//! Must not import `storage` or `replication`: the page is static.

use std::sync::OnceLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::http::Response;

/// Where the page is served, beside `/cluster` (outside `MOSTDB_CONTEXT_PATH`).
pub const PATH: &str = "/dashboard";

const PAGE: &str = include_str!("dashboard/page.html");
const STYLE: &str = include_str!("dashboard/style.css");
const SCRIPT: &str = include_str!("dashboard/app.js");

/// The page with its style and script in place, and the header lines that go with it.
struct Built {
    html: String,
    headers: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| Built {
        html: PAGE
            .replacen("{{style}}", STYLE, 1)
            .replacen("{{script}}", SCRIPT, 1),
        headers: format!(
            "Content-Security-Policy: default-src 'none'; script-src '{}'; style-src '{}'; \
             connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'\r\n\
             X-Content-Type-Options: nosniff\r\n\
             Referrer-Policy: no-referrer\r\n\
             Cache-Control: no-store\r\n",
            sha256_source(SCRIPT),
            sha256_source(STYLE)
        ),
    })
}

/// A CSP hash source: `sha256-<base64 of the digest>`.
fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The dashboard page.
pub fn page() -> Response {
    let built = built();
    Response::html(200, &built.html).with_headers(&built.headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_whole_and_its_policy_names_its_inline_code() {
        let built = built();
        assert!(!built.html.contains("{{"), "every placeholder filled");
        assert!(built.html.contains(SCRIPT) && built.html.contains(STYLE));
        assert!(
            !built.html.contains("src=\"http") && !built.html.contains("href=\"http"),
            "no external assets"
        );
        let csp = &built.headers;
        assert!(csp.contains(&sha256_source(SCRIPT)) && csp.contains("default-src 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        // The hash of a known text, as browsers compute it.
        assert_eq!(
            sha256_source("alert(1)"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }
}
