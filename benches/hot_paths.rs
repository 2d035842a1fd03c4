//! CPU-only hot paths of one mail: DKIM signing (RSA-2048, ed25519) of a 5 KB mail, the DKIM body hash of
//! 2 KB and 100 KB bodies (mail-auth's canonicaliser against mailpush's), MIME building, address parsing, TC3
//! signature verification and template rendering. `cargo bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mail_auth::common::crypto::HashAlgorithm;
use mail_auth::common::headers::Writable as _;
use mail_auth::dkim::Canonicalization;
use mailpush_api::tc3::{self, Authorization, SignedRequest};
use mailpush_delivery::build_mime;
use mailpush_identity::{KeyAlgorithm, SigningKey, body_hash, keys};
use mailpush_model::{EmailAddress, Mailbox, MessageSpec};
use mailpush_template::{CompiledTemplate, DataPolicy, TemplateData};

const SENTENCES: [&str; 4] = [
    "Your order has left our warehouse this morning and is now on its way to you.",
    "It should arrive within three working days; the carrier will call before delivery.",
    "您的订单已从仓库发出，预计三个工作日内送达。",
    "Thank you for shopping with us, we hope the products meet your expectations.",
];

fn prose(bytes: usize, html: bool) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < bytes {
        if html {
            s.push_str("<p>");
        }
        s.push_str(SENTENCES[i % SENTENCES.len()]);
        s.push_str(if html { "</p>\n" } else { "\n" });
        i += 1;
    }
    s
}

fn spec(html_bytes: usize, text_bytes: usize) -> MessageSpec {
    MessageSpec {
        from: Mailbox::parse("Shop <noreply@shop.example.com>").expect("from"),
        to: vec![EmailAddress::parse("alice@example.org").expect("to")],
        cc: vec![],
        reply_to: vec![],
        subject: "Your order A-1001 has shipped 订单已发货".into(),
        html: Some(prose(html_bytes, true)),
        text: Some(prose(text_bytes, false)),
        attachments: vec![],
        headers: vec![],
        message_id_header: "<0190b2f4-1d2e-7c3a-9b1e-123456789abc@shop.example.com>".into(),
        date_ms: 1_700_000_000_000,
    }
}

fn dkim(c: &mut Criterion) {
    // A 5 KB mail as the worker signs it: built MIME, ~3 KB HTML + ~1.5 KB text.
    let mail = build_mime(&spec(3_000, 1_500)).expect("mime");
    let mut group = c.benchmark_group("dkim_sign");
    group.throughput(Throughput::Elements(1));
    for (name, alg) in [("rsa2048", KeyAlgorithm::Rsa2048), ("ed25519", KeyAlgorithm::Ed25519)] {
        let pair = keys::generate(alg, format!("bench{name}")).expect("generate key");
        let key = SigningKey::from_der("shop.example.com", &pair.selector, alg, &pair.private_der).expect("load key");
        let keys = [key];
        group.bench_function(format!("{name}_{}b", mail.len()), |b| {
            b.iter(|| black_box(keys::sign(black_box(&mail), &keys).expect("sign")))
        });
    }
    group.finish();
}

/// The body of a built mail: what follows the empty line after its header.
fn body_of(mail: &[u8]) -> &[u8] {
    let at = mail.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    &mail[at + 4..]
}

/// The relaxed SHA-256 body hash, as signing computed it before `body_hash`: mail-auth's canonicaliser writing
/// into a buffer (mailpush's former `BufferedSha256`), then one SHA-256 call.
fn mail_auth_body_hash(body: &[u8]) -> Vec<u8> {
    let mut canonical = Vec::with_capacity(8 * 1024);
    Canonicalization::Relaxed.canonical_body(body, 0).write(&mut canonical);
    HashAlgorithm::Sha256.hash(canonical.as_slice()).as_ref().to_vec()
}

fn dkim_body_hash(c: &mut Criterion) {
    // Built MIME bodies (~2 KB and ~100 KB), and a worst case for the run-wise canonicaliser: 100 KB of lines
    // that each need rewriting (a trailing space and a bare LF).
    let small = build_mime(&spec(1_000, 500)).expect("mime");
    let large = build_mime(&spec(50_000, 25_000)).expect("mime");
    let rewritten = prose(100_000, false).replace('\n', " \n").into_bytes();
    let mut group = c.benchmark_group("dkim_body_hash");
    for (name, body) in [
        ("mime", body_of(&small)),
        ("mime", body_of(&large)),
        ("rewritten", rewritten.as_slice()),
    ] {
        assert_eq!(
            mail_auth_body_hash(body),
            body_hash::relaxed_body_hash(body).to_vec(),
            "both ways hash alike"
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("mail_auth_{name}_{}b", body.len()), |b| {
            b.iter(|| black_box(mail_auth_body_hash(black_box(body))))
        });
        group.bench_function(format!("mailpush_{name}_{}b", body.len()), |b| {
            b.iter(|| black_box(body_hash::relaxed_body_hash(black_box(body))))
        });
    }
    group.finish();
}

fn mime(c: &mut Criterion) {
    let s = spec(3_000, 1_500);
    let mut group = c.benchmark_group("mime");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_html_text_5kb", |b| {
        b.iter(|| black_box(build_mime(black_box(&s)).expect("mime")))
    });
    group.finish();
}

fn address(c: &mut Criterion) {
    let mut group = c.benchmark_group("address");
    group.throughput(Throughput::Elements(1));
    group.bench_function("email_ascii", |b| {
        b.iter(|| black_box(EmailAddress::parse(black_box("Alice.Smith+news@mail.example.org")).expect("parse")))
    });
    group.bench_function("email_idn", |b| {
        b.iter(|| black_box(EmailAddress::parse(black_box("张三@例子.测试")).expect("parse")))
    });
    group.bench_function("mailbox_display_name", |b| {
        b.iter(|| black_box(Mailbox::parse(black_box("\"Shop, Inc.\" <noreply@shop.example.com>")).expect("parse")))
    });
    group.finish();
}

fn tc3_verify(c: &mut Criterion) {
    let body = br#"{"FromEmailAddress":"Shop <noreply@shop.example.com>","Destination":["alice@example.org"],"Subject":"Order {{order}}","Template":{"TemplateID":1,"TemplateData":"{\"name\":\"a\",\"order\":\"A-1\"}"},"TriggerType":1}"#;
    let ts = 1_700_000_000;
    let headers = tc3::sign_post(
        "127.0.0.1:8080",
        "SendEmail",
        "2020-10-02",
        body,
        "AKIDbench",
        "secretkey",
        ts,
    );
    let auth_header = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .expect("Authorization header");
    let date = tc3::scope_date(ts);
    let mut group = c.benchmark_group("tc3");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_and_verify_sendemail", |b| {
        b.iter(|| {
            let auth = Authorization::parse(black_box(&auth_header)).expect("parse");
            let req = SignedRequest {
                method: "POST",
                uri: "/",
                query: "",
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("host".into(), "127.0.0.1:8080".into()),
                ],
                payload: Some(body),
                timestamp: ts,
                date: &date,
                service: "ses",
            };
            tc3::verify(&req, &auth, "secretkey", ts, 300).expect("verifies")
        })
    });
    group.finish();
}

fn render(c: &mut Criterion) {
    // The load tool's template: ~1.4 KB HTML + ~700 B text, 2 variables (render of a 5 KB template with 10
    // variables is in crates/template/benches/render.rs).
    let html = format!("<p>Dear {{{{name}}}}, order {{{{order}}}}.</p>{}", prose(1_400, true));
    let text = format!("Dear {{{{name}}}}, order {{{{order}}}}.\n{}", prose(700, false));
    let t = CompiledTemplate::compile("Order {{order}} has shipped", Some(&html), Some(&text)).expect("compile");
    let data = TemplateData::from_pairs(
        [("name", "客户 42".to_string()), ("order", "A-42".to_string())],
        &DataPolicy::default(),
    )
    .expect("data");
    let mut group = c.benchmark_group("template");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_2kb_2_vars", |b| {
        b.iter(|| black_box(t.render(black_box(&data)).expect("render")))
    });
    group.finish();
}

criterion_group!(benches, dkim, dkim_body_hash, mime, address, tc3_verify, render);
criterion_main!(benches);
