//! Result tables of DeepRetrieval Bench as polars DataFrames, written as CSV, Parquet and
//! Markdown (each through a temporary file and a rename).
#![warn(missing_docs)]

use std::path::Path;

use harness_core::trec_eval::Evaluation;
use polars::prelude::*;

/// Errors of the report crate.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// polars failed.
    #[error("table error: {0}")]
    Polars(#[from] PolarsError),
    /// Writing failed.
    #[error(transparent)]
    Core(#[from] harness_core::CoreError),
}

/// Result alias for this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// One row of a results table: a cell (dataset × retriever × method) with its metrics.
#[derive(Debug, Clone)]
pub struct ResultRow {
    /// Dataset name.
    pub dataset: String,
    /// Split name.
    pub split: String,
    /// Retriever with its settings (`bm25(k1=0.9,b=0.4,flat)`).
    pub retriever: String,
    /// Query method (`original`, ...).
    pub method: String,
    /// (column name, value) for each metric, in display order.
    pub metrics: Vec<(String, f64)>,
    /// Queries evaluated.
    pub num_queries: usize,
    /// Wall-clock seconds of the cell: the method's generation, retrieval and scoring (split
    /// in the run's meta.json; a one-off index build is not included).
    pub wall_seconds: f64,
    /// Where the numbers come from: `measured` or `paper (<source>)`.
    pub source: String,
    /// Run identifier (results/runs/<run_id>).
    pub run_id: String,
}

/// Builds the table of `rows`; metric columns are the union of the rows' metrics, in order of
/// first appearance (a row lacking a metric gets null).
pub fn results_frame(rows: &[ResultRow]) -> Result<DataFrame> {
    let mut metric_names: Vec<String> = Vec::new();
    for r in rows {
        for (m, _) in &r.metrics {
            if !metric_names.contains(m) {
                metric_names.push(m.clone());
            }
        }
    }
    let text = |f: &dyn Fn(&ResultRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let mut columns = vec![
        Column::new("dataset".into(), text(&|r| r.dataset.clone())),
        Column::new("split".into(), text(&|r| r.split.clone())),
        Column::new("retriever".into(), text(&|r| r.retriever.clone())),
        Column::new("method".into(), text(&|r| r.method.clone())),
    ];
    for name in &metric_names {
        let values: Vec<Option<f64>> =
            rows.iter().map(|r| r.metrics.iter().find(|(m, _)| m == name).map(|(_, v)| *v)).collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    columns.push(Column::new("queries".into(), rows.iter().map(|r| r.num_queries as u64).collect::<Vec<_>>()));
    columns.push(Column::new("wall_s".into(), rows.iter().map(|r| r.wall_seconds).collect::<Vec<_>>()));
    columns.push(Column::new(
        "queries_per_s".into(),
        rows.iter()
            .map(|r| if r.wall_seconds > 0.0 { Some(r.num_queries as f64 / r.wall_seconds) } else { None })
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new("source".into(), text(&|r| r.source.clone())));
    columns.push(Column::new("run_id".into(), text(&|r| r.run_id.clone())));
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Per-query values of an evaluation: one row per query, one column per measure.
pub fn per_query_frame(eval: &Evaluation) -> Result<DataFrame> {
    let mut columns = vec![Column::new("query_id".into(), eval.per_query.keys().cloned().collect::<Vec<_>>())];
    for (i, m) in eval.measures.iter().enumerate() {
        let values: Vec<f64> = eval.per_query.values().map(|v| v[i]).collect();
        columns.push(Column::new(m.name().as_str().into(), values));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

fn cell(col: &Column, row: usize) -> String {
    match col.get(row) {
        Ok(AnyValue::Null) | Err(_) => String::new(),
        Ok(AnyValue::Float64(v)) => format!("{v:.4}"),
        Ok(AnyValue::String(s)) => s.replace('|', "\\|"),
        Ok(v) => v.to_string(),
    }
}

/// The table as GitHub Markdown, floats with 4 decimals.
pub fn to_markdown(df: &DataFrame) -> String {
    let cols = df.columns();
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", cols.iter().map(|c| c.name().as_str()).collect::<Vec<_>>().join(" | ")));
    out.push_str(&format!("|{}\n", cols.iter().map(|_| "---|").collect::<String>()));
    for row in 0..df.height() {
        out.push_str(&format!("| {} |\n", cols.iter().map(|c| cell(c, row)).collect::<Vec<_>>().join(" | ")));
    }
    out
}

/// Writes `df` as `<stem>.csv`, `<stem>.parquet` and `<stem>.md` in `dir`.
pub fn write_all_formats(df: &DataFrame, dir: &Path, stem: &str) -> Result<()> {
    write_csv(df, &dir.join(format!("{stem}.csv")))?;
    write_parquet(df, &dir.join(format!("{stem}.parquet")))?;
    let md = to_markdown(df);
    harness_core::io::write_atomically(&dir.join(format!("{stem}.md")), |w| w.write_all(md.as_bytes()))?;
    Ok(())
}

fn to_io(e: PolarsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Writes `df` as CSV.
pub fn write_csv(df: &DataFrame, path: &Path) -> Result<()> {
    let mut df = df.clone();
    harness_core::io::write_atomically(path, |w| CsvWriter::new(w).finish(&mut df).map_err(to_io))?;
    Ok(())
}

/// Writes `df` as Parquet.
pub fn write_parquet(df: &DataFrame, path: &Path) -> Result<()> {
    let mut df = df.clone();
    harness_core::io::write_atomically(path, |w| ParquetWriter::new(w).finish(&mut df).map(|_| ()).map_err(to_io))?;
    Ok(())
}

/// Reads a CSV table written by [`write_csv`].
pub fn read_csv(path: &Path) -> Result<DataFrame> {
    Ok(CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(path.into()))?.finish()?)
}

/// Pretty-printed table for the terminal: every row and column, 4 decimals, without the
/// run-id column (it names the output folder, printed separately).
pub fn display(df: &DataFrame) -> String {
    // polars reads its display settings from the environment; the process is single-purpose
    // and sets them before any other thread reads them.
    for (k, v) in [
        ("POLARS_FMT_MAX_COLS", "-1"),
        ("POLARS_FMT_MAX_ROWS", "-1"),
        ("POLARS_FMT_STR_LEN", "80"),
        ("POLARS_TABLE_WIDTH", "220"),
        ("POLARS_FMT_TABLE_HIDE_COLUMN_DATA_TYPES", "1"),
        ("POLARS_FMT_TABLE_HIDE_DATAFRAME_SHAPE_INFORMATION", "1"),
    ] {
        std::env::set_var(k, v);
    }
    polars_core::fmt::set_float_precision(Some(4));
    let shown = df.drop("run_id").unwrap_or_else(|_| df.clone());
    format!("{shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, ndcg: f64) -> ResultRow {
        ResultRow {
            dataset: "scifact".into(),
            split: "test".into(),
            retriever: "bm25".into(),
            method: method.into(),
            metrics: vec![("ndcg_cut_10".into(), ndcg)],
            num_queries: 300,
            wall_seconds: 0.25,
            source: "measured".into(),
            run_id: "r1".into(),
        }
    }

    #[test]
    fn tables_round_trip_through_csv_and_parquet() {
        let df = results_frame(&[row("original", 0.6789), row("rm3", 0.7)]).unwrap();
        assert_eq!(df.height(), 2);
        let dir = tempfile::tempdir().unwrap();
        write_all_formats(&df, dir.path(), "table").unwrap();
        let back = read_csv(&dir.path().join("table.csv")).unwrap();
        assert_eq!(back.column("ndcg_cut_10").unwrap().f64().unwrap().get(0), Some(0.6789));
        assert_eq!(back.column("queries_per_s").unwrap().f64().unwrap().get(0), Some(1200.0));
        let md = std::fs::read_to_string(dir.path().join("table.md")).unwrap();
        assert!(md.contains("| scifact | test | bm25 | original | 0.6789 | 300 |"), "{md}");
        assert!(dir.path().join("table.parquet").metadata().unwrap().len() > 0);
    }

    #[test]
    fn tables_of_different_families_stack_wide_and_long() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        std::fs::write(&a, "dataset,split,retriever,method,ndcg_cut_10,queries,wall_s,queries_per_s,source,run_id\nscifact,test,bm25,original,0.6789,300,0.5,600.0,measured,r1\n").unwrap();
        std::fs::write(&b, "dataset,split,retriever,method,ex_dr,ex_test_suite,queries,wall_s,queries_per_s,source,run_id\nspider,dev,sqlite,gold,1.0,0.98,972,3.0,324.0,measured,r2\n").unwrap();
        let wide = stack_tables(&[a, b]).unwrap();
        assert_eq!(wide.height(), 2);
        assert_eq!(wide.column("ndcg_cut_10").unwrap().f64().unwrap().get(1), None);
        assert_eq!(wide.column("ex_dr").unwrap().f64().unwrap().get(1), Some(1.0));
        let long = long_format(&wide).unwrap();
        assert_eq!(long.height(), 3, "one row per measured value: ndcg_cut_10, ex_dr, ex_test_suite");
        let measures: Vec<&str> = (0..long.height()).map(|i| long.column("measure").unwrap().str().unwrap().get(i).unwrap()).collect();
        assert_eq!(measures, ["ndcg_cut_10", "ex_dr", "ex_test_suite"]);
        assert_eq!(long.column("dataset").unwrap().str().unwrap().get(2), Some("spider"));
        assert_eq!(long.column("wall_s").unwrap().f64().unwrap().get(0), Some(0.5));
        assert_eq!(long.column("run_id").unwrap().str().unwrap().get(1), Some("r2"));
    }
}

/// Columns of a result table that describe its row; every other column is a measure.
pub const ROW_FIELDS: [&str; 9] = ["dataset", "split", "retriever", "method", "queries", "wall_s", "queries_per_s", "source", "run_id"];

/// Stacks results tables read from `table.csv` files into one wide table: every column of any
/// of them, empty where a table lacks it (runs of different task families have different
/// measures), columns in order of first appearance.
pub fn stack_tables(paths: &[std::path::PathBuf]) -> Result<DataFrame> {
    let frames = paths.iter().map(|p| read_csv(p)).collect::<Result<Vec<_>>>()?;
    let mut names: Vec<PlSmallStr> = Vec::new();
    for f in &frames {
        for n in f.get_column_names() {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for f in frames {
        let height = f.height();
        let columns: Vec<Column> = names
            .iter()
            .map(|n| match f.column(n) {
                Ok(c) => c.clone(),
                Err(_) => {
                    let kind = if ROW_FIELDS.contains(&n.as_str()) && !matches!(n.as_str(), "queries" | "wall_s" | "queries_per_s") { DataType::String } else { DataType::Float64 };
                    Column::full_null(n.clone(), height, &kind)
                }
            })
            .collect();
        let frame = DataFrame::new(height, columns)?;
        out = Some(match out {
            None => frame,
            Some(mut acc) => {
                acc.vstack_mut(&frame)?;
                acc
            }
        });
    }
    Ok(out.ok_or_else(|| PolarsError::NoData("no tables to stack".into()))?)
}

/// The same tables in long format, one measured value per row: dataset, split, retriever,
/// method, measure, value, wall_s, source, run_id (the form that stacks any task families).
pub fn long_format(wide: &DataFrame) -> Result<DataFrame> {
    let text = |name: &str, i: usize| -> String {
        wide.column(name).ok().and_then(|c| c.get(i).ok()).map(|v| match v {
            AnyValue::Null => String::new(),
            AnyValue::String(s) => s.to_string(),
            other => other.to_string(),
        }).unwrap_or_default()
    };
    let number = |name: &str, i: usize| -> Option<f64> { wide.column(name).ok().and_then(|c| c.get(i).ok()).and_then(|v| v.extract::<f64>()) };
    let measures: Vec<String> = wide.get_column_names().iter().map(|n| n.to_string()).filter(|n| !ROW_FIELDS.contains(&n.as_str())).collect();
    let (mut cols, mut measure, mut value, mut wall): ([Vec<String>; 6], Vec<String>, Vec<f64>, Vec<Option<f64>>) = Default::default();
    for i in 0..wide.height() {
        for m in &measures {
            let Some(v) = number(m, i) else { continue };
            for (k, field) in ["dataset", "split", "retriever", "method", "source", "run_id"].iter().enumerate() {
                cols[k].push(text(field, i));
            }
            measure.push(m.clone());
            value.push(v);
            wall.push(number("wall_s", i));
        }
    }
    let [dataset, split, retriever, method, source, run_id] = cols;
    Ok(DataFrame::new_infer_height(vec![
        Column::new("dataset".into(), dataset),
        Column::new("split".into(), split),
        Column::new("retriever".into(), retriever),
        Column::new("method".into(), method),
        Column::new("measure".into(), measure),
        Column::new("value".into(), value),
        Column::new("wall_s".into(), wall),
        Column::new("source".into(), source),
        Column::new("run_id".into(), run_id),
    ])?)

}
