//! `skvault docs [TOPIC]`: the user documentation, compiled into the command so that a pip
//! install has it (the repository's docs/ folder is not in the wheel). Help texts point here
//! rather than to repository paths.

use crate::CliError;

/// A page of the user documentation: the name `skvault docs` takes and the Markdown text.
pub struct Topic {
    pub name: &'static str,
    pub text: &'static str,
}

/// The user-facing pages of docs/ (ARCHITECTURE.md is for contributors and stays out).
pub const TOPICS: &[Topic] = &[
    Topic {
        name: "card",
        text: include_str!("../../../docs/CARD.md"),
    },
    Topic {
        name: "cli",
        text: include_str!("../../../docs/CLI.md"),
    },
    Topic {
        name: "convert",
        text: include_str!("../../../docs/CONVERT.md"),
    },
    Topic {
        name: "errors",
        text: include_str!("../../../docs/ERRORS.md"),
    },
    Topic {
        name: "export",
        text: include_str!("../../../docs/EXPORT.md"),
    },
    Topic {
        name: "format",
        text: include_str!("../../../docs/FORMAT.md"),
    },
    Topic {
        name: "native",
        text: include_str!("../../../docs/NATIVE.md"),
    },
    Topic {
        name: "registry",
        text: include_str!("../../../docs/REGISTRY.md"),
    },
    Topic {
        name: "scale",
        text: include_str!("../../../docs/SCALE.md"),
    },
    Topic {
        name: "serve",
        text: include_str!("../../../docs/SERVE.md"),
    },
    Topic {
        name: "security",
        text: include_str!("../../../docs/SECURITY.md"),
    },
    Topic {
        name: "signing",
        text: include_str!("../../../docs/SIGNING.md"),
    },
];

/// The names `skvault docs` accepts, for clap's list of possible values.
pub fn names() -> impl Iterator<Item = &'static str> {
    TOPICS.iter().map(|t| t.name)
}

/// A page's title: its first Markdown heading.
pub fn title(topic: &Topic) -> &'static str {
    topic
        .text
        .lines()
        .find_map(|line| line.strip_prefix("# "))
        .unwrap_or(topic.name)
}

/// Prints the page `topic`, or the list of pages when there is none.
pub fn run(topic: Option<&str>) -> Result<u8, CliError> {
    match topic.and_then(|name| TOPICS.iter().find(|t| t.name == name)) {
        Some(page) => out!("{}", page.text),
        None => {
            outln!("skvault's documentation; `skvault docs TOPIC` prints a page:\n");
            for page in TOPICS {
                outln!("  {:<10} {}", page.name, title(page));
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// The long help of a command and of all its subcommands, with the command's path.
    fn all_help(cmd: &mut clap::Command, path: String, out: &mut Vec<(String, String)>) {
        out.push((path.clone(), cmd.render_long_help().to_string()));
        for sub in cmd.get_subcommands_mut() {
            let sub_path = format!("{path} {}", sub.get_name());
            all_help(sub, sub_path, out);
        }
    }

    #[test]
    fn help_texts_point_to_skvault_docs_not_to_repository_files() {
        let mut helps = Vec::new();
        all_help(&mut crate::Cli::command(), "skvault".into(), &mut helps);
        assert!(
            helps.len() > 20,
            "expected every subcommand: {}",
            helps.len()
        );
        let mut pointers = 0;
        for (path, help) in &helps {
            assert!(
                !help.contains("docs/") && !help.contains(".md"),
                "`{path} --help` names a repository file:\n{help}"
            );
            for (i, _) in help.match_indices("skvault docs ") {
                let topic: String = help[i + "skvault docs ".len()..]
                    .chars()
                    .take_while(char::is_ascii_lowercase)
                    .collect();
                if topic.is_empty() {
                    continue; // "skvault docs TOPIC"
                }
                pointers += 1;
                assert!(
                    names().any(|n| n == topic),
                    "`{path} --help` points to `skvault docs {topic}`, which is no page"
                );
            }
        }
        assert!(pointers > 0, "no help text points to a page");
    }

    #[test]
    fn every_page_has_a_title_and_a_unique_name() {
        let mut seen = std::collections::BTreeSet::new();
        for page in TOPICS {
            assert!(seen.insert(page.name), "{} twice", page.name);
            assert_ne!(title(page), page.name, "{} has no `# ` heading", page.name);
            assert!(page.text.len() > 1000, "{} is nearly empty", page.name);
        }
    }
}
