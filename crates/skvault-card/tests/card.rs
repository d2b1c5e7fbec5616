//! Cards of hand-made files (no Python): the Markdown card of a tree with no metadata as a
//! snapshot, the HTML card's sections, and tree arrays the card cannot read leaving the
//! pictures out with a note.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_card::{card, Context, Format, Options};
use skvault_format::testing::TreeSpec;
use skvault_format::SkvFile;

fn options(format: Format) -> Options {
    Options {
        format,
        context: Context {
            name: "tree.skv".into(),
            ..Context::default()
        },
        sections: Some("## Notes\n\nHand-made <b>tree</b>.\n".into()),
    }
}

fn file() -> SkvFile {
    let bytes = TreeSpec::regressor().bytes().expect("the test tree writes");
    SkvFile::from_bytes(bytes).expect("the test tree reads")
}

#[test]
fn markdown_card_of_a_file_without_metadata() {
    let text = card(&file(), &options(Format::Markdown)).expect("a card");
    insta::assert_snapshot!(text);
}

#[test]
fn html_card_has_every_section_and_no_script() {
    let html = card(&file(), &options(Format::Html)).expect("a card");
    for id in [
        "summary",
        "model",
        "input",
        "outputs",
        "metrics",
        "pictures",
        "validation",
        "environment",
        "provenance",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(!html.contains("<script") && !html.contains("<b>tree"));
    assert!(html.contains("&lt;b&gt;tree&lt;/b&gt;"));
    // The test tree's nodes have no impurity field: the card says why there is no picture.
    assert!(html.contains("No tree pictures for sklearn.tree._classes.DecisionTreeRegressor"));
}
