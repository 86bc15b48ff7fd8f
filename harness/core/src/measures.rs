//! Measure names and per-query computation with trec_eval's semantics.
//!
//! Names follow trec_eval: a parameterised measure is written `name.c1,c2,...` on input
//! (`ndcg_cut.10,100`) and printed `name_c` (`ndcg_cut_10`). Definitions:
//! * gains are the qrels grades, negative grades count as 0 (Järvelin & Kekäläinen, linear);
//!   the ideal DCG uses every judged document with a positive grade, whatever `-l` says;
//! * a document is relevant when its grade is at least the relevance level (`-l`, default 1);
//! * cut-off measures assume non-relevant documents fill a ranking shorter than the cut-off.
use crate::error::{CoreError, Result};

/// The family of a measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MeasureKind {
    /// Number of queries averaged over (summary only).
    NumQ,
    /// Number of documents retrieved.
    NumRet,
    /// Number of relevant documents in the qrels.
    NumRel,
    /// Number of relevant documents retrieved.
    NumRelRet,
    /// Mean average precision.
    Map,
    /// Average precision over the top k.
    MapCut,
    /// Precision after R documents, R = number of relevant documents.
    Rprec,
    /// Reciprocal rank of the first relevant document (no cut-off; truncate with `-M`).
    RecipRank,
    /// Precision at k.
    P,
    /// Recall at k.
    Recall,
    /// nDCG over the whole ranking.
    Ndcg,
    /// nDCG at k.
    NdcgCut,
    /// 1 if a relevant document is in the top k (Hit@k).
    Success,
}

impl MeasureKind {
    /// trec_eval's name of the family.
    pub fn name(self) -> &'static str {
        match self {
            MeasureKind::NumQ => "num_q",
            MeasureKind::NumRet => "num_ret",
            MeasureKind::NumRel => "num_rel",
            MeasureKind::NumRelRet => "num_rel_ret",
            MeasureKind::Map => "map",
            MeasureKind::MapCut => "map_cut",
            MeasureKind::Rprec => "Rprec",
            MeasureKind::RecipRank => "recip_rank",
            MeasureKind::P => "P",
            MeasureKind::Recall => "recall",
            MeasureKind::Ndcg => "ndcg",
            MeasureKind::NdcgCut => "ndcg_cut",
            MeasureKind::Success => "success",
        }
    }

    /// Every family, in the order trec_eval prints them.
    pub const ALL: [MeasureKind; 13] = [
        MeasureKind::NumQ,
        MeasureKind::NumRet,
        MeasureKind::NumRel,
        MeasureKind::NumRelRet,
        MeasureKind::Map,
        MeasureKind::Rprec,
        MeasureKind::RecipRank,
        MeasureKind::P,
        MeasureKind::Recall,
        MeasureKind::Ndcg,
        MeasureKind::NdcgCut,
        MeasureKind::MapCut,
        MeasureKind::Success,
    ];

    /// trec_eval's default cut-offs for a parameterised family, `None` for the others.
    pub fn default_cutoffs(self) -> Option<&'static [usize]> {
        const DOC_CUTS: &[usize] = &[5, 10, 15, 20, 30, 100, 200, 500, 1000];
        match self {
            MeasureKind::P | MeasureKind::Recall | MeasureKind::NdcgCut | MeasureKind::MapCut => Some(DOC_CUTS),
            MeasureKind::Success => Some(&[1, 5, 10]),
            _ => None,
        }
    }

    /// Counts are summed over queries in the summary; the rest are averaged.
    pub fn is_count(self) -> bool {
        matches!(self, MeasureKind::NumQ | MeasureKind::NumRet | MeasureKind::NumRel | MeasureKind::NumRelRet)
    }
}

/// One measure: a family and, for parameterised families, a cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Measure {
    /// The family.
    pub kind: MeasureKind,
    /// The cut-off k, for P, recall, ndcg_cut, map_cut and success.
    pub cutoff: Option<usize>,
}

impl Measure {
    /// nDCG@k.
    pub fn ndcg_cut(k: usize) -> Self {
        Measure { kind: MeasureKind::NdcgCut, cutoff: Some(k) }
    }
    /// Recall@k.
    pub fn recall(k: usize) -> Self {
        Measure { kind: MeasureKind::Recall, cutoff: Some(k) }
    }
    /// Success@k (Hit@k).
    pub fn success(k: usize) -> Self {
        Measure { kind: MeasureKind::Success, cutoff: Some(k) }
    }
    /// A measure without parameter.
    pub fn plain(kind: MeasureKind) -> Self {
        Measure { kind, cutoff: None }
    }

    /// The name trec_eval prints: `ndcg_cut_10`, `P_5`, `map`.
    pub fn name(&self) -> String {
        match self.cutoff {
            Some(k) => format!("{}_{k}", self.kind.name()),
            None => self.kind.name().to_string(),
        }
    }

    /// Parses a trec_eval `-m` argument: `map`, `ndcg_cut.10,100`, `P` (default cut-offs).
    /// `official`/`all_trec` select every ported measure with default cut-offs.
    pub fn parse_list(spec: &str) -> Result<Vec<Measure>> {
        let spec = spec.trim();
        if spec == "all_trec" || spec == "official" {
            let mut out = Vec::new();
            for kind in MeasureKind::ALL {
                out.extend(Self::parse_list(kind.name())?);
            }
            return Ok(out);
        }
        let (name, params) = match spec.split_once('.') {
            Some((n, p)) => (n, Some(p)),
            None => (spec, None),
        };
        let kind = MeasureKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| CoreError::UnknownMeasure(spec.to_string()))?;
        match (kind.default_cutoffs(), params) {
            (None, None) => Ok(vec![Measure::plain(kind)]),
            (None, Some(_)) => Err(CoreError::UnknownMeasure(spec.to_string())),
            (Some(defaults), None) => Ok(defaults.iter().map(|&k| Measure { kind, cutoff: Some(k) }).collect()),
            (Some(_), Some(p)) => p
                .split(',')
                .map(|c| match c.trim().parse::<usize>() {
                    Ok(k) if k > 0 => Ok(Measure { kind, cutoff: Some(k) }),
                    _ => Err(CoreError::UnknownMeasure(spec.to_string())),
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Measure {
    type Err = CoreError;
    /// Parses one measure, printed (`ndcg_cut_10`) or trec_eval (`ndcg_cut.10`) spelling.
    fn from_str(s: &str) -> Result<Self> {
        let dotted = match s.rsplit_once('_') {
            Some((n, k)) if k.chars().all(|c| c.is_ascii_digit()) && !k.is_empty() => format!("{n}.{k}"),
            _ => s.to_string(),
        };
        match Measure::parse_list(&dotted)?.as_slice() {
            [m] => Ok(*m),
            _ => Err(CoreError::UnknownMeasure(s.to_string())),
        }
    }
}

/// Options with trec_eval's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalOptions {
    /// `-l`: minimum grade that counts as relevant for binary measures (default 1).
    pub relevance_level: i32,
    /// `-c`: average over every query in the qrels; queries the run lacks score 0.
    pub average_over_all_qrels: bool,
    /// `-M`: evaluate only the top `max_docs` documents of each ranking.
    pub max_docs: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { relevance_level: 1, average_over_all_qrels: false, max_docs: None }
    }
}

/// What one query's ranking looks like to the measures: grades of the retrieved documents in
/// trec_eval order (`None` = not judged) and the judged grades.
#[derive(Debug, Clone)]
pub struct JudgedRanking {
    /// Grade of the document at each rank (0-based), `None` when it is not in the qrels.
    pub grades: Vec<Option<i32>>,
    /// Number of judged documents with grade >= relevance level.
    pub num_rel: usize,
    /// Positive grades of all judged documents, descending (the ideal ranking's gains).
    pub ideal_gains: Vec<f64>,
    /// Relevance level in force.
    pub relevance_level: i32,
}

impl JudgedRanking {
    fn is_rel(&self, i: usize) -> bool {
        self.grades[i].is_some_and(|g| g >= self.relevance_level)
    }

    fn rel_in_top(&self, k: usize) -> usize {
        (0..k.min(self.grades.len())).filter(|&i| self.is_rel(i)).count()
    }

    fn dcg(gains: impl Iterator<Item = f64>) -> f64 {
        // fold from +0.0: `Iterator::sum` of no floats is -0.0, which would print as "-0.0000".
        gains.enumerate().filter(|(_, g)| *g > 0.0).fold(0.0, |acc, (i, g)| acc + g / ((i + 2) as f64).log2())
    }

    fn ndcg(&self, k: usize) -> f64 {
        let ideal = Self::dcg(self.ideal_gains.iter().copied().take(k));
        if ideal <= 0.0 {
            return 0.0;
        }
        let actual = Self::dcg(self.grades.iter().take(k).map(|g| g.map_or(0.0, |g| g.max(0) as f64)));
        actual / ideal
    }

    fn average_precision(&self, k: usize) -> f64 {
        if self.num_rel == 0 {
            return 0.0;
        }
        let mut found = 0usize;
        let mut sum = 0.0;
        for i in 0..k.min(self.grades.len()) {
            if self.is_rel(i) {
                found += 1;
                sum += found as f64 / (i + 1) as f64;
            }
        }
        sum / self.num_rel as f64
    }

    /// The value of `measure` for this query.
    pub fn value(&self, measure: Measure) -> f64 {
        let n = self.grades.len();
        let k = measure.cutoff.unwrap_or(n);
        let ratio = |num: usize, den: usize| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        match measure.kind {
            MeasureKind::NumQ => 1.0,
            MeasureKind::NumRet => n as f64,
            MeasureKind::NumRel => self.num_rel as f64,
            MeasureKind::NumRelRet => self.rel_in_top(n) as f64,
            MeasureKind::Map | MeasureKind::MapCut => self.average_precision(k),
            MeasureKind::Rprec => ratio(self.rel_in_top(self.num_rel), self.num_rel),
            MeasureKind::RecipRank => (0..n).find(|&i| self.is_rel(i)).map_or(0.0, |i| 1.0 / (i + 1) as f64),
            MeasureKind::P => ratio(self.rel_in_top(k), k),
            MeasureKind::Recall => ratio(self.rel_in_top(k), self.num_rel),
            MeasureKind::Ndcg => self.ndcg(usize::MAX),
            MeasureKind::NdcgCut => self.ndcg(k),
            MeasureKind::Success => (self.rel_in_top(k) > 0) as u8 as f64,
        }
    }
}
