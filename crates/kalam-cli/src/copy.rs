//! `\copy`: a table or a query to a CSV file, and a CSV file into a table,
//! through the client as psql's `\copy` does (the file is the user's, not
//! the server's).
//!
//! `\copy ns.t [(a, b)] FROM 'file.csv' | STDIN [WITH] [CSV] [HEADER [false]] [DELIMITER ',']`
//! `\copy ns.t | (SELECT ...) TO 'file.csv' | STDOUT [...]`
//!
//! Rows go in as INSERTs of up to [`BATCH_ROWS`] rows (and about
//! [`BATCH_BYTES`] of SQL) each; each batch commits as one statement, so a
//! bad row stops the copy with the batches before it committed, and the
//! message says which line.

use crate::client::{Client, ClientError};
use crate::format;
use std::io::{BufRead, Write};

pub const BATCH_ROWS: usize = 1000;
pub const BATCH_BYTES: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
pub struct Copy {
    /// A table name, or a parenthesised query (TO only).
    pub source: String,
    pub columns: Option<Vec<String>>,
    pub from: bool,
    /// `None` for STDIN/STDOUT.
    pub file: Option<String>,
    pub header: bool,
    pub delimiter: u8,
}

/// Splits the argument text into words, keeping quoted strings and a
/// parenthesised group whole.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == ',' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        word.push('\'');
                    }
                    Some('\'') => break,
                    Some(d) => word.push(d),
                    None => return Err("unterminated quoted string".into()),
                }
            }
            out.push(format!("'{word}"));
            continue;
        }
        if c == '(' {
            let mut depth = 0;
            for d in chars.by_ref() {
                word.push(d);
                match d {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
            if depth != 0 {
                return Err("unbalanced parentheses".into());
            }
            out.push(word);
            continue;
        }
        while let Some(&d) = chars.peek() {
            if d.is_whitespace() || d == '(' || d == ',' {
                break;
            }
            word.push(d);
            chars.next();
        }
        out.push(word);
    }
    Ok(out)
}

pub const USAGE: &str =
    "usage: \\copy <table> [(columns)] FROM '<file>'|STDIN [CSV] [HEADER [false]] \
     [DELIMITER '<c>']\n       \\copy <table>|(<query>) TO '<file>'|STDOUT [...]";

pub fn parse(args: &str) -> Result<Copy, String> {
    let mut it = words(args)?.into_iter().peekable();
    let source = it.next().ok_or(USAGE)?;
    let columns = match it.peek() {
        Some(w) if w.starts_with('(') && !source.starts_with('(') => {
            let list = it.next().unwrap_or_default();
            Some(
                list.trim_matches(|c| c == '(' || c == ')')
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
            )
        }
        _ => None,
    };
    let direction = it.next().ok_or(USAGE)?.to_ascii_uppercase();
    let from = match direction.as_str() {
        "FROM" => true,
        "TO" => false,
        _ => return Err(USAGE.into()),
    };
    if from && source.starts_with('(') {
        return Err("\\copy FROM needs a table, not a query".into());
    }
    let target = it.next().ok_or(USAGE)?;
    let file = match target.to_ascii_uppercase().as_str() {
        "STDIN" | "STDOUT" | "PSTDIN" | "PSTDOUT" => None,
        _ => Some(target.trim_start_matches('\'').to_string()),
    };
    let mut copy = Copy {
        source,
        columns,
        from,
        file,
        header: true,
        delimiter: b',',
    };
    let mut options: Vec<String> = Vec::new();
    for w in it {
        // `WITH (FORMAT csv, HEADER)` arrives as one group.
        if w.starts_with('(') {
            options.extend(words(w.trim_matches(|c| c == '(' || c == ')'))?);
        } else {
            options.push(w);
        }
    }
    let mut options = options.into_iter().peekable();
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_str() {
            "WITH" | "CSV" => {}
            "FORMAT" => match options.next().map(|f| f.to_ascii_uppercase()) {
                Some(f) if f == "CSV" => {}
                other => {
                    return Err(format!(
                        "\\copy writes and reads CSV only, not {}",
                        other.unwrap_or_default()
                    ))
                }
            },
            "HEADER" => {
                if let Some(v) = options.peek().map(|v| v.to_ascii_uppercase()) {
                    if matches!(v.as_str(), "TRUE" | "FALSE" | "ON" | "OFF") {
                        copy.header = matches!(v.as_str(), "TRUE" | "ON");
                        options.next();
                    }
                }
            }
            "DELIMITER" => {
                let d = options.next().unwrap_or_default();
                let d = d.trim_start_matches('\'');
                if d.len() != 1 {
                    return Err("DELIMITER takes one character".into());
                }
                copy.delimiter = d.as_bytes()[0];
            }
            other => return Err(format!("unknown \\copy option {other}\n{USAGE}")),
        }
    }
    Ok(copy)
}

/// Runs a `\copy`; the row count for psql's `COPY n`.
pub fn run(
    client: &Client,
    namespace: Option<&str>,
    copy: &Copy,
    out: &mut dyn Write,
) -> Result<u64, String> {
    if copy.from {
        match &copy.file {
            Some(path) => {
                let file =
                    std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                copy_in(client, namespace, copy, std::io::BufReader::new(file))
            }
            None => copy_in(client, namespace, copy, std::io::stdin().lock()),
        }
    } else {
        let query = if let Some(inner) = copy
            .source
            .strip_prefix('(')
            .and_then(|q| q.strip_suffix(')'))
        {
            inner.to_string()
        } else {
            let columns = copy
                .columns
                .as_ref()
                .map_or("*".to_string(), |c| c.join(", "));
            format!("SELECT {columns} FROM {}", copy.source)
        };
        let (results, _) = client
            .sql(&query, namespace)
            .map_err(|e: ClientError| e.to_string())?;
        let result = results.into_iter().last().unwrap_or_default();
        let text = format::csv_with(&format::readable(&result), copy.delimiter, copy.header);
        match &copy.file {
            Some(path) => {
                std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?
            }
            None => out
                .write_all(text.as_bytes())
                .map_err(|e| format!("cannot write the rows: {e}"))?,
        }
        Ok(result.rows.len() as u64)
    }
}

fn is_numeric(data_type: &str) -> bool {
    matches!(
        data_type,
        "SmallInt" | "Int" | "BigInt" | "Float" | "Double"
    ) || data_type.starts_with("Decimal")
}

/// One CSV field as a SQL literal of its column's type; an empty field is
/// NULL.
fn literal(field: &str, data_type: &str) -> Result<String, String> {
    if field.is_empty() {
        return Ok("NULL".into());
    }
    if is_numeric(data_type) {
        return match field.trim().parse::<f64>() {
            Ok(_) => Ok(field.trim().to_string()),
            Err(_) => Err(format!("'{field}' is not a number")),
        };
    }
    if data_type == "Boolean" {
        return match field.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "on" => Ok("TRUE".into()),
            "false" | "f" | "no" | "n" | "0" | "off" => Ok("FALSE".into()),
            _ => Err(format!("'{field}' is not a boolean")),
        };
    }
    Ok(format!("'{}'", field.replace('\'', "''")))
}

fn copy_in(
    client: &Client,
    namespace: Option<&str>,
    copy: &Copy,
    input: impl BufRead,
) -> Result<u64, String> {
    // The columns' types, from an empty result of the same columns.
    let columns = copy
        .columns
        .as_ref()
        .map_or("*".to_string(), |c| c.join(", "));
    let (results, _) = client
        .sql(
            &format!("SELECT {columns} FROM {} LIMIT 0", copy.source),
            namespace,
        )
        .map_err(|e| e.to_string())?;
    let shape = results.into_iter().last().unwrap_or_default();
    let names = shape
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let head = format!("INSERT INTO {} ({names}) VALUES ", copy.source);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(copy.header)
        .delimiter(copy.delimiter)
        .flexible(true)
        .from_reader(input);
    let mut batch = String::new();
    let mut batch_rows = 0usize;
    let mut batch_line = 0u64;
    let mut total = 0u64;
    let send = |batch: &mut String, rows: &mut usize, line: u64| -> Result<(), String> {
        if *rows == 0 {
            return Ok(());
        }
        client.sql(batch, namespace).map_err(|e| {
            format!("{e}\n(the rows from line {line} on were not copied; those before were)")
        })?;
        batch.clear();
        *rows = 0;
        Ok(())
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("{e} (after {total} rows)")),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != shape.columns.len() {
            send(&mut batch, &mut batch_rows, batch_line)?;
            return Err(format!(
                "line {line}: {} fields, the table has {} columns ({total} rows copied)",
                record.len(),
                shape.columns.len()
            ));
        }
        let values = record
            .iter()
            .zip(&shape.types)
            .map(|(field, t)| literal(field, t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("line {line}: {e} ({total} rows copied before it)"));
        let values = match values {
            Ok(v) => v,
            Err(e) => {
                send(&mut batch, &mut batch_rows, batch_line)?;
                return Err(e);
            }
        };
        if batch_rows == 0 {
            batch.push_str(&head);
            batch_line = line;
        } else {
            batch.push_str(", ");
        }
        batch.push('(');
        batch.push_str(&values.join(", "));
        batch.push(')');
        batch_rows += 1;
        total += 1;
        if batch_rows >= BATCH_ROWS || batch.len() >= BATCH_BYTES {
            send(&mut batch, &mut batch_rows, batch_line)?;
        }
    }
    send(&mut batch, &mut batch_rows, batch_line)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_psql_spellings() {
        let c =
            parse("app.items (id, name) FROM '/tmp/it''s.csv' WITH (FORMAT csv, HEADER)").unwrap();
        assert_eq!(
            c,
            Copy {
                source: "app.items".into(),
                columns: Some(vec!["id".into(), "name".into()]),
                from: true,
                file: Some("/tmp/it's.csv".into()),
                header: true,
                delimiter: b',',
            }
        );
        let c = parse(
            "(SELECT id FROM app.items WHERE id > 1) TO STDOUT CSV HEADER false DELIMITER ';'",
        )
        .unwrap();
        assert_eq!(c.source, "(SELECT id FROM app.items WHERE id > 1)");
        assert!(!c.from && c.file.is_none() && !c.header && c.delimiter == b';');
        assert!(parse("app.items").is_err());
        assert!(parse("app.items INTO 'x'").is_err());
        assert!(parse("(SELECT 1) FROM 'x'").is_err());
        assert!(parse("app.items TO 'x' FORMAT binary").is_err());
    }

    #[test]
    fn fields_become_typed_literals() {
        assert_eq!(literal("", "Text").unwrap(), "NULL");
        assert_eq!(literal("it's", "Text").unwrap(), "'it''s'");
        assert_eq!(literal("42", "Int").unwrap(), "42");
        assert!(literal("4x", "BigInt").is_err());
        assert!(literal("1; DROP TABLE t", "Int").is_err());
        assert_eq!(literal("t", "Boolean").unwrap(), "TRUE");
        assert_eq!(
            literal("2024-01-02T03:04:05Z", "Timestamp").unwrap(),
            "'2024-01-02T03:04:05Z'"
        );
    }
}
