//! Model cards and the registry page's pieces, from a `.skv` record alone (no Python, no
//! scikit-learn): one summary of the record (`summary`), rendered as a self-contained HTML
//! page (inline CSS and SVG, no script, nothing fetched) or as Markdown.
//!
//! `skvault inspect`, `skvault requirements`, `skvault diff`, the card and the registry page
//! share the facts of `census`, `requirements` and `summary`.

#![forbid(unsafe_code)]

pub mod census;
pub mod charts;
pub mod diff;
pub mod markdown;
mod render;
pub mod requirements;
mod state;
mod structure;
pub mod summary;

use std::str::FromStr;

use serde::Serialize;
use skvault_format::SkvFile;

pub use render::{environment, render};
pub use summary::{record, summarize, Context, Record, Summary};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// A template failed to compile or render: a bug of skvault's, not of the file.
    #[error("card template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("unknown card format {0:?}: expected html or md")]
    UnknownFormat(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
}

impl FromStr for Format {
    type Err = CardError;
    fn from_str(s: &str) -> Result<Self, CardError> {
        match s {
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            other => Err(CardError::UnknownFormat(other.to_string())),
        }
    }
}

/// What a card is made of beyond the file.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    pub context: Context,
    /// A Markdown file's text (`--sections`), shown after the summary.
    pub sections: Option<String>,
}

/// One user-written section: its title (none for a `--sections` file, whose own headings
/// stand), the HTML (escaped already) and the Markdown.
#[derive(Debug, Clone, Serialize)]
pub struct UserSection {
    pub title: Option<String>,
    pub html: String,
    pub markdown: String,
}

/// The user sections of a card: `metadata={"card": {...}}` first, then `--sections`.
pub fn user_sections(summary: &Summary, extra: Option<&str>) -> Vec<UserSection> {
    let mut out: Vec<UserSection> = summary
        .record
        .card_sections
        .iter()
        .map(|(title, text)| UserSection {
            title: Some(title.clone()),
            html: markdown::to_html(text, 2),
            markdown: markdown::to_markdown(text),
        })
        .collect();
    if let Some(text) = extra {
        out.push(UserSection {
            title: None,
            html: markdown::to_html(text, 1),
            markdown: markdown::to_markdown(text),
        });
    }
    out
}

/// The template context of a card (and of the registry page's version page).
pub fn card_context(summary: &Summary, title: &str, sections: &[UserSection]) -> minijinja::Value {
    use minijinja::Value;
    let sections: Vec<Value> = sections
        .iter()
        .map(|s| {
            minijinja::context! {
                title => s.title,
                html => Value::from_safe_string(s.html.clone()),
                markdown => s.markdown,
            }
        })
        .collect();
    let charts: Vec<Value> = summary
        .charts
        .iter()
        .map(|c| {
            minijinja::context! {
                id => c.id,
                title => c.title,
                caption => c.caption,
                svg => Value::from_safe_string(c.svg.clone()),
                table => c.table,
            }
        })
        .collect();
    let mut s = Value::from_serialize(summary);
    // The pictures are SVG built escaped (charts.rs): the template prints them as they are.
    s = merge(s, "charts", Value::from(charts));
    minijinja::context! { s => s, title => title, user_sections => sections }
}

fn merge(base: minijinja::Value, key: &str, value: minijinja::Value) -> minijinja::Value {
    let mut map = std::collections::BTreeMap::new();
    if let Ok(keys) = base.try_iter() {
        for k in keys {
            if let Ok(v) = base.get_item(&k) {
                map.insert(k.to_string(), v);
            }
        }
    }
    map.insert(key.to_string(), value);
    minijinja::Value::from(map)
}

/// The card of `file`.
pub fn card(file: &SkvFile, opts: &Options) -> Result<String, CardError> {
    let summary = summarize(file, &opts.context);
    let title = summary::card_title(file).unwrap_or_else(|| opts.context.name.clone());
    let sections = user_sections(&summary, opts.sections.as_deref());
    let ctx = card_context(&summary, &title, &sections);
    render(
        match opts.format {
            Format::Html => "card.html",
            Format::Markdown => "card.md",
        },
        ctx,
    )
}
