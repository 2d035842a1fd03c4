//! Render throughput: a ~5 KB HTML template with 10 placeholders.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailpush_template::{CompiledTemplate, DataPolicy, TemplateCache, TemplateData, TemplateKey};

const VARS: [&str; 10] = [
    "name", "order_id", "amount", "date", "city", "product", "quantity", "code", "agent", "company",
];

fn html_template() -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>td{padding:4px} .x{color:#333}</style></head><body><table style=\"width:100%\">",
    );
    let mut i = 0;
    while html.len() < 5_000 {
        let var = VARS[i % VARS.len()];
        html.push_str(&format!(
            "<tr><td class=\"x\">Row {i}: dear {{{{{var}}}}}, this line describes your order in some detail, 您的订单详情如下。</td></tr>\n"
        ));
        i += 1;
    }
    html.push_str("</table><p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p></body></html>");
    html
}

fn data() -> TemplateData {
    let pairs = VARS.iter().map(|v| (*v, format!("value of {v} <&> 值")));
    let mut data = TemplateData::from_pairs(
        pairs,
        &DataPolicy {
            reject_html: false,
            ..DataPolicy::default()
        },
    )
    .expect("bench data is valid");
    data.set_unsubscribe_url("https://mail.example.com/u/abcdef0123456789");
    data
}

fn bench(c: &mut Criterion) {
    let html = html_template();
    let template = CompiledTemplate::compile(
        "Order {{order_id}} for {{name}}",
        Some(&html),
        Some("Hi {{name}}, order {{order_id}}."),
    )
    .expect("bench template compiles");
    let data = data();
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("html_{}b_10_vars", html.len()), |b| {
        b.iter(|| black_box(template.render(black_box(&data)).expect("renders")))
    });
    let cache: TemplateCache = TemplateCache::new(1024);
    cache.insert(TemplateKey::new(1, 1), template.clone());
    group.bench_function("cache_get_with_subject_render", |b| {
        b.iter(|| {
            let t = cache.get(&TemplateKey::new(1, 1)).expect("cached");
            let t = t.with_subject("Your order {{order_id}}").expect("subject compiles");
            black_box(t.render(black_box(&data)).expect("renders"))
        })
    });
    group.bench_function("compile", |b| {
        b.iter(|| {
            black_box(CompiledTemplate::compile("Order {{order_id}}", Some(black_box(&html)), None).expect("compiles"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
