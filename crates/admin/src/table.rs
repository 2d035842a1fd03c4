//! Text tables: columns padded to their widest cell (at most a cap), the last column unpadded.

/// Renders `header` and `rows` as aligned columns separated by two spaces; a cell wider than `cap` characters
/// widens nothing (it simply overflows its column).
pub(crate) fn render(header: &[&str], rows: &[Vec<String>], cap: usize) -> String {
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
                .min(cap)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_cap_holds() {
        let rows = vec![
            vec!["TXT".to_string(), "a".to_string(), "x".to_string()],
            vec!["MX".to_string(), "long-host".to_string(), "y".to_string()],
        ];
        assert_eq!(
            render(&["TYPE", "HOST", "RESULT"], &rows, 60),
            "TYPE  HOST       RESULT\nTXT   a          x\nMX    long-host  y"
        );
        let wide = vec![vec!["0123456789".to_string(), "z".to_string()]];
        assert_eq!(render(&["A", "B"], &wide, 4), "A     B\n0123456789  z");
    }
}
