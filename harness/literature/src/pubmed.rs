//! PubMed E-utilities `esearch`, as the paper's reward and evaluation call it: `db=pubmed`,
//! `retmax` up to the depth (3000), JSON, and the review's date limit
//! (`datetype=pdat&mindate=1970/01/01&maxdate=<pub_date>`).
use std::path::PathBuf;
use std::time::Duration;

use crate::http::{Fetcher, Request};
use crate::{Engine, EngineError, ReviewTask};

/// NCBI's E-utilities base URL.
pub const DEFAULT_BASE: &str = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils";
/// Environment variable holding the NCBI API key (optional; 10 instead of 3 requests/s).
pub const API_KEY_ENV: &str = "NCBI_API_KEY";
/// Environment variable overriding the base URL (mirrors, tests).
pub const BASE_ENV: &str = "HARNESS_PUBMED_BASE_URL";

/// A PubMed esearch client.
pub struct PubMed {
    base: String,
    api_key: Option<String>,
    /// Rate limit, retries and cache.
    pub fetcher: Fetcher,
}

impl std::fmt::Debug for PubMed {
    // Hand-written so that the key can never be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubMed").field("base", &self.base).field("api_key", &self.api_key.as_ref().map(|_| "<set>")).finish()
    }
}

impl PubMed {
    /// A client of `base` (3 requests/s, or 10 with a key), caching under `cache_dir`.
    pub fn new(base: &str, api_key: Option<String>, cache_dir: Option<PathBuf>) -> PubMed {
        let api_key = api_key.filter(|k| !k.trim().is_empty());
        let rate = if api_key.is_some() { 10.0 } else { 3.0 };
        PubMed { base: base.trim_end_matches('/').to_string(), api_key, fetcher: Fetcher::new(rate, cache_dir, Duration::from_secs(60)) }
    }

    /// Base URL and key from the environment (`HARNESS_PUBMED_BASE_URL`, `NCBI_API_KEY`).
    pub fn from_env(cache_dir: Option<PathBuf>) -> PubMed {
        let base = std::env::var(BASE_ENV).unwrap_or_else(|_| DEFAULT_BASE.to_string());
        PubMed::new(&base, std::env::var(API_KEY_ENV).ok(), cache_dir)
    }

    /// The esearch request for `query` (public part and key apart).
    pub fn request(&self, query: &str, pub_date: Option<&str>, depth: usize) -> Request {
        let mut params: Vec<(String, String)> = vec![
            ("db".into(), "pubmed".into()),
            ("term".into(), query.into()),
            ("retmax".into(), depth.to_string()),
            ("retmode".into(), "json".into()),
        ];
        if let Some(date) = pub_date {
            params.extend([
                ("datetype".into(), "pdat".into()),
                ("mindate".into(), "1970/01/01".into()),
                ("maxdate".into(), date.to_string()),
            ]);
        }
        Request {
            base: format!("{}/esearch.fcgi", self.base),
            params,
            secret_params: self.api_key.iter().map(|k| ("api_key".to_string(), k.clone())).collect(),
        }
    }
}

/// The PMIDs of an esearch JSON response, in the engine's order.
pub fn parse_esearch(body: &str) -> Result<Vec<String>, String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
    if let Some(error) = json.pointer("/esearchresult/ERROR").or_else(|| json.get("error")).and_then(|e| e.as_str()) {
        return Err(format!("esearch error: {error}"));
    }
    let list = json.pointer("/esearchresult/idlist").and_then(|l| l.as_array()).ok_or("no esearchresult.idlist in the response")?;
    list.iter().map(|v| v.as_str().map(String::from).ok_or_else(|| format!("idlist holds {v}, not a PMID"))).collect()
}

impl Engine for PubMed {
    fn name(&self) -> String {
        format!("pubmed-esearch({})", self.base)
    }

    fn search(&mut self, query: &str, task: &ReviewTask, depth: usize) -> Result<Vec<String>, EngineError> {
        if query.trim().is_empty() {
            return Err(EngineError::Query("empty query".into()));
        }
        let request = self.request(query, task.pub_date.as_deref(), depth);
        let body = self.fetcher.get(&request)?;
        parse_esearch(&body).map_err(|cause| EngineError::Http { url: request.public_url(), cause })
    }
}
