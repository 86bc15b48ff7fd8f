//! ClinicalTrials.gov API v2 `studies` search by `query.term`, paged (1,000 per page, the API's
//! maximum) until the depth is reached. The paper adds no date filter for trials.
use std::path::PathBuf;
use std::time::Duration;

use crate::http::{Fetcher, Request};
use crate::{Engine, EngineError, ReviewTask};

/// The public API's base URL.
pub const DEFAULT_BASE: &str = "https://clinicaltrials.gov/api/v2";
/// Environment variable overriding the base URL (mirrors, tests).
pub const BASE_ENV: &str = "HARNESS_CTGOV_BASE_URL";
/// Studies per page (the API's maximum).
pub const PAGE_SIZE: usize = 1000;

/// A ClinicalTrials.gov v2 client.
pub struct CtGov {
    base: String,
    /// Rate limit, retries and cache.
    pub fetcher: Fetcher,
}

impl CtGov {
    /// A client of `base`, at most `per_second` requests a second, caching under `cache_dir`.
    pub fn new(base: &str, per_second: f64, cache_dir: Option<PathBuf>) -> CtGov {
        CtGov { base: base.trim_end_matches('/').to_string(), fetcher: Fetcher::new(per_second, cache_dir, Duration::from_secs(60)) }
    }

    /// Base URL from `HARNESS_CTGOV_BASE_URL`; about 50 requests a minute, the API's documented
    /// fair-use rate.
    pub fn from_env(cache_dir: Option<PathBuf>) -> CtGov {
        let base = std::env::var(BASE_ENV).unwrap_or_else(|_| DEFAULT_BASE.to_string());
        CtGov::new(&base, 50.0 / 60.0, cache_dir)
    }

    fn page_request(&self, query: &str, page_size: usize, token: Option<&str>) -> Request {
        let mut params: Vec<(String, String)> = vec![
            ("query.term".into(), query.into()),
            ("fields".into(), "NCTId".into()),
            ("pageSize".into(), page_size.to_string()),
            ("format".into(), "json".into()),
        ];
        if let Some(t) = token {
            params.push(("pageToken".into(), t.into()));
        }
        Request { base: format!("{}/studies", self.base), params, secret_params: Vec::new() }
    }
}

/// NCT ids and the next page's token of one `studies` response.
pub fn parse_page(body: &str) -> Result<(Vec<String>, Option<String>), String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
    let studies = json.get("studies").and_then(|s| s.as_array()).ok_or("no `studies` array in the response")?;
    let ids = studies
        .iter()
        .map(|s| {
            s.pointer("/protocolSection/identificationModule/nctId").and_then(|v| v.as_str()).map(String::from).ok_or_else(|| "a study without protocolSection.identificationModule.nctId".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next = json.get("nextPageToken").and_then(|t| t.as_str()).map(String::from);
    Ok((ids, next))
}

impl Engine for CtGov {
    fn name(&self) -> String {
        format!("ctgov-v2({})", self.base)
    }

    fn search(&mut self, query: &str, _task: &ReviewTask, depth: usize) -> Result<Vec<String>, EngineError> {
        if query.trim().is_empty() {
            return Err(EngineError::Query("empty query".into()));
        }
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        while ids.len() < depth {
            let request = self.page_request(query, PAGE_SIZE.min(depth), token.as_deref());
            let body = self.fetcher.get(&request)?;
            let (page, next) = parse_page(&body).map_err(|cause| EngineError::Http { url: request.public_url(), cause })?;
            let empty = page.is_empty();
            ids.extend(page);
            match next {
                Some(t) if !empty => token = Some(t),
                _ => break,
            }
        }
        ids.truncate(depth);
        Ok(ids)
    }
}
