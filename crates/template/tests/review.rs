//! Table-driven review tests: for each rule, templates that pass and fail it, in Chinese
//! and English; exact rule sets, reasons present in both languages.

use std::collections::BTreeSet;

use mailpush_template::{
    ContentPart, ForbiddenCategory, Lexicon, ReviewConfig, ReviewInput, ReviewOutcome, ReviewPolicy, ReviewRule,
    TemplateCategory, review,
};

/// 191 visible characters, 1 placeholder, ~33 words: passes every rule for every category.
const EN: &str = "Dear {{name}}, your monthly account statement is ready. It covers every transaction made during the period and shows your current balance. Thank you for choosing our service, and have a pleasant day.";
/// ~165 visible characters of Chinese, 1 placeholder.
const ZH: &str = "尊敬的{{name}}，您好！您本月的账户对账单已经生成，其中列出了本期内的每一笔交易以及当前余额。感谢您一直以来对我们服务的支持与信任，如有任何疑问，欢迎随时回复本邮件与我们的客服团队联系。本期账单中的消费明细已按日期排列，方便您逐笔核对；若您发现任何与实际情况不符的记录，请在三十天内通过官方渠道提交反馈，我们将尽快为您处理。祝您生活愉快！";

use TemplateCategory::{Marketing, Notification, Trigger};

struct Case {
    name: &'static str,
    category: TemplateCategory,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    policy: ReviewPolicy,
    /// Exactly the rules expected to fail (empty: approved).
    expect: &'static [&'static str],
    /// Substrings every one of which must appear in some English reason.
    mention: &'static [&'static str],
}

fn case(name: &'static str, category: TemplateCategory, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        category,
        subject: None,
        html: None,
        text: None,
        policy: ReviewPolicy::default(),
        expect,
        mention: &[],
    }
}

impl Case {
    fn html(mut self, s: impl Into<String>) -> Self {
        self.html = Some(s.into());
        self
    }
    fn text(mut self, s: impl Into<String>) -> Self {
        self.text = Some(s.into());
        self
    }
    fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }
    fn links_allowed(mut self) -> Self {
        self.policy.allow_links = true;
        self
    }
    fn mention(mut self, m: &'static [&'static str]) -> Self {
        self.mention = m;
        self
    }
}

fn p(body: &str) -> String {
    format!("<p>{body}</p>")
}

fn cases() -> Vec<Case> {
    let imgs = |n: usize| {
        (0..n)
            .map(|i| format!("<img src=\"https://cdn.example.com/{i}.png\" alt=\"\">"))
            .collect::<String>()
    };
    vec![
        // --- baseline: clean templates pass in every category and language
        case("en html marketing passes", Marketing, &[]).html(format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>p {{ color: #333 }}</style></head><body><table style=\"width:100%\"><tr><td>{EN}</td></tr></table><p><a href=\"{{{{unsubscribe_url}}}}\">Unsubscribe</a></p></body></html>"
        )),
        case("zh html marketing passes", Marketing, &[]).html(p(ZH)).subject("{{name}}，您的月度账单"),
        case("zh text only passes", Notification, &[]).text(ZH),
        case("en html + text both pass", Notification, &[]).html(p(EN)).text(EN),
        // --- min_text_length
        case("en marketing 100 chars fails", Marketing, &["min_text_length"])
            .text(&EN[..120])
            .mention(&["150", "marketing"]),
        case("zh marketing short fails", Marketing, &["min_text_length"]).html(p(&ZH[..ZH.char_indices().nth(90).map_or(0, |(i, _)| i)])),
        case("zh notification 49 chars fails", Notification, &["min_text_length"]).text("一".repeat(49)).mention(&["49", "50"]),
        case("zh notification 50 chars passes", Notification, &[]).text("一".repeat(50)),
        case("en transactional short fails", TemplateCategory::Transactional, &["min_text_length"]).text("Thanks for your order, it ships soon."),
        case("en test short fails", TemplateCategory::Test, &["min_text_length"]).text("Integration test message body."),
        case("en trigger has no minimum", Trigger, &[]).text("Your verification code is {{code}}. It expires in ten minutes."),
        case("zh trigger has no minimum", Trigger, &[]).html("<p>您的验证码是 <b>{{code}}</b>，5分钟内有效，请勿泄露给他人。</p>"),
        case("markup and placeholders do not count", Notification, &["min_text_length"]).html(
            "<div style=\"font-family: Arial, Helvetica, sans-serif; padding: 24px; background: #ffffff;\"><!-- a long comment that is not visible at all, not one bit --><script>var x = 'not visible either';</script>Hello {{name}}, thanks for reading this short note.</div>"
        ),
        // --- variable_ratio
        case("en 3 vars for 12 words fails", Trigger, &["variable_ratio"])
            .text("Hi {{a}}, order {{b}} ships to {{c}} today; thanks for shopping with us again, friend.")
            .mention(&["3 placeholder", "12 visible word"]),
        case("en 1 var for exactly 5 words passes", Trigger, &[]).text("one two three four five {{x}}"),
        case("en 1 var for 4 words fails", Trigger, &["variable_ratio"]).text("one two three four {{x}}"),
        case("zh 2 vars for 9 chars fails", Trigger, &["variable_ratio"]).text("{{name}}您好，您的验证码{{code}}有效"),
        case("zh 2 vars for 10 chars passes", Trigger, &[]).text("{{name}}您好，您的验证码{{code}}有效期"),
        case("unsubscribe placeholder does not count", Trigger, &[]).html("<p>one two three four five {{x}} <a href=\"{{unsubscribe_url}}\">x</a></p>"),
        // --- all_variables
        case("en all variables fails", Trigger, &["all_variables"]).text("{{greeting}} {{name}}"),
        case("zh all variables html fails", Notification, &["all_variables", "min_text_length"]).html("<p>{{称呼}}</p><p>{{内容}}</p>"),
        // --- empty_content
        case("empty trigger html fails", Trigger, &["empty_content"]).html("<p> &nbsp; </p>"),
        // --- images
        case("50 images pass", Notification, &[]).html(format!("{}{}", imgs(50), p(EN))),
        case("51 images fail", Notification, &["too_many_images"]).html(format!("{}{}", imgs(51), p(ZH))).mention(&["51", "50"]),
        case("image only fails", Trigger, &["image_only"]).html(imgs(2)),
        case("image only with placeholder fails", Marketing, &["image_only", "min_text_length"]).html(format!("{}{{{{name}}}}", imgs(1))),
        case("images with text pass", Marketing, &[]).html(format!("{}{}", imgs(3), p(ZH))),
        // --- forbidden_content
        case("en gambling fails", Notification, &["forbidden_content"])
            .html(p(&format!("{EN} Visit our online casino tonight.")))
            .mention(&["gambling", "casino*"]),
        case("zh add wechat fails", Notification, &["forbidden_content"]).text(format!("{ZH}详情请加微信咨询。")).mention(&["add_contact", "加微信"]),
        case("zh spaced-out term still fails", Notification, &["forbidden_content"]).text(format!("{ZH}欢迎加 Q Q 咨询")),
        case("zh loans and cash back fail", Marketing, &["forbidden_content"]).html(p(&format!("{ZH}低息贷款，好评返现！"))).mention(&["loans", "cash_back"]),
        case("en flash sale in subject fails", Notification, &["forbidden_content"]).subject("Flash sale today!").text(EN),
        case("word boundary: classes/Sussex pass", Notification, &[]).text(format!("{EN} Classes in Sussex.")),
        case("zh lottery tickets fails", Notification, &["forbidden_content"]).text(format!("{ZH}本期彩票开奖")).mention(&["lottery_tickets", "彩票"]),
        // --- links
        case("en url in text fails", Notification, &["link_not_allowed"]).text(format!("{EN} See https://example.com/offer")).mention(&["https://example.com/offer"]),
        case("zh www url fails", Notification, &["link_not_allowed"]).html(p(&format!("{ZH}详见www.example.cn"))),
        case("href to anything fails", Notification, &["link_not_allowed"]).html(format!("{}<a href=\"#top\">top</a>", p(EN))),
        case("href to a variable fails", Notification, &["link_not_allowed"]).html(format!("{}<a href=\"{{{{link}}}}\">go</a>", p(EN))),
        case("unsubscribe placeholder passes", Notification, &[]).html(format!("{}<a href=\"{{{{ unsubscribe_url }}}}\">退订</a>", p(ZH))),
        case("links allowed by policy pass", Notification, &[]).html(format!("{}<a href=\"https://example.com\">x</a>", p(EN))).links_allowed(),
        case("redirect fails even when links allowed", Notification, &["redirect_link"])
            .text(format!("{EN} https://bit.ly/abc"))
            .links_allowed(),
        case("redirect fails twice when links not allowed", Notification, &["redirect_link", "link_not_allowed"])
            .html(format!("{}<a href=\"https://a.example/r?url=https%3A%2F%2Fevil.example\">x</a>", p(EN))),
        case("meta refresh is a redirect", Notification, &["redirect_link"])
            .html(format!("<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">{}", p(EN)))
            .links_allowed(),
        case("javascript link always fails", Notification, &["unsafe_link"]).html(format!("{}<a href=\"javascript:alert(1)\">x</a>", p(EN))).links_allowed(),
        case("img src is not a link", Notification, &[]).html(format!("<img src=\"https://cdn.example.com/logo.png\">{}", p(EN))),
        // --- malformed_html
        case("unclosed inline tag fails", Notification, &["malformed_html"])
            .html(format!("<div><b>{EN}</div>"))
            .mention(&["<b>", "line 1, column 6", "</div>"]),
        case("zh stray close tag fails", Notification, &["malformed_html"]).html(format!("<div>{ZH}</span></div>")).mention(&["</span>"]),
        case("unterminated tag fails", Notification, &["malformed_html"]).html(format!("<p>{EN}</p>\n<a href=\"x")).mention(&["line 2"]),
        case("never closed div fails", Notification, &["malformed_html"]).html(format!("<div>\n<p>{ZH}</p>")),
        case("optional end tags pass", Notification, &[]).html(format!(
            "<html><head><title>t</title></head><body><table><tr><td>{EN}<td>x</tr></table><ul><li>a<li>b</ul><p>x<br><hr/></body></html>"
        )),
        // --- invalid_placeholder
        case("each block fails", Notification, &["invalid_placeholder"]).html(format!("{}{{{{#each items}}}}<p>{{{{this}}}}</p>{{{{/each}}}}", p(EN))).mention(&["{{#each items}}", "line 1"]),
        case("partial fails", Notification, &["invalid_placeholder"]).text(format!("{ZH}{{{{> footer}}}}")).mention(&["partial"]),
        case("triple stash fails", Notification, &["invalid_placeholder"]).html(p(&format!("{EN} {{{{{{raw}}}}}}"))),
        case("path fails", Notification, &["invalid_placeholder"]).text(format!("{EN} {{{{user.name}}}}")),
        case("non-identifier fails", Notification, &["invalid_placeholder"]).text(format!("{EN} {{{{first-name}}}}")).mention(&["identifier"]),
        case("unterminated fails", Notification, &["invalid_placeholder"]).text(format!("{EN} {{{{name")),
        case("subject placeholder fails", Notification, &["invalid_placeholder"]).subject("{{#if vip}}VIP{{/if}} news").text(EN),
        case("comment passes", Notification, &[]).text(format!("{EN}{{{{! internal note }}}}")),
        // --- subject_format
        case("subject with line break fails", Notification, &["subject_format"]).subject("Hello\r\nBcc: x@y.z").text(EN),
        case("subject too long fails", Notification, &["subject_format"]).subject("主".repeat(333)).text(EN).mention(&["999 bytes"]),
        case("subject empty fails", Notification, &["subject_format"]).subject("  ").text(EN),
        case("subject 998 bytes passes", Notification, &[]).subject("a".repeat(998)).text(EN),
        // --- missing_body
        case("no body fails", Notification, &["missing_body"]).subject("Hello"),
        // --- the other language for rules that had cases in one only
        case("zh no body fails", Notification, &["missing_body"]).subject("您好"),
        case("empty en trigger text fails", Trigger, &["empty_content"]).text(" \n\t "),
        case("zh trigger with text passes empty_content", Trigger, &[]).text("您的订单已发货。"),
        case("en 51 images fail", Notification, &["too_many_images"]).html(format!("{}{}", imgs(51), p(EN))),
        case("zh 50 images pass", Notification, &[]).html(format!("{}{}", imgs(50), p(ZH))),
        case("zh javascript link always fails", Notification, &["unsafe_link"]).html(format!("{}<a href=\"javascript:void(0)\">点击这里</a>", p(ZH))).links_allowed(),
        case("zh vbscript link fails", Notification, &["unsafe_link"]).html(format!("{}<a href=\"vbscript:msgbox(1)\">点击</a>", p(ZH))).mention(&["vbscript"]),
        // --- both parts reviewed
        case("short text beside good html fails", Marketing, &["min_text_length"]).html(p(EN)).text("Short."),
        // --- everything at once
        case("many failures reported together", Marketing, &[
            "invalid_placeholder", "malformed_html", "min_text_length", "forbidden_content", "link_not_allowed", "redirect_link", "variable_ratio",
        ])
        .subject("{{a.b}}")
        .html("<div><b>赌场 {{x}} {{y}}</div> https://t.cn/abc {{#each z}}"),
    ]
}

fn rule_names(outcome: &ReviewOutcome) -> BTreeSet<&'static str> {
    outcome.findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn review_table() {
    let lexicon = Lexicon::default();
    let config = ReviewConfig::default();
    let mut failures = Vec::new();
    for c in cases() {
        let input = ReviewInput {
            subject: c.subject.as_deref(),
            html: c.html.as_deref(),
            text: c.text.as_deref(),
            category: c.category,
        };
        let outcome = review(&input, &c.policy, &lexicon, &config);
        let got = rule_names(&outcome);
        let want: BTreeSet<&str> = c.expect.iter().copied().collect();
        if got != want {
            failures.push(format!(
                "{}: expected {want:?}, got {got:?}\n  {}",
                c.name,
                outcome.reasons()
            ));
            continue;
        }
        assert_eq!(outcome.approved, outcome.findings.is_empty(), "{}", c.name);
        for f in &outcome.findings {
            assert!(
                f.reason.len() > 20 && f.reason_zh.chars().count() > 5,
                "{}: thin reason {f:?}",
                c.name
            );
            assert!(
                f.reason_zh.chars().any(|ch| ('\u{4E00}'..='\u{9FFF}').contains(&ch)),
                "{}: zh reason",
                c.name
            );
        }
        for m in c.mention {
            if !outcome.findings.iter().any(|f| f.reason.contains(m)) {
                failures.push(format!("{}: no reason mentions {m:?}\n  {}", c.name, outcome.reasons()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn findings_name_part_and_cap() {
    let outcome = review(
        &ReviewInput::new(Marketing).html(&format!("{}{}", "<div>".repeat(30), p(EN))),
        &ReviewPolicy::default(),
        &Lexicon::default(),
        &ReviewConfig::default(),
    );
    let malformed: Vec<_> = outcome
        .findings
        .iter()
        .filter(|f| f.rule == ReviewRule::MalformedHtml)
        .collect();
    assert_eq!(malformed.len(), 11, "10 listed + 1 summary");
    assert!(malformed.iter().all(|f| f.part == Some(ContentPart::Html)));
    assert!(malformed[10].reason.contains("20 more"));
}

#[test]
fn custom_lexicon_word_boundaries() {
    let lexicon = Lexicon::from_entries([(ForbiddenCategory::Pornography, "ass")]).expect("valid");
    let input_ok = format!("{EN} A first-class experience.");
    let input_bad = format!("{EN} Kick ass.");
    let policy = ReviewPolicy::default();
    let config = ReviewConfig::default();
    assert!(
        review(
            &ReviewInput::new(Notification).text(&input_ok),
            &policy,
            &lexicon,
            &config
        )
        .approved
    );
    let bad = review(
        &ReviewInput::new(Notification).text(&input_bad),
        &policy,
        &lexicon,
        &config,
    );
    assert_eq!(bad.rules(), vec![ReviewRule::ForbiddenContent]);
    assert!(bad.findings[0].reason.contains("pornography") && bad.findings[0].reason.contains("\"ass\""));
    assert!(bad.findings[0].reason_zh.contains("色情"));
}

#[test]
fn config_knobs_are_honoured() {
    let config = ReviewConfig {
        min_chars_marketing: 10,
        words_per_placeholder: 1,
        max_images: 1,
        ..ReviewConfig::default()
    };
    let html = "<img src=a><img src=b><p>short text {{a}} {{b}}</p>";
    let outcome = review(
        &ReviewInput::new(Marketing).html(html),
        &ReviewPolicy::default(),
        &Lexicon::empty(),
        &config,
    );
    assert_eq!(outcome.rules(), vec![ReviewRule::TooManyImages]);
}

#[test]
fn outcome_serializes_with_stable_names() {
    let outcome = review(
        &ReviewInput::new(Trigger).text("{{a}}"),
        &ReviewPolicy::default(),
        &Lexicon::default(),
        &ReviewConfig::default(),
    );
    let json = serde_json::to_value(&outcome).expect("serializes");
    assert_eq!(json["approved"], false);
    assert_eq!(json["findings"][0]["rule"], "all_variables");
    assert_eq!(json["findings"][0]["part"], "text");
    for rule in ReviewRule::ALL {
        assert_eq!(rule.as_str().parse::<ReviewRule>(), Ok(rule));
        assert_eq!(serde_json::to_value(rule).expect("serializes"), rule.as_str());
    }
}

/// Inputs that would take quadratic time in a naive scanner (no timing is asserted; a
/// regression shows up as a test that never finishes).
#[test]
fn hostile_inputs_complete() {
    let inputs = [
        "{{ ".repeat(20_000),
        "{{!-- ".repeat(10_000),
        "{{{ ".repeat(10_000),
        "{{#x}}".repeat(10_000),
        format!("{}{}", "<div>".repeat(10_000), "</span>".repeat(10_000)),
        "<p>x".repeat(20_000),
        "<a href=https://bit.ly/x>".repeat(20_000),
    ];
    for html in &inputs {
        let outcome = review(
            &ReviewInput::new(Marketing).html(html).text(html).subject(html),
            &ReviewPolicy::default(),
            &Lexicon::default(),
            &ReviewConfig::default(),
        );
        assert!(!outcome.approved);
        assert!(outcome.findings.len() < 200, "{}", outcome.findings.len());
    }
}
