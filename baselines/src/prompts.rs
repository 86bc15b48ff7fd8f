//! Task prompts, one template per task family (`baselines/prompts/*.jinja`), each with and without
//! reasoning. Our own wording, with the paper's inputs (PICO; a question; a query or claim; a
//! question and a schema) and its output contract (`harness_core::answer`).
use minijinja::Environment;
use serde::Serialize;

const LITERATURE: &str = include_str!("../prompts/literature.jinja");
const EVIDENCE: &str = include_str!("../prompts/evidence.jinja");
const CLASSIC_IR: &str = include_str!("../prompts/classic-ir.jinja");
const SQL: &str = include_str!("../prompts/sql.jinja");

/// System message with reasoning.
pub const SYSTEM_REASONING: &str = "You are a careful assistant. You think through the task step by step before you answer.";
/// System message without reasoning.
pub const SYSTEM_DIRECT: &str = "You are a careful assistant. You answer directly, in the requested format.";

/// One task instance.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum Task {
    /// PICO → Boolean query for an engine (`PubMed`, `ClinicalTrials.gov`). Reviews without
    /// PICO text (the offline CLEF and Cohen sets) give their `topic` instead.
    Literature { engine: String, p: String, i: String, c: String, o: String, topic: Option<String> },
    /// Question → query over a passage corpus.
    Evidence { corpus: String, question: String },
    /// Query or claim → query. `kind` names the input (`scientific claim`), `goal` what relevant
    /// documents do (`that support or refute it`), `retriever` is `sparse` or `dense`.
    ClassicIr { kind: String, goal: String, retriever: String, text: String },
    /// Question + schema (+ evidence) → SQL.
    Sql { schema: String, question: String, evidence: Option<String> },
}

impl Task {
    /// The JSON key of the answer (`query` or `sql`).
    pub fn answer_key(&self) -> &'static str {
        match self {
            Task::Sql { .. } => "sql",
            _ => "query",
        }
    }

    fn template(&self) -> &'static str {
        match self {
            Task::Literature { .. } => "literature",
            Task::Evidence { .. } => "evidence",
            Task::ClassicIr { .. } => "classic-ir",
            Task::Sql { .. } => "sql",
        }
    }

    /// A classic-IR task: `input` names what the text is (`scientific claim`), `goal` what
    /// relevant documents do (`that support or refute it`); both come from the dataset's card.
    pub fn classic_ir(input: &str, goal: &str, retriever: &str, text: &str) -> Task {
        Task::ClassicIr { kind: input.into(), goal: goal.into(), retriever: retriever.into(), text: text.into() }
    }
}

/// The prompt templates.
pub struct Prompts {
    env: Environment<'static>,
}

impl Default for Prompts {
    fn default() -> Self {
        Self::new()
    }
}

impl Prompts {
    /// The built-in templates.
    pub fn new() -> Prompts {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (name, source) in [("literature", LITERATURE), ("evidence", EVIDENCE), ("classic-ir", CLASSIC_IR), ("sql", SQL)] {
            env.add_template(name, source).expect("built-in prompt templates parse");
        }
        Prompts { env }
    }

    /// The user message of `task`.
    pub fn user_message(&self, task: &Task, reasoning: bool) -> Result<String, minijinja::Error> {
        let template = self.env.get_template(task.template())?;
        let text = template.render(minijinja::context! { reasoning => reasoning, ..minijinja::Value::from_serialize(task) })?;
        Ok(text.trim_end().to_string())
    }
}

/// System message for a mode.
pub fn system_message(reasoning: bool) -> &'static str {
    if reasoning { SYSTEM_REASONING } else { SYSTEM_DIRECT }
}

/// Text the assistant turn starts with (pre-filled after the chat template's assistant header):
/// with reasoning the opening `<think>`, as the paper's prompts end; without, the opening
/// `<answer>`, as the paper's no-reasoning SQL prompts end.
pub fn assistant_prefix(reasoning: bool) -> &'static str {
    if reasoning { "<think>\n" } else { "<answer>\n" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_family_renders_its_inputs_and_contract() {
        let p = Prompts::new();
        let tasks = [
            Task::Literature { engine: "PubMed".into(), p: "adults with asthma".into(), i: "inhaled steroids".into(), c: "placebo".into(), o: "exacerbations".into(), topic: None },
            Task::Evidence { corpus: "Wikipedia".into(), question: "who wrote hamlet".into() },
            Task::classic_ir("scientific claim", "that support or refute it", "sparse", "0-dimensional biomaterials show inductive properties."),
            Task::Sql { schema: "CREATE TABLE t (a int);".into(), question: "How many rows?".into(), evidence: Some("rows are records".into()) },
        ];
        for task in &tasks {
            for reasoning in [true, false] {
                let text = p.user_message(task, reasoning).unwrap();
                assert!(text.contains(&format!("{{\"{}\": ", task.answer_key())), "{text}");
                assert_eq!(text.contains("<think>"), reasoning, "{text}");
                assert!(!text.contains("{{") && !text.contains("{%"), "{text}");
            }
        }
        let sql = p.user_message(&tasks[3], true).unwrap();
        assert!(sql.contains("CREATE TABLE t (a int);") && sql.contains("Background knowledge: rows are records"));
        let ir = p.user_message(&tasks[2], false).unwrap();
        assert!(ir.contains("scientific claim") && ir.contains("BM25"));
    }

    proptest! {
        #[test]
        fn arbitrary_inputs_render_verbatim_without_panics(text in ".{0,200}") {
            let p = Prompts::new();
            for task in [
                Task::Evidence { corpus: "c".into(), question: text.clone() },
                Task::classic_ir("claim", "that support or refute it", "dense", &text),
                Task::Sql { schema: text.clone(), question: text.clone(), evidence: Some(text.clone()) },
                Task::Literature { engine: "PubMed".into(), p: text.clone(), i: text.clone(), c: text.clone(), o: text.clone(), topic: None },
            ] {
                let rendered = p.user_message(&task, true).unwrap();
                prop_assert!(rendered.contains(text.trim_end()));
            }
        }
    }
}
