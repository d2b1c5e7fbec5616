//! What may exist in a store (`docs/REGISTRY.md`, section 2), and the entries that do not
//! belong there: links, directories or files with names the registry never writes.
//!
//! `gc` and `delete` remove only what the registry wrote: a regular file at a key of the
//! layout, reached through real directories. In a folder, `object_store` follows symbolic
//! links, so a link planted under `blobs/` would otherwise let `gc` delete files anywhere
//! the link points. Folders are therefore read here without following links; on S3 there
//! are no links and only key names are checked.

use std::path::Path;

use skvault_format::atomic::DestinationKind;

use crate::names::{check_alias, check_model_name};

/// What the layout expects at a key (its `/`-separated segments below the root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Dir,
    File,
    /// A file being written: `object_store` stages `<key>#<n>` beside the destination,
    /// then renames it. Harmless, tolerated by `check`, never deleted by `gc`.
    Staging,
    Foreign,
}

/// 64 lowercase hex digits: the name of a blob.
pub(crate) fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A version number as the registry writes it: decimal, from 1, no leading zero.
fn is_number(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('0')
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>().is_ok()
}

fn is_numbered_json(s: &str) -> bool {
    s.strip_suffix(".json").is_some_and(is_number)
}

/// A log entry: 20 digits and `.json`.
fn is_entry(s: &str) -> bool {
    s.strip_suffix(".json")
        .is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn role(segments: &[&str]) -> Role {
    if let Some((last, parents)) = segments.split_last() {
        if let Some((stem, n)) = last.rsplit_once('#') {
            let mut staged: Vec<&str> = parents.to_vec();
            staged.push(stem);
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && role(&staged) == Role::File
            {
                return Role::Staging;
            }
        }
    }
    let model = |name: &str| check_model_name(name).is_ok();
    match segments {
        [] | ["blobs"] | ["models"] => Role::Dir,
        ["policy.json"] => Role::File,
        ["blobs", d] if is_digest(d) => Role::File,
        ["models", m] if model(m) => Role::Dir,
        ["models", m, "versions" | "deleted" | "aliases" | "state"] if model(m) => Role::Dir,
        ["models", m, "versions" | "deleted", f] if model(m) && is_numbered_json(f) => Role::File,
        ["models", m, "aliases", a] if model(m) && check_alias(a).is_ok() => Role::Dir,
        ["models", m, "state", n] if model(m) && is_number(n) => Role::Dir,
        ["models", m, "aliases", a, e] if model(m) && check_alias(a).is_ok() && is_entry(e) => {
            Role::File
        }
        ["models", m, "state", n, e] if model(m) && is_number(n) && is_entry(e) => Role::File,
        _ => Role::Foreign,
    }
}

/// What is on disk, in words, without following a link.
pub(crate) fn kind_name(file_type: std::fs::FileType) -> &'static str {
    DestinationKind::of(file_type).map_or("regular file", DestinationKind::name)
}

/// Why the folder entry at `key` is not a file the registry wrote, or `None` when it is a
/// regular file at a layout key reached through real directories (or is missing: then there
/// is nothing to protect). Nothing is followed.
pub(crate) fn foreign_in_folder(root: &Path, key: &str) -> Option<String> {
    let segments: Vec<&str> = key.split('/').collect();
    if !matches!(role(&segments), Role::File | Role::Staging) {
        return Some("not a key of the registry layout".into());
    }
    let mut path = root.to_path_buf();
    for (i, seg) in segments.iter().enumerate() {
        path.push(seg);
        let file_type = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta.file_type(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(format!("cannot be examined: {e}")),
        };
        let last = i + 1 == segments.len();
        if (last && !file_type.is_file()) || (!last && !file_type.is_dir()) {
            let at = segments[..=i].join("/");
            return Some(format!("{at} is a {}", kind_name(file_type)));
        }
    }
    None
}

/// Every entry of the folder store that does not belong to the layout, one line each,
/// found by a walk that never follows links and enters only the layout's directories.
pub(crate) fn foreign_entries_in_folder(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    walk(root, &mut Vec::new(), &mut problems);
    problems
}

fn walk(dir: &Path, segments: &mut Vec<String>, problems: &mut Vec<String>) {
    let here = segments.join("/");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{here}/: cannot be listed: {e}"));
            return;
        }
    };
    let mut names: Vec<(String, std::io::Result<std::fs::FileType>)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.file_type())
        })
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, file_type) in names {
        segments.push(name.clone());
        let key = segments.join("/");
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (role(&refs), file_type) {
            (_, Err(e)) => problems.push(format!("{key}: cannot be examined: {e}")),
            (Role::Dir, Ok(t)) if t.is_dir() => walk(&dir.join(&name), segments, problems),
            (Role::File | Role::Staging, Ok(t)) if t.is_file() => {}
            (Role::Dir, Ok(t)) => problems.push(format!(
                "{key}: foreign entry: a {} where the registry keeps a directory",
                kind_name(t)
            )),
            (Role::File | Role::Staging, Ok(t)) => problems.push(format!(
                "{key}: foreign entry: a {} where the registry keeps a regular file (gc and delete leave it alone)",
                kind_name(t)
            )),
            (Role::Foreign, Ok(t)) => problems.push(format!(
                "{key}: foreign entry: a {} that is not part of the registry layout (gc and delete leave it alone)",
                kind_name(t)
            )),
        }
        segments.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::{role, Role};

    #[test]
    fn the_layout_keys_and_nothing_else() {
        let d = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let entry = "00000000000000000003.json";
        for (key, want) in [
            ("blobs", Role::Dir),
            (&*format!("blobs/{d}"), Role::File),
            (&*format!("blobs/{d}#12"), Role::Staging),
            (&*format!("blobs/{d}#"), Role::Foreign),
            (&*format!("blobs/{}", d.to_uppercase()), Role::Foreign),
            (&*format!("blobs/{d}/x"), Role::Foreign),
            ("blobs/evil", Role::Foreign),
            ("models/m-1/versions/3.json", Role::File),
            ("models/m-1/versions/03.json", Role::Foreign),
            ("models/m-1/versions/0.json", Role::Foreign),
            ("models/m-1/deleted/3.json", Role::File),
            (&*format!("models/m/aliases/prod/{entry}"), Role::File),
            (&*format!("models/m/aliases/1prod/{entry}"), Role::Foreign),
            (&*format!("models/m/state/2/{entry}"), Role::File),
            ("models/m/state/2/1.json", Role::Foreign),
            ("models/.hidden", Role::Foreign),
            ("models/m/notes.txt", Role::Foreign),
            ("stray.txt", Role::Foreign),
        ] {
            let segments: Vec<&str> = key.split('/').collect();
            assert_eq!(role(&segments), want, "{key}");
        }
    }
}
