//! Parsers of user input return errors, never panic, whatever the bytes (multi-byte characters
//! next to operators and suffixes, lone operators, empty strings).

const HOSTILE: &[&str] = &[
    "",
    " ",
    "é",
    "é=é",
    "aé!=b",
    "a!=é",
    "a==",
    "=",
    "!=",
    "!",
    "a in (é",
    "a notin ()",
    "a in (b,,c)",
    "1é",
    "é1",
    "1Kié",
    "1e",
    "1e9999",
    "-",
    "+",
    ".",
    "1.2.3",
    "1Mi5",
    "∞",
    "\u{0}",
    "a\\",
    "a\\é",
    "a=b,",
    ",a=b",
    "a=b,,c=d",
    "😀=😀",
    "a(b)",
    "a in (b",
    "!é",
    "é in (x)",
    "x,y,z=é",
];

#[test]
fn selectors_and_quantities_never_panic() {
    for input in HOSTILE {
        let _ = pernode_core::labels::parse(input);
        let _ = pernode_core::FieldSelector::parse(input);
        let _ = pernode_core::parse_quantity(input);
        let _ = pernode_core::names::is_dns1123_subdomain(input);
        let _ = pernode_core::names::is_qualified_name(input);
        let _ = pernode_core::names::is_valid_label_value(input);
    }
    // The checks are meaningful: well-formed input still parses.
    assert!(pernode_core::labels::parse("a in (b,c),!d").is_ok());
    assert!(pernode_core::FieldSelector::parse("spec.nodeName=n1").is_ok());
    assert!(pernode_core::parse_quantity("512Mi").is_ok());
    assert!(pernode_core::parse_quantity("1é").is_err());
}
