//! The templates (minijinja, HTML auto-escaped by file name) that turn a `Summary` into a
//! card or a registry page. Values a template marks safe are built escaped already: the SVG
//! pictures (`charts`) and user Markdown (`markdown`).

use minijinja::{Environment, Value};

use crate::CardError;

/// Every template, by name; `.html` ones escape every value they print.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("card.html", include_str!("../templates/card.html")),
    (
        "card_body.html",
        include_str!("../templates/card_body.html"),
    ),
    ("card.md", include_str!("../templates/card.md")),
    ("ui/nav.html", include_str!("../templates/ui/nav.html")),
    (
        "ui/models.html",
        include_str!("../templates/ui/models.html"),
    ),
    ("ui/model.html", include_str!("../templates/ui/model.html")),
    (
        "ui/version.html",
        include_str!("../templates/ui/version.html"),
    ),
    ("ui/diff.html", include_str!("../templates/ui/diff.html")),
    ("ui/login.html", include_str!("../templates/ui/login.html")),
    ("ui/error.html", include_str!("../templates/ui/error.html")),
];

/// Text from a file in a Markdown document: shown as text, on one line, in a table cell.
fn md(value: String) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A block of text as an indented Markdown code block: no line can end it early.
fn indent_code(value: String) -> String {
    value
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn environment() -> Result<Environment<'static>, CardError> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|source| CardError::Template {
                name: (*name).to_string(),
                source,
            })?;
    }
    env.add_filter("md", md);
    env.add_filter("indent_code", indent_code);
    env.add_global(
        "generator",
        format!("skvault {}", env!("CARGO_PKG_VERSION")),
    );
    Ok(env)
}

pub fn render(name: &str, ctx: Value) -> Result<String, CardError> {
    let env = environment()?;
    let template = env
        .get_template(name)
        .map_err(|source| CardError::Template {
            name: name.to_string(),
            source,
        })?;
    template.render(ctx).map_err(|source| CardError::Template {
        name: name.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_show_file_text_as_text() {
        assert_eq!(md("<b>|x*\ny".into()), "&lt;b&gt;\\|x\\* y");
        assert_eq!(indent_code("a\n```\nb".into()), "    a\n    ```\n    b");
    }
}
