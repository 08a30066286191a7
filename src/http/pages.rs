//! The few HTML pages pocketgate shows a person: small, escaped, no scripts.

pub use kit::escape_html as escape;

/// A page with a title and a body of (caller-escaped) HTML: every page
/// pocketgate shows looks the same, reads on a phone, and loads nothing
/// from anywhere else (no scripts, fonts or images).
pub fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t}</title><style>body{{font-family:system-ui,sans-serif;font-size:1.05rem;line-height:1.5;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222;overflow-wrap:anywhere}}\
h1{{font-size:1.4rem}}code{{background:#f3f3f3;padding:.1rem .3rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}}\
a.button,button{{display:inline-block;padding:.5rem 1rem;border:1px solid #888;border-radius:.3rem;background:#f6f6f6;color:#222;text-decoration:none;font:inherit}}</style></head>\
<body><h1>{t}</h1>{body_html}</body></html>\n",
        t = escape(title)
    )
}

/// The `support_contact` line, as a paragraph (empty without one).
pub fn support_line(support: Option<&str>) -> String {
    support
        .map(|s| format!("<p>{}</p>", escape(s)))
        .unwrap_or_default()
}

/// The body of the page that asks before signing out, for a `/logout` another
/// site sent the browser to: a button that POSTs back to `/logout` with the
/// same (already checked) `rd`, and a link to `rd` for staying signed in.
pub fn logout_confirmation(rd: &str) -> String {
    let rd = escape(rd);
    format!(
        "<p>Another site sent you here to sign you out.</p>\
<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
<p><button type=\"submit\">Sign out</button> or <a href=\"{rd}\">stay signed in</a>.</p></form>"
    )
}
