//! Rendering and TemplateData acceptance tests.

use mailpush_template::{
    CompiledTemplate, DataPolicy, MAX_SUBJECT_BYTES, RenderError, TemplateData, TemplateDataError,
    UNSUBSCRIBE_PLACEHOLDER,
};

const LENIENT: DataPolicy = DataPolicy {
    reject_html: false,
    allow_reserved_keys: false,
};

fn template() -> CompiledTemplate {
    CompiledTemplate::compile(
        "Hi {{name}}, order {{order}}",
        Some("<p title=\"{{name}}\">Hello {{name}}, order {{order}}</p>"),
        Some("Hello {{name}}, order {{order}}"),
    )
    .expect("compiles")
}

#[test]
fn script_in_data_is_escaped_in_html_and_raw_in_text_when_allowed() {
    let json = r#"{"name":"<script>alert('x')</script>","order":"A&B"}"#;
    let data = TemplateData::parse(json, &LENIENT).expect("lenient policy accepts HTML");
    let out = template().render(&data).expect("renders");
    let html = out.html.expect("html");
    assert!(
        html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("order A&amp;B"));
    assert_eq!(
        out.text.as_deref(),
        Some("Hello <script>alert('x')</script>, order A&B")
    );
    assert_eq!(out.subject, "Hi <script>alert('x')</script>, order A&B");
}

#[test]
fn script_in_data_is_rejected_by_default() {
    let json = r#"{"name":"<script>alert(1)</script>","order":"1"}"#;
    assert_eq!(
        TemplateData::parse(json, &DataPolicy::default()).err(),
        Some(TemplateDataError::HtmlInValue("name".into()))
    );
    // A bare '<' is not markup.
    assert!(TemplateData::parse(r#"{"name":"1 < 2","order":"<3"}"#, &DataPolicy::default()).is_ok());
}

#[test]
fn missing_variable_is_an_error_never_an_empty_string() {
    let t = template();
    let data = TemplateData::parse(r#"{"name":"张三"}"#, &DataPolicy::default()).expect("valid");
    assert_eq!(t.render(&data), Err(RenderError::MissingVariable("order".into())));
    assert_eq!(
        t.render(&TemplateData::empty()),
        Err(RenderError::MissingVariable("name".into()))
    );
    // Also for a variable used only in the Text body.
    let t = CompiledTemplate::compile("s", Some("<p>x</p>"), Some("{{only_text}}")).expect("compiles");
    assert_eq!(
        t.render(&TemplateData::empty()),
        Err(RenderError::MissingVariable("only_text".into()))
    );
    // null is refused up front rather than rendered as "".
    assert_eq!(
        TemplateData::parse(r#"{"name":null,"order":1}"#, &DataPolicy::default()).err(),
        Some(TemplateDataError::NullValue("name".into()))
    );
}

#[test]
fn subject_variables_rendered_and_checked() {
    let t = CompiledTemplate::compile("{{greeting}}，{{name}}", None, Some("body")).expect("compiles");
    let data = |greeting: &str| {
        TemplateData::from_pairs([("greeting", greeting), ("name", "李雷")], &DataPolicy::default()).expect("valid")
    };
    assert_eq!(t.render(&data("您好")).map(|c| c.subject), Ok("您好，李雷".to_owned()));
    // Exactly at the limit: 998 bytes in total.
    let fill = MAX_SUBJECT_BYTES - "，李雷".len();
    assert_eq!(
        t.render(&data(&"a".repeat(fill))).map(|c| c.subject.len()),
        Ok(MAX_SUBJECT_BYTES)
    );
    assert_eq!(
        t.render(&data(&"a".repeat(fill + 1))),
        Err(RenderError::SubjectTooLong {
            bytes: MAX_SUBJECT_BYTES + 1,
            max: MAX_SUBJECT_BYTES
        })
    );
    // Multi-byte characters are counted in bytes.
    assert!(matches!(
        t.render(&data(&"中".repeat(330))),
        Err(RenderError::SubjectTooLong { .. })
    ));
    assert_eq!(
        t.render(&data("hi\r\nBcc: victim@example.com")),
        Err(RenderError::SubjectHasLineBreak)
    );
    assert_eq!(t.render(&data("hi\n")), Err(RenderError::SubjectHasLineBreak));
}

#[test]
fn scalars_and_unsubscribe_url() {
    let t = CompiledTemplate::compile(
        "{{n}} {{f}} {{b}}",
        Some("<a href=\"{{unsubscribe_url}}\">unsubscribe</a>"),
        None,
    )
    .expect("compiles");
    let mut data =
        TemplateData::parse(r#"{"n":42,"f":1.5,"b":true,"unused":"x"}"#, &DataPolicy::default()).expect("valid");
    assert_eq!(
        t.render(&data),
        Err(RenderError::MissingVariable(UNSUBSCRIBE_PLACEHOLDER.into()))
    );
    data.set_unsubscribe_url("https://m.example/u?t=a&s=b");
    let out = t.render(&data).expect("renders");
    assert_eq!(out.subject, "42 1.5 true");
    assert_eq!(
        out.html.as_deref(),
        Some("<a href=\"https://m.example/u?t&#x3D;a&amp;s&#x3D;b\">unsubscribe</a>")
    );
    assert_eq!(out.text, None);
}

#[test]
fn data_errors() {
    let policy = DataPolicy::default();
    assert!(matches!(
        TemplateData::parse("not json", &policy),
        Err(TemplateDataError::NotJson(_))
    ));
    assert_eq!(
        TemplateData::parse("[]", &policy).err(),
        Some(TemplateDataError::NotAnObject)
    );
    assert_eq!(
        TemplateData::parse(r#"{"a":{"b":1}}"#, &policy).err(),
        Some(TemplateDataError::NestedValue("a".into()))
    );
}
