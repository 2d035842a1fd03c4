//! Property tests: the text extractors, placeholder parser, review and compiler never
//! panic on arbitrary input, and their outputs keep their documented shape.

use mailpush_template::{
    CompiledTemplate, DataPolicy, Lexicon, ReviewConfig, ReviewInput, ReviewPolicy, TemplateCategory, TemplateData,
    is_simple_identifier, placeholders, review, visible_text_html, visible_text_plain,
};
use proptest::prelude::*;

/// Strings built from the fragments that exercise the parsers' edge cases.
fn markupish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("</".to_owned()),
        Just("/>".to_owned()),
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{{{".to_owned()),
        Just("\\".to_owned()),
        Just("~".to_owned()),
        Just("!--".to_owned()),
        Just("-->".to_owned()),
        Just("&".to_owned()),
        Just("&#x".to_owned()),
        Just(";".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("=".to_owned()),
        Just("#each ".to_owned()),
        Just("script".to_owned()),
        Just("div".to_owned()),
        Just("img".to_owned()),
        Just("a href".to_owned()),
        Just("https://".to_owned()),
        Just("www.".to_owned()),
        Just("name".to_owned()),
        Just("中文".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        "\\PC{0,4}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|v| v.concat())
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![markupish(), any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn visible_text_is_collapsed_and_never_panics(s in any_input()) {
        for v in [visible_text_html(&s), visible_text_plain(&s)] {
            prop_assert_eq!(v.trim(), v.as_str());
            prop_assert!(!v.contains("  "));
            prop_assert!(!v.contains(['\n', '\t', '\r']));
        }
    }

    #[test]
    fn placeholders_are_simple_identifiers(s in any_input()) {
        let names = placeholders(&s);
        for name in &names {
            prop_assert!(is_simple_identifier(name), "{:?}", name);
            prop_assert!(s.contains(name.as_str()));
        }
        let mut dedup = names.clone();
        dedup.dedup();
        prop_assert_eq!(dedup.len(), names.len());
    }

    #[test]
    fn review_never_panics(s in any_input(), subject in any_input(), marketing in any::<bool>()) {
        let category = if marketing { TemplateCategory::Marketing } else { TemplateCategory::Trigger };
        let input = ReviewInput { subject: Some(&subject), html: Some(&s), text: Some(&s), category };
        let outcome = review(&input, &ReviewPolicy::default(), &Lexicon::default(), &ReviewConfig::default());
        prop_assert_eq!(outcome.approved, outcome.findings.is_empty());
    }

    #[test]
    fn compile_and_render_never_panic(s in any_input()) {
        if let Ok(t) = CompiledTemplate::compile(&s, Some(&s), Some(&s)) {
            // Fill every placeholder: rendering must then succeed, or fail only on the Subject checks.
            let pairs = t.placeholders().into_iter().map(|n| (n.to_owned(), "v")).collect::<Vec<_>>();
            let policy = DataPolicy { allow_reserved_keys: true, ..DataPolicy::default() };
            let data = TemplateData::from_pairs(pairs, &policy);
            prop_assert!(data.is_ok());
            if let Ok(data) = data {
                match t.render(&data) {
                    Ok(_) | Err(mailpush_template::RenderError::SubjectHasLineBreak)
                    | Err(mailpush_template::RenderError::SubjectTooLong { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected render error {e:?}"),
                }
            }
        }
    }

    #[test]
    fn template_data_parse_never_panics(s in any_input()) {
        let _ = TemplateData::parse(&s, &DataPolicy::default());
    }
}
