//! Downloading a dataset's official files when online: streamed to a `.part` file, checked
//! against the card's sha256 (or the provider's md5), renamed, and unpacked if it is a zip.
//! Transient failures are retried with backoff.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::card::{Card, Download};
use crate::error::{io_err, DatasetError, Result};

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Download files whose card gives no checksum (their sha256 is printed).
    pub allow_unverified: bool,
    /// Attempts per file.
    pub attempts: u32,
    /// First backoff; doubled after each failure.
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions { allow_unverified: false, attempts: 3, backoff: Duration::from_secs(2) }
    }
}

/// What a fetch did for one file.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL.
    pub url: String,
    /// Where the file was saved.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Files unpacked from it (zip archives).
    pub unpacked: usize,
}

fn file_name_of(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap_or("download");
    let clean: String = last.split(['?', '#']).next().unwrap_or("download").to_string();
    if clean.is_empty() { "download".into() } else { clean }
}

fn download_once(agent: &ureq::Agent, d: &Download, part: &Path) -> std::result::Result<(String, String), String> {
    let response = agent.get(&d.url).call().map_err(|e| e.to_string())?;
    let mut reader = response.into_body().into_reader();
    let mut file = std::fs::File::create(part).map_err(|e| format!("{}: {e}", part.display()))?;
    let (mut sha, mut md5) = (Sha256::new(), Md5::new());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", part.display()))?;
    }
    file.sync_all().map_err(|e| e.to_string())?;
    Ok((hex::encode(sha.finalize()), hex::encode(md5.finalize())))
}

/// Downloads every file of `card` into `dir`.
pub fn fetch(card: &Card, dir: &Path, opts: &FetchOptions) -> Result<Vec<Fetched>> {
    if card.download.is_empty() {
        return Err(DatasetError::Fetch {
            url: card.name.clone(),
            cause: format!("the card lists nothing to download. {}", card.offline_note),
        });
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(120)))
        .build()
        .into();
    let downloads = dir.join(".downloads");
    std::fs::create_dir_all(&downloads).map_err(io_err(&downloads))?;
    let mut out = Vec::new();
    for d in &card.download {
        if d.sha256.is_none() && d.md5.is_none() && !opts.allow_unverified {
            return Err(DatasetError::Fetch {
                url: d.url.clone(),
                cause: "the card records no checksum for this file; rerun with --allow-unverified to download it \
                        anyway (its sha256 is printed so you can add it to the card)"
                    .into(),
            });
        }
        let target = downloads.join(file_name_of(&d.url));
        let part = target.with_extension("part");
        let mut last_error = String::new();
        let mut result = None;
        for attempt in 0..opts.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(opts.backoff * 2u32.pow(attempt - 1));
            }
            match download_once(&agent, d, &part) {
                Ok(sums) => {
                    result = Some(sums);
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        let Some((sha, md5)) = result else {
            let _ = std::fs::remove_file(&part);
            return Err(DatasetError::Fetch {
                url: d.url.clone(),
                cause: format!("failed after {} attempts: {last_error}", opts.attempts.max(1)),
            });
        };
        let mismatch = match (&d.sha256, &d.md5) {
            (Some(want), _) if !want.eq_ignore_ascii_case(&sha) => Some(format!("sha256 {sha}, card says {want}")),
            (None, Some(want)) if !want.eq_ignore_ascii_case(&md5) => Some(format!("md5 {md5}, card says {want}")),
            _ => None,
        };
        if let Some(m) = mismatch {
            let _ = std::fs::remove_file(&part);
            return Err(DatasetError::Fetch { url: d.url.clone(), cause: format!("checksum mismatch: {m}") });
        }
        std::fs::rename(&part, &target).map_err(io_err(&target))?;
        let unpacked = if target.extension().is_some_and(|e| e == "zip") {
            unzip(&target, dir, d.strip_prefix.as_deref())?
        } else {
            0
        };
        out.push(Fetched { url: d.url.clone(), path: target, sha256: sha, unpacked });
    }
    Ok(out)
}

/// Unpacks `archive` into `dir`, dropping `strip` from member paths; members that would land
/// outside `dir` are refused.
fn unzip(archive: &Path, dir: &Path, strip: Option<&str>) -> Result<usize> {
    let bad = |cause: String| DatasetError::Fetch { url: archive.display().to_string(), cause };
    let file = std::fs::File::open(archive).map_err(io_err(archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut count = 0;
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let Some(rel) = member.enclosed_name() else {
            return Err(bad(format!("unsafe member path {:?}", member.name())));
        };
        let rel = match strip {
            Some(prefix) => rel.strip_prefix(prefix.trim_end_matches('/')).map(Path::to_path_buf).unwrap_or(rel),
            None => rel,
        };
        if member.is_dir() || rel.as_os_str().is_empty() {
            continue;
        }
        let dest = dir.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let tmp = dest.with_extension("unzip-part");
        let mut out = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        std::io::copy(&mut member, &mut out).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A loopback HTTP server answering every request with `body`, after failing the first
    /// `failures` requests with a 503. It stops after `max_requests`.
    fn serve(body: Vec<u8>, failures: usize, max_requests: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max_requests) {
                let mut stream = stream.unwrap();
                let mut req = [0u8; 4096];
                let _ = stream.read(&mut req);
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, payload) =
                    if n < failures { ("503 Service Unavailable", &b""[..]) } else { ("200 OK", &body[..]) };
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", payload.len());
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(payload);
            }
        });
        (format!("http://{addr}/data/tiny.zip"), hits)
    }

    fn tiny_zip() -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("tiny/queries.jsonl", opts).unwrap();
        w.write_all(b"{\"_id\": \"1\", \"text\": \"q\"}\n").unwrap();
        w.start_file("tiny/qrels/test.tsv", opts).unwrap();
        w.write_all(b"query-id\tcorpus-id\tscore\n1\td\t1\n").unwrap();
        w.finish().unwrap();
        buf.into_inner()
    }

    fn card_for(url: &str, sha256: Option<String>) -> Card {
        let text = format!(
            "name = 'tiny'\ntitle = 't'\nfamily = 'classic-ir'\nloader = 'beir'\nlicense = 'x'\ndescription = 'd'\n\
             paper_metric = 'ndcg_cut.10'\n[[download]]\nurl = '{url}'\nstrip_prefix = 'tiny/'\n{}",
            sha256.map(|s| format!("sha256 = '{s}'\n")).unwrap_or_default()
        );
        Card::parse("tiny.toml", &text).unwrap()
    }

    fn fast() -> FetchOptions {
        FetchOptions { backoff: Duration::from_millis(10), ..Default::default() }
    }

    #[test]
    fn fetches_verifies_retries_and_unpacks() {
        let body = tiny_zip();
        let sha = hex::encode(Sha256::digest(&body));
        let (url, hits) = serve(body, 1, 2);
        let dir = tempfile::tempdir().unwrap();
        let got = fetch(&card_for(&url, Some(sha.clone())), dir.path(), &fast()).unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2, "one failure, one retry");
        assert_eq!(got[0].sha256, sha);
        assert_eq!(got[0].unpacked, 2);
        assert!(dir.path().join("qrels/test.tsv").is_file());
    }

    #[test]
    fn checksum_mismatch_keeps_nothing() {
        let (url, _) = serve(tiny_zip(), 0, 1);
        let dir = tempfile::tempdir().unwrap();
        let err = fetch(&card_for(&url, Some("0".repeat(64))), dir.path(), &fast()).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(!dir.path().join("queries.jsonl").exists());
        assert_eq!(std::fs::read_dir(dir.path().join(".downloads")).unwrap().count(), 0);
    }

    #[test]
    fn unverified_download_needs_consent() {
        let (url, hits) = serve(tiny_zip(), 0, 1);
        let dir = tempfile::tempdir().unwrap();
        let err = fetch(&card_for(&url, None), dir.path(), &fast()).unwrap_err().to_string();
        assert!(err.contains("--allow-unverified"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        let opts = FetchOptions { allow_unverified: true, ..fast() };
        assert_eq!(fetch(&card_for(&url, None), dir.path(), &opts).unwrap()[0].unpacked, 2);
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/x.zip");
        let dir = tempfile::tempdir().unwrap();
        let opts = FetchOptions { attempts: 2, ..fast() };
        let err = fetch(&card_for(&url, Some("0".repeat(64))), dir.path(), &opts).unwrap_err().to_string();
        assert!(err.contains("failed after 2 attempts"), "{err}");
    }
}
