//! Markdown tables from the JSON files the report reads: `stylerd bench` output, and the
//! INT8 and flicker results whose exact format other commands own.
//!
//! Owns reading those files and flattening any JSON object into `key | value` rows, so a
//! new field in someone else's JSON shows up without a change here.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::ReportError;

/// Rows shown at most from one flattened document; past that the file is not a summary.
const MAX_ROWS: usize = 200;

/// Reads a JSON object from `path`; a clear error names the file when it is not one.
pub fn read_object(path: &Path) -> Result<Value, ReportError> {
    let input = |message: String| ReportError::Input {
        path: path.into(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| input(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| input(e.to_string()))?;
    if !doc.is_object() {
        return Err(input("expected a JSON object".into()));
    }
    Ok(doc)
}

/// Every numeric (and boolean or short text) leaf as `(dotted.key, rendered value)`.
pub fn flatten(doc: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match v {
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(&key(k), v, out)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(&key(&i.to_string()), v, out)),
            Value::Number(n) => out.push((prefix.into(), number(n.as_f64().unwrap_or(f64::NAN)))),
            Value::Bool(b) => out.push((prefix.into(), b.to_string())),
            Value::String(s) if s.len() <= 80 => out.push((prefix.into(), cell(s))),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", doc, &mut out);
    out
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A `key | value` table of a flattened document.
pub fn key_values(doc: &Value) -> String {
    let rows = flatten(doc);
    let mut s = String::from("| field | value |\n|---|---:|\n");
    for (k, v) in rows.iter().take(MAX_ROWS) {
        let _ = writeln!(s, "| {} | {} |", cell(k), v);
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(s, "\n({} more fields not shown.)", rows.len() - MAX_ROWS);
    }
    s
}

/// The `stylerd bench` document: one row per engine measurement, then the end-to-end run.
pub fn bench(doc: &Value) -> String {
    let mut s = String::new();
    if let Some(model) = doc.get("model").and_then(Value::as_str) {
        let _ = writeln!(s, "Model: `{model}`.\n");
    }
    let f = |v: Option<&Value>| {
        v.and_then(Value::as_f64)
            .map_or("-".into(), |x| format!("{x:.1}"))
    };
    let rows = doc.get("engine").and_then(Value::as_array);
    if let Some(rows) = rows.filter(|r| !r.is_empty()) {
        s.push_str(
            "| size | threads | ours min ms | ours median ms | ours p95 ms | infer median ms | \
             reference median ms | ours / reference |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            let ratio = r
                .get("ratio_median")
                .and_then(Value::as_f64)
                .map_or("-".into(), |x| format!("{x:.3}"));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.get("size").and_then(Value::as_str).unwrap_or("?"),
                r.get("threads").and_then(Value::as_u64).unwrap_or(0),
                f(r.pointer("/ours_ms/min")),
                f(r.pointer("/ours_ms/median")),
                f(r.pointer("/ours_ms/p95")),
                f(r.pointer("/ours_infer_ms/median")),
                f(r.pointer("/reference/stylize_ms/median")),
                ratio,
            );
        }
    } else {
        s.push_str("The bench file has no `engine` rows.\n");
    }
    match doc.get("end_to_end").filter(|v| v.is_object()) {
        Some(e2e) => {
            s.push_str("\nEnd to end (the daemon on a live test source):\n\n");
            s.push_str(&key_values(e2e));
        }
        None => s.push_str("\nNo end-to-end run in this bench file (`--e2e-frames 0`).\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_nested_numbers_with_dotted_keys() {
        let doc = json!({"off":{"flicker":2.5,"ssim_to_unstabilized":1.0},"on":{"flicker":1.25},
                         "ghosting":0.031,"note":"a|b","big":[1,2]});
        let rows = flatten(&doc);
        assert!(rows.contains(&("off.flicker".into(), "2.5000".into())));
        assert!(rows.contains(&("on.flicker".into(), "1.2500".into())));
        assert!(rows.contains(&("big.1".into(), "2".into())));
        assert!(rows.contains(&("note".into(), "a\\|b".into())));
    }

    #[test]
    fn bench_rows_render() {
        let doc = json!({"model":"m","engine":[{"size":"256x256","threads":1,
            "ours_ms":{"min":40.0,"median":41.0,"p95":45.0},"ours_infer_ms":{"median":38.0},
            "reference":{"stylize_ms":{"median":42.0}},"ratio_median":0.976}],"end_to_end":null});
        let md = bench(&doc);
        assert!(
            md.contains("| 256x256 | 1 | 40.0 | 41.0 | 45.0 | 38.0 | 42.0 | 0.976 |"),
            "{md}"
        );
        assert!(md.contains("No end-to-end run"));
    }
}
