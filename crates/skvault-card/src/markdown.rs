//! User-written sections (intended use, limitations) in Markdown, rendered with
//! pulldown-cmark. A card is read by people who did not write it: raw HTML in the Markdown
//! is shown as text, images become links (a card fetches nothing), and links keep only
//! `http`, `https`, `mailto` and in-page targets (no `javascript:`).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('#')
}

/// Markdown to HTML, headings moved down by `shift` levels (a section's own `#` fits under
/// the card's headings).
pub fn to_html(markdown: &str, shift: u8) -> String {
    let events = Parser::new_ext(markdown, options()).filter_map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Image { dest_url, .. }) => {
            Some(Event::Text(CowStr::from(format!("[image: {dest_url}] "))))
        }
        Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if safe_url(&dest_url) => Some(Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        })),
        Event::Start(Tag::Link { dest_url, .. }) => {
            Some(Event::Text(CowStr::from(format!("[{dest_url}] "))))
        }
        Event::End(TagEnd::Link) => Some(Event::End(TagEnd::Link)),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: shifted(level, shift),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => {
            Some(Event::End(TagEnd::Heading(shifted(level, shift))))
        }
        other => Some(other),
    });
    let events: Vec<Event<'_>> = events.collect();
    // An unsafe link's end tag has no start: drop ends that close nothing.
    let mut depth = 0usize;
    let mut balanced = Vec::with_capacity(events.len());
    for e in events {
        match &e {
            Event::Start(Tag::Link { .. }) => depth += 1,
            Event::End(TagEnd::Link) if depth == 0 => continue,
            Event::End(TagEnd::Link) => depth -= 1,
            _ => {}
        }
        balanced.push(e);
    }
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, balanced.into_iter());
    out
}

fn shifted(level: pulldown_cmark::HeadingLevel, shift: u8) -> pulldown_cmark::HeadingLevel {
    use pulldown_cmark::HeadingLevel::*;
    let n = (level as u8).saturating_add(shift).min(6);
    match n {
        1 => H1,
        2 => H2,
        3 => H3,
        4 => H4,
        5 => H5,
        _ => H6,
    }
}

/// Markdown for a Markdown card: the user's text as written, except raw HTML, whose `<`,
/// `>` and `&` become entities (GitHub then shows it as text).
pub fn to_markdown(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut last = 0;
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        if matches!(event, Event::Html(_) | Event::InlineHtml(_)) && range.start >= last {
            out.push_str(markdown.get(last..range.start).unwrap_or(""));
            out.push_str(&entities(markdown.get(range.clone()).unwrap_or("")));
            last = range.end;
        }
    }
    out.push_str(markdown.get(last..).unwrap_or(""));
    out
}

/// `<`, `>`, `&` as entities: text from a file in a Markdown document.
pub fn entities(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_scripts_are_shown_as_text() {
        let html = to_html(
            "Hi <script>alert(1)</script>\n\n<div onclick=x>y</div>\n",
            2,
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn images_and_unsafe_links_do_not_survive() {
        let html = to_html(
            "![x](http://example.com/a.png) [a](javascript:alert(1)) [b](https://ok.example)",
            2,
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:alert(1)\""), "{html}");
        assert!(html.contains("href=\"https://ok.example\""), "{html}");
    }

    #[test]
    fn headings_move_down_under_the_cards_own() {
        assert!(to_html("# Use", 2).contains("<h3>Use</h3>"));
    }

    #[test]
    fn markdown_output_keeps_text_and_escapes_only_html() {
        let md = to_markdown("Use *carefully* <b>now</b>\n\n```\na < b\n```\n");
        assert!(md.contains("*carefully*"));
        assert!(md.contains("&lt;b&gt;now&lt;/b&gt;"));
        assert!(md.contains("a < b"));
    }
}
