//! `harness report`: the results page. Everything on it comes from committed files: the
//! regression cells (`results/reference/regress.toml`, each reference table with its run's
//! meta.json), the paper's tables (`results/tables/*.toml`, with the grade of every number,
//! docs/paper-notes.md), and the other committed results under `results/reference/` (their
//! tables, charts and training curves). Written as Markdown (`docs/RESULTS.md`) and as one
//! static HTML page; the output is deterministic, so a stale page shows up as a diff.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::context::Bench;

/// Where the page goes.
#[derive(Debug, Clone)]
pub struct ReportJob {
    /// The Markdown page (default `docs/RESULTS.md`).
    pub markdown: PathBuf,
    /// The HTML page (default `docs/results/index.html`); its charts go beside it.
    pub html: PathBuf,
}

impl ReportJob {
    /// The default places in the workspace.
    pub fn in_workspace(bench: &Bench) -> ReportJob {
        let docs = bench.workspace.root.join("docs");
        ReportJob { markdown: docs.join("RESULTS.md"), html: docs.join("results").join("index.html") }
    }
}

/// What was written.
pub struct ReportOutcome {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// Tables on the page (the HTML page has as many `<table>` elements).
    pub tables: usize,
    /// Charts on the page.
    pub figures: usize,
}

#[derive(Serialize)]
struct Page {
    sections: Vec<Section>,
}

#[derive(Serialize)]
struct Section {
    id: String,
    title: String,
    paragraphs: Vec<String>,
    tables: Vec<Table>,
    figures: Vec<Figure>,
}

#[derive(Serialize)]
struct Table {
    caption: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[derive(Serialize)]
struct Figure {
    caption: String,
    /// Path of the SVG file relative to the Markdown page.
    md_path: String,
    /// Path of the SVG file relative to the HTML page.
    html_path: String,
    #[serde(skip)]
    svg: String,
    #[serde(skip)]
    file_name: String,
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 { format!("{v:.0}") } else { format!("{v:.4}") }
}

/// `git_commit` (and `+dirty`) of a run's meta.json, or why there is none.
fn commit_of(meta: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(meta) else { return "not recorded".into() };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return "not recorded".into() };
    match json.get("git_commit").and_then(|c| c.as_str()) {
        Some(c) => {
            let dirty = json.pointer("/provenance/build/git_dirty") == Some(&serde_json::Value::Bool(true));
            format!("{}{}", &c[..c.len().min(12)], if dirty { " (dirty)" } else { "" })
        }
        None => "not recorded (run made before meta.json carried the commit)".into(),
    }
}

/// A CSV file as a table (every column; numbers to 4 decimals).
fn csv_table(path: &Path, caption: String) -> Result<Table> {
    let df = harness_report::read_csv(path).with_context(|| format!("reading {}", path.display()))?;
    let header: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    let mut rows = Vec::new();
    for i in 0..df.height() {
        let row = df
            .columns()
            .iter()
            .map(|c| match c.get(i) {
                Ok(polars::prelude::AnyValue::Float64(v)) => fmt_value(v),
                Ok(polars::prelude::AnyValue::Float32(v)) => fmt_value(v as f64),
                Ok(polars::prelude::AnyValue::Null) => String::new(),
                Ok(v) => v.get_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                Err(_) => String::new(),
            })
            .collect();
        rows.push(row);
    }
    Ok(Table { caption, header, rows })
}

fn regression_section(bench: &Bench) -> Result<Section> {
    let spec = bench.workspace.reference.join("regress.toml");
    let checks = crate::regress::read_checks(&spec)?;
    let mut rows = Vec::new();
    for c in &checks {
        let table = csv_table(&c.reference, String::new())?;
        let row = table.rows.first().with_context(|| format!("{}: no row", c.reference.display()))?;
        let col = |name: &str| table.header.iter().position(|h| h == name).map(|i| row[i].clone()).unwrap_or_default();
        let metrics: Vec<String> = table
            .header
            .iter()
            .zip(row)
            .filter(|(h, _)| !crate::regress::NOT_METRICS.contains(&h.as_str()))
            .map(|(h, v)| format!("{h} {v}"))
            .collect();
        rows.push(vec![
            c.name.clone(),
            format!("{} {} · {} · {}", col("dataset"), col("split"), col("retriever"), col("method")).replace("  ", " "),
            metrics.join(" · "),
            col("run_id"),
            commit_of(&crate::regress::meta_path(&c.reference)),
            c.anchor.clone().unwrap_or_else(|| "none (this project's own reference)".into()),
            format!("harness regress --only {}", c.name),
            c.command.clone(),
        ]);
    }
    Ok(Section {
        id: "regression-cells".into(),
        title: "Regression cells".into(),
        paragraphs: vec![
            format!(
                "{} cells that `harness regress` reruns on every test run and compares with the committed reference tables (`results/reference/`, tolerances in `regress.toml`). Each value below was measured by this code; the run id names the run that wrote the reference, the commit is the one its binary was built from.",
                checks.len()
            ),
        ],
        tables: vec![Table {
            caption: "Regression cells".into(),
            header: ["check", "cell", "values", "run id", "commit", "agrees with", "rerun", "same cell with harness"].map(String::from).to_vec(),
            rows,
        }],
        figures: Vec::new(),
    })
}

fn paper_section(bench: &Bench) -> Result<Section> {
    let mut tables = Vec::new();
    let mut figures = Vec::new();
    // Tables 1, 2, ... as long as their specs exist; a spec that exists but does not parse is
    // an error, never a table quietly left off the page.
    for n in 1.. {
        let path = crate::reproduce::spec_path(bench, n);
        if !path.is_file() {
            break;
        }
        let t = crate::reproduce::paper_table(&path)?;
        let mut header = vec!["system".to_string()];
        header.extend(t.columns.iter().cloned());
        header.extend(["grade".to_string(), "source".to_string()]);
        let rows = t
            .rows
            .iter()
            .map(|(name, values, source, grade)| {
                let mut row = vec![name.clone()];
                // The paper's digits as printed (shortest form), not padded.
                row.extend(values.iter().map(|v| v.map(|v| v.to_string()).unwrap_or_else(|| "–".into())));
                row.push(match grade.as_str() {
                    "figure" => "approximate (read off a figure)".into(),
                    "secondary" => "secondary (UNCONFIRMED)".into(),
                    other => other.to_string(),
                });
                row.push(source.clone());
                row
            })
            .collect();
        tables.push(Table { caption: format!("Table {}: {} ({}; the paper's numbers)", t.table, t.title, t.metric), header, rows });
        tables.push(Table {
            caption: format!("Table {}: the cells `harness reproduce --table {}` measures beside them", t.table, t.table),
            header: ["cell", "dataset", "measure", "command"].map(String::from).to_vec(),
            rows: t.cells.iter().map(|(l, d, m, c)| vec![l.clone(), d.clone(), m.clone(), c.clone()]).collect(),
        });
        let file_name = format!("paper-table{}.svg", t.table);
        figures.push(Figure {
            caption: format!("Table {}: the paper's values (pale bars: read off a figure)", t.table),
            md_path: format!("results/{file_name}"),
            html_path: file_name.clone(),
            svg: t.chart_svg,
            file_name,
        });
    }
    Ok(Section {
        id: "paper-tables".into(),
        title: "The paper's tables".into(),
        paragraphs: vec![
            "The paper's numbers with their source and grade (docs/paper-notes.md says where each comes from). Our side of each table is measured by `harness reproduce --table N`, which writes every value with its run id; those runs take minutes to hours and are not committed, so this page lists the cells and their commands instead of numbers.".into(),
        ],
        tables,
        figures,
    })
}

/// The first `# ` heading of a README.
fn title_of(readme: &Path) -> Option<String> {
    std::fs::read_to_string(readme).ok()?.lines().find_map(|l| l.strip_prefix("# ").map(|t| t.trim().replace('`', "")))
}

fn reference_sections(bench: &Bench) -> Result<Vec<Section>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&bench.workspace.reference)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("README.md").is_file()).collect();
    dirs.sort();
    let mut sections = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mut tables = Vec::new();
        if dir.join("table.csv").is_file() {
            tables.push(csv_table(&dir.join("table.csv"), format!("results/reference/{name}/table.csv"))?);
        }
        let mut figures = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "svg")).collect();
        entries.sort();
        for svg_path in entries {
            let stem = svg_path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let file_name = format!("{name}-{stem}");
            figures.push(Figure {
                caption: format!("results/reference/{name}/{stem}"),
                md_path: format!("results/{file_name}"),
                html_path: file_name.clone(),
                svg: std::fs::read_to_string(&svg_path).with_context(|| format!("reading {}", svg_path.display()))?,
                file_name,
            });
        }
        let metas: Vec<PathBuf> = ["meta.json", "llm-meta.json"].iter().map(|m| dir.join(m)).filter(|p| p.is_file()).collect();
        let commit = metas.first().map(|m| commit_of(m)).unwrap_or_else(|| "not recorded".into());
        sections.push(Section {
            id: format!("reference-{name}"),
            title: title_of(&dir.join("README.md")).unwrap_or_else(|| name.clone()),
            paragraphs: vec![format!(
                "From `results/reference/{name}/` (its README.md says how it was made, with the commands and what did not work). Commit of its run: {commit}."
            )],
            tables,
            figures,
        });
    }
    Ok(sections)
}

const MARKDOWN: &str = include_str!("../templates/results.md.jinja");
const HTML: &str = include_str!("../templates/results.html.jinja");

/// Writes the results page (Markdown and HTML, charts beside the HTML page).
pub fn report(bench: &Bench, job: &ReportJob) -> Result<ReportOutcome> {
    let mut sections = vec![regression_section(bench)?, paper_section(bench)?];
    sections.extend(reference_sections(bench)?);
    let page = Page { sections };
    let tables = page.sections.iter().map(|s| s.tables.len()).sum();
    let figures: Vec<&Figure> = page.sections.iter().flat_map(|s| &s.figures).collect();

    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None });
    // A Markdown table cell: no pipes, no line breaks.
    env.add_filter("cell", |v: String| v.replace('|', "\\|").replace('\n', " "));
    env.add_template("results.md", MARKDOWN)?;
    env.add_template("results.html", HTML)?;
    let markdown = env.get_template("results.md")?.render(minijinja::context!(page => &page))?;
    let html = env.get_template("results.html")?.render(minijinja::context!(page => &page))?;

    let html_dir = job.html.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&html_dir).with_context(|| format!("creating {}", html_dir.display()))?;
    if let Some(dir) = job.markdown.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for f in &figures {
        harness_core::io::write_atomically(&html_dir.join(&f.file_name), |w| w.write_all(f.svg.as_bytes()))?;
    }
    harness_core::io::write_atomically(&job.markdown, |w| w.write_all(markdown.as_bytes()))?;
    harness_core::io::write_atomically(&job.html, |w| w.write_all(html.as_bytes()))?;
    Ok(ReportOutcome { markdown: job.markdown.clone(), html: job.html.clone(), tables, figures: figures.len() })
}
