//! Per-day statistics as an SVG line chart, drawn on the server (no chart library in the browser).

use std::fmt::Write;

/// One line: its name (shown in the legend), colour and one value per day.
pub(crate) struct Series<'a> {
    pub(crate) label: &'a str,
    pub(crate) color: &'a str,
    pub(crate) values: Vec<i64>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of `series` over `days` (labels under the x axis).
pub(crate) fn line_chart(days: &[String], series: &[Series<'_>]) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 300.0, 48.0, 16.0, 16.0, 56.0);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = days.len().max(1);
    let step = if n > 1 {
        (w - left - right) / (n - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| left + step * i as f64;
    let y = |v: i64| top + (h - top - bottom) * (1.0 - v as f64 / max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" data-max="{max}">"#
    );
    for k in 0..=4 {
        let v = (max * f64::from(k) / 4.0).round() as i64;
        let yy = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e6ee"/><text x="{}" y="{:.1}" font-size="11" fill="#6b7385" text-anchor="end">{v}</text>"##,
            w - right,
            left - 6.0,
            yy + 4.0
        );
    }
    let every = n.div_ceil(10).max(1);
    for (i, d) in days.iter().enumerate() {
        if i % every == 0 || i + 1 == n {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="11" fill="#6b7385" text-anchor="middle">{}</text>"##,
                x(i),
                h - bottom + 16.0,
                escape(d.get(5..).unwrap_or(d))
            );
        }
    }
    for (si, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}" data-series="{}" data-total="{}"/>"#,
            s.color,
            points.join(" "),
            escape(s.label),
            s.values.iter().sum::<i64>()
        );
        for (i, v) in s.values.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"><title>{} {}: {v}</title></circle>"#,
                x(i),
                y(*v),
                s.color,
                escape(&days[i.min(days.len().saturating_sub(1))]),
                escape(s.label)
            );
        }
        let lx = left + (si as f64) * 120.0;
        let _ = write!(
            svg,
            r##"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="12" fill="#1d2330">{}</text>"##,
            h - 18.0,
            s.color,
            lx + 14.0,
            h - 9.0,
            escape(s.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #[test]
    fn chart_has_one_line_per_series() {
        let days = vec!["2026-12-01".to_string(), "2026-12-02".to_string()];
        let svg = super::line_chart(
            &days,
            &[super::Series {
                label: "delivered",
                color: "#16814a",
                values: vec![1, 5],
            }],
        );
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(r#"data-total="6""#));
    }
}
