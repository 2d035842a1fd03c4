//! `mailpush receivers import`: a CSV file into a recipient list, streamed in chunks.

use crate::{AdminError, Report};
use mailpush_core::Mailpush;
use mailpush_core::{AddDetailsReport, ReceiverDetailInput};
use mailpush_model::batch::ReceiverStatus;
use serde_json::json;
use std::io::BufRead;
use std::path::Path;

/// Recipients admitted per transaction.
const CHUNK: usize = 5_000;

/// One recipient of a CSV line: `email` or `email,TemplateData`, where TemplateData is a JSON object, CSV-quoted
/// (`"{""name"":""Ann""}"`) or written as is (its commas unquoted). `None` for an empty line.
pub fn parse_line(line: &str) -> Option<ReceiverDetailInput> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return None;
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    let record = reader.records().next().and_then(Result::ok);
    let (email, template_data) = match record {
        Some(r) if r.len() <= 2 => (r.get(0).unwrap_or_default().to_string(), r.get(1).map(str::to_string)),
        // More fields: TemplateData written without quotes, its own commas splitting it; take it whole.
        _ => match line.split_once(',') {
            Some((email, rest)) => (
                email.trim().trim_matches('"').to_string(),
                Some(rest.trim().to_string()),
            ),
            None => (line.trim().to_string(), None),
        },
    };
    Some(ReceiverDetailInput {
        email,
        template_data: template_data.filter(|d| !d.is_empty()),
    })
}

/// Imports `file` into the list `list` of the account `account` (created if missing). A first line starting
/// with `email` is a header. `progress` sees the running totals after each chunk. The list is marked uploading
/// while the import runs and done after it, also when it fails.
pub async fn import(
    core: &Mailpush,
    account: &str,
    list: &str,
    file: &Path,
    mut progress: impl FnMut(&AddDetailsReport),
) -> Result<Report, AdminError> {
    let ctx = core
        .list_accounts()
        .await?
        .into_iter()
        .find(|a| a.name == account)
        .ok_or_else(|| AdminError::Invalid(format!("no account named {account}")))?;
    let io = |source| AdminError::Io {
        path: file.display().to_string(),
        source,
    };
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(io)?);
    let (id, total) = import_lines(core, &ctx, list, reader.lines().map(|l| l.map_err(io)), &mut progress).await?;
    let json = json!({
        "ReceiverId": id, "TotalCount": total.total, "ValidCount": total.valid,
        "InvalidCount": total.invalid, "TooLongCount": total.too_long,
        "EmptyEmailCount": total.empty, "RepeatCount": total.repeated,
    });
    Ok(Report::new(json.to_string(), json))
}

/// Imports CSV `lines` (the forms of [`parse_line`]; a first line starting with `email` is a header) into the
/// list named `list` of `ctx` (created if missing), in chunks; `progress` sees the running totals after each.
/// The list is marked uploading while the import runs and done after it, also when it fails. Returns the list's
/// ReceiverId and the totals.
pub async fn import_lines(
    core: &Mailpush,
    ctx: &mailpush_core::AccountContext,
    list: &str,
    lines: impl Iterator<Item = Result<String, AdminError>>,
    progress: &mut impl FnMut(&AddDetailsReport),
) -> Result<(i64, AddDetailsReport), AdminError> {
    let id = match core.receiver_named(ctx, list).await? {
        Some(r) => r.id,
        None => core.create_receiver(ctx, list, None).await?,
    };
    core.set_receiver_status(ctx, id, ReceiverStatus::Uploading).await?;
    let mut total = AddDetailsReport::default();
    let result = async {
        let mut chunk = Vec::with_capacity(CHUNK);
        for (n, line) in lines.enumerate() {
            let line = line?;
            if n == 0 && line.trim_start().to_ascii_lowercase().starts_with("email") {
                continue;
            }
            chunk.extend(parse_line(&line));
            if chunk.len() == CHUNK {
                add(core, ctx, id, &mut chunk, &mut total).await?;
                progress(&total);
            }
        }
        add(core, ctx, id, &mut chunk, &mut total).await?;
        progress(&total);
        Ok::<(), AdminError>(())
    }
    .await;
    let done = core.set_receiver_status(ctx, id, ReceiverStatus::Done).await;
    result?;
    done?;
    Ok((id, total))
}

async fn add(
    core: &Mailpush,
    ctx: &mailpush_core::AccountContext,
    id: i64,
    chunk: &mut Vec<ReceiverDetailInput>,
    total: &mut AddDetailsReport,
) -> Result<(), AdminError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let r = core.add_receiver_details(ctx, id, std::mem::take(chunk)).await?;
    total.total += r.total;
    total.valid += r.valid;
    total.invalid += r.invalid;
    total.too_long += r.too_long;
    total.empty += r.empty;
    total.repeated += r.repeated;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Option<(String, Option<String>)> {
        parse_line(line).map(|d| (d.email, d.template_data))
    }

    #[test]
    fn lines_of_every_form() {
        assert_eq!(parsed("ann@example.com"), Some(("ann@example.com".into(), None)));
        assert_eq!(parsed(" \r\n"), None);
        assert_eq!(
            parsed("ann@example.com,\"{\"\"name\"\":\"\"Ann, Jr.\"\"}\""),
            Some(("ann@example.com".into(), Some("{\"name\":\"Ann, Jr.\"}".into())))
        );
        assert_eq!(
            parsed("ann@example.com,{\"name\":\"Ann\",\"n\":1}\r"),
            Some(("ann@example.com".into(), Some("{\"name\":\"Ann\",\"n\":1}".into())))
        );
        assert_eq!(parsed("\"bob@example.com\" , "), Some(("bob@example.com".into(), None)));
    }
}
