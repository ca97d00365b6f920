//! The demo page at `/` and the embeddable widget at `/widget.js`: static files from `web/`,
//! compiled into the binary (no build step, nothing fetched from elsewhere).
//!
//! Each answer carries a weak `ETag` (a hash of the bytes; weak because the compression layer
//! may re-encode the body) and answers `If-None-Match` with 304. The page and its script and
//! style sheet are `no-cache`: they are not fingerprinted, so a browser revalidates each load
//! and sees a new binary's files at once, at the cost of a 304. The widget runs on other
//! sites' pages on every view: it may be cached for a few minutes, then revalidated.
//!
//! The page sends a strict `Content-Security-Policy`: scripts, styles and requests from this
//! origin only, no inline script or style, no framing. That is why its script and style are
//! files of their own.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// `Content-Security-Policy` of the page: everything from this origin, nothing inline (the
/// favicon is a `data:` image).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Revalidate on every use (the files are not fingerprinted).
const NO_CACHE: &str = "no-cache";
/// The widget: cached by browsers and shared caches for five minutes, then revalidated.
const WIDGET_CACHE: &str = "public, max-age=300";

/// A file served as is.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    /// Extra headers: the page's policy, or the widget's cross-origin permission.
    headers: &'static [(&'static str, &'static str)],
    etag: OnceLock<HeaderValue>,
}

impl Asset {
    const fn new(
        body: &'static str,
        content_type: &'static str,
        cache_control: &'static str,
        headers: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            body,
            content_type,
            cache_control,
            headers,
            etag: OnceLock::new(),
        }
    }

    /// `W/"<first 16 bytes of the SHA-256, hex>"`, computed once.
    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.body.as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("W/\"{hex}\"")).expect("hex is a valid header value")
        })
    }

    /// 200 with the body, or 304 when `If-None-Match` names this version.
    fn answer(&self, request: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .any(|v| matches(v, etag));
        let mut res = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut res = self.body.into_response();
            let kind = HeaderValue::from_static(self.content_type);
            res.headers_mut().insert(header::CONTENT_TYPE, kind);
            res
        };
        let h = res.headers_mut();
        h.insert(header::ETAG, etag.clone());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(self.cache_control),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        for &(name, value) in self.headers {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        res
    }
}

/// Whether an `If-None-Match` value names `etag`: `*`, or a list holding it (weak comparison,
/// as RFC 9110 asks for `If-None-Match`). A value that is not a list of tags matches nothing.
fn matches(value: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let ours = opaque(etag.to_str().unwrap_or_default());
    value.trim() == "*" || value.split(',').any(|tag| opaque(tag.trim()) == ours)
}

/// The quoted part of an entity tag, without `W/`.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// Headers of the page's own files: same-origin only.
const SAME_ORIGIN: &[(&str, &str)] = &[("cross-origin-resource-policy", "same-origin")];

static PAGE: Asset = Asset::new(
    include_str!("../../web/index.html"),
    "text/html; charset=utf-8",
    NO_CACHE,
    &[
        ("content-security-policy", PAGE_CSP),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ],
);
static DEMO_JS: Asset = Asset::new(
    include_str!("../../web/demo.js"),
    "text/javascript; charset=utf-8",
    NO_CACHE,
    SAME_ORIGIN,
);
static DEMO_CSS: Asset = Asset::new(
    include_str!("../../web/demo.css"),
    "text/css; charset=utf-8",
    NO_CACHE,
    SAME_ORIGIN,
);
/// Loaded by `<script src>` on other sites' pages: those need no CORS, but a site that sends
/// `Cross-Origin-Embedder-Policy` needs this permission.
static WIDGET_JS: Asset = Asset::new(
    include_str!("../../web/widget.js"),
    "text/javascript; charset=utf-8",
    WIDGET_CACHE,
    &[("cross-origin-resource-policy", "cross-origin")],
);

/// `GET /`: the demo page.
pub async fn index(headers: HeaderMap) -> Response {
    PAGE.answer(&headers)
}

/// `GET /demo.js`: the page's script.
pub async fn demo_js(headers: HeaderMap) -> Response {
    DEMO_JS.answer(&headers)
}

/// `GET /demo.css`: the page's style sheet.
pub async fn demo_css(headers: HeaderMap) -> Response {
    DEMO_CSS.answer(&headers)
}

/// `GET /widget.js`: the embeddable widget.
pub async fn widget_js(headers: HeaderMap) -> Response {
    WIDGET_JS.answer(&headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let ours = tag("W/\"abc\"");
        assert!(matches(&tag("W/\"abc\""), &ours));
        assert!(matches(&tag("\"abc\""), &ours));
        assert!(matches(&tag("\"x\", W/\"abc\""), &ours));
        assert!(matches(&tag("*"), &ours));
        assert!(!matches(&tag("\"abcd\""), &ours));
        assert!(!matches(&tag(""), &ours));
        assert!(!matches(&tag("abc"), &ours));
    }

    #[test]
    fn a_304_keeps_the_tag_and_drops_the_body_type() {
        let mut req = HeaderMap::new();
        let first = WIDGET_JS.answer(&req);
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        assert!(etag.to_str().unwrap().starts_with("W/\""));
        req.insert(header::IF_NONE_MATCH, etag.clone());
        let again = WIDGET_JS.answer(&req);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);
        assert_eq!(again.headers()[header::CACHE_CONTROL], WIDGET_CACHE);
        assert!(again.headers().get(header::CONTENT_TYPE).is_none());
    }
}
