//! The live-engine clients against a local HTTP server that answers in the real formats:
//! retries with backoff, the rate limit, the on-disk cache, paging, and an API key that reaches
//! the wire and nothing else.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness_literature::ctgov::CtGov;
use harness_literature::pubmed::PubMed;
use harness_literature::{Engine, ReviewTask};

const KEY: &str = "SECRET-KEY-123";

struct Seen {
    url: String,
}

/// A server answering request n with `respond(n, url)`; returns its base URL and the log.
fn serve(respond: impl Fn(usize, &str) -> (u16, String) + Send + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let url = request.url().to_string();
            let n = {
                let mut l = log.lock().unwrap();
                l.push(Seen { url: url.clone() });
                l.len() - 1
            };
            let (status, body) = respond(n, &url);
            let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    (base, seen)
}

/// The decoded value of query parameter `name` in `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let raw = query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn task(pub_date: Option<&str>) -> ReviewTask {
    ReviewTask { id: "r".into(), topic: String::new(), topic_source: String::new(), pico: None, targets: vec![], pub_date: pub_date.map(String::from) }
}

fn esearch(ids: &[&str]) -> String {
    serde_json::json!({"header": {"type": "esearch", "version": "0.3"}, "esearchresult": {"count": ids.len().to_string(), "retmax": ids.len().to_string(), "retstart": "0", "idlist": ids}}).to_string()
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect()).unwrap_or_default()
}

#[test]
fn pubmed_retries_paces_caches_and_keeps_the_key_off_disk() {
    let (base, seen) = serve(|n, _| match n {
        0 => (503, "busy".into()),
        1 => (429, "{\"error\":\"API rate limit exceeded\"}".into()),
        _ => (200, esearch(&["31", "32", "33"])),
    });
    let cache = tempfile::tempdir().unwrap();
    let mut client = PubMed::new(&base, Some(KEY.into()), Some(cache.path().to_path_buf()));
    client.fetcher.backoff = Duration::from_millis(5);
    let started = Instant::now();
    let ids = client.search("(asthma[tiab] OR wheez*) AND child*", &task(Some("2019/05/02")), 3000).unwrap();
    let took = started.elapsed();
    assert_eq!(ids, ["31", "32", "33"]);
    {
        let log = seen.lock().unwrap();
        assert_eq!(log.len(), 3, "two failures, then the answer");
        let url = &log[2].url;
        for (name, value) in [("db", "pubmed"), ("retmax", "3000"), ("retmode", "json"), ("datetype", "pdat"), ("mindate", "1970/01/01"), ("maxdate", "2019/05/02"), ("api_key", KEY)] {
            assert_eq!(param(url, name).as_deref(), Some(value), "{name} in {url}");
        }
        assert_eq!(param(url, "term").as_deref(), Some("(asthma[tiab] OR wheez*) AND child*"), "{url}");
        // With a key: at most 10 requests a second, so sending 3 takes the client at least two
        // 100 ms intervals. (Measured where the pacing happens: the server's arrival times
        // compress when a loaded machine delays the first one.)
        assert!(took >= Duration::from_millis(200), "3 requests sent within {took:?}");
    }
    // The same search again is answered from the cache.
    let again = client.search("(asthma[tiab] OR wheez*) AND child*", &task(Some("2019/05/02")), 3000).unwrap();
    assert_eq!(again, ids);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!((client.fetcher.requests_sent, client.fetcher.cache_hits), (3, 1));
    let cached = files_under(cache.path());
    assert_eq!(cached.len(), 1);
    assert!(cached.iter().all(|c| !c.contains(KEY)));
    assert!(!format!("{client:?}").contains(KEY));
}

#[test]
fn pubmed_without_a_key_keeps_three_per_second_and_errors_hide_the_key() {
    let (base, seen) = serve(|_, _| (200, esearch(&["1"])));
    let mut client = PubMed::new(&base, None, None);
    let started = Instant::now();
    for q in ["a", "b", "c"] {
        assert_eq!(client.search(q, &task(None), 10).unwrap(), ["1"]);
    }
    let took = started.elapsed();
    let log = seen.lock().unwrap();
    assert!(!log[0].url.contains("api_key") && !log[0].url.contains("maxdate"));
    // Without a key: 3 requests a second, so sending 3 takes the client at least two thirds of
    // a second.
    assert!(took >= Duration::from_millis(666), "3 requests sent within {took:?}");
    drop(log);

    // A client error is not retried, and the message never shows the key even when the
    // server echoes the URL back.
    let (base, seen) = serve(|_, url| (400, format!("bad request: {url}")));
    let mut client = PubMed::new(&base, Some(KEY.into()), None);
    let err = client.search("x", &task(None), 10).unwrap_err().to_string();
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(err.contains("HTTP 400") && !err.contains(KEY) && err.contains("<redacted>"), "{err}");

    // Server errors are retried `attempts` times, then reported.
    let (base, seen) = serve(|_, _| (500, "down".into()));
    let mut client = PubMed::new(&base, None, None);
    client.fetcher.attempts = 3;
    client.fetcher.backoff = Duration::from_millis(1);
    let err = client.search("x", &task(None), 10).unwrap_err();
    assert!(!err.is_query_error() && err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 3);

    // A malformed answer is an engine error naming what is missing.
    let (base, _) = serve(|_, _| (200, "{\"esearchresult\": {\"ERROR\": \"Invalid query\"}}".into()));
    let err = PubMed::new(&base, None, None).search("x", &task(None), 10).unwrap_err().to_string();
    assert!(err.contains("Invalid query"), "{err}");
}

fn studies(page: usize, per_page: usize, pages: usize) -> String {
    let ids: Vec<serde_json::Value> = (0..per_page)
        .map(|i| serde_json::json!({"protocolSection": {"identificationModule": {"nctId": format!("NCT{:08}", page * per_page + i)}}}))
        .collect();
    let mut body = serde_json::json!({"studies": ids});
    if page + 1 < pages {
        body["nextPageToken"] = serde_json::json!(format!("tok{}", page + 1));
    }
    body.to_string()
}

#[test]
fn ctgov_pages_to_the_depth_and_caches_each_page() {
    let (base, seen) = serve(|_, url| {
        let page = url.split("pageToken=tok").nth(1).and_then(|t| t.split('&').next()).and_then(|t| t.parse().ok()).unwrap_or(0);
        (200, studies(page, 1000, 5))
    });
    let cache = tempfile::tempdir().unwrap();
    let mut client = CtGov::new(&base, 100.0, Some(cache.path().to_path_buf()));
    let ids = client.search("asthma AND (budesonide OR fluticasone)", &task(None), 2500).unwrap();
    assert_eq!(ids.len(), 2500);
    assert_eq!(ids[0], "NCT00000000");
    assert_eq!(ids[2499], "NCT00002499");
    {
        let log = seen.lock().unwrap();
        assert_eq!(log.len(), 3);
        assert!(log[0].url.starts_with("/studies?"), "{}", log[0].url);
        assert_eq!(param(&log[0].url, "query.term").as_deref(), Some("asthma AND (budesonide OR fluticasone)"));
        assert_eq!(param(&log[0].url, "pageSize").as_deref(), Some("1000"));
        assert!(!log[0].url.contains("pageToken") && log[1].url.contains("pageToken=tok1") && log[2].url.contains("pageToken=tok2"));
    }
    // Repeating the search costs no request: every page comes from the cache.
    assert_eq!(client.search("asthma AND (budesonide OR fluticasone)", &task(None), 2500).unwrap(), ids);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(client.fetcher.cache_hits, 3);
    assert_eq!(files_under(cache.path()).len(), 3);

    // Fewer studies than the depth: stops at the last page.
    let (base, seen) = serve(|_, url| {
        let page = url.split("pageToken=tok").nth(1).and_then(|t| t.split('&').next()).and_then(|t| t.parse().ok()).unwrap_or(0);
        (200, studies(page, 1000, 2))
    });
    let mut client = CtGov::new(&base, 100.0, None);
    assert_eq!(client.search("x", &task(None), 3000).unwrap().len(), 2000);
    assert_eq!(seen.lock().unwrap().len(), 2);
}
