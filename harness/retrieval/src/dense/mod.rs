//! Dense retrieval: an ONNX encoder, a disk cache of passage embeddings, exact search by dot
//! product and approximate search with HNSW (hnsw_rs).
pub mod encoder;
pub mod graph;

use std::io::Write;
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::DistDot;
use sha2::{Digest, Sha256};

pub use encoder::{Encoder, EncoderSpec, GraphForm, Pooling, TextKind};

use crate::error::{io_err, Result, RetrievalError};

const FORMAT_VERSION: u32 = 1;
/// Passages per cache chunk: the unit of resumption and of corruption checks.
pub const CHUNK: usize = 2048;

/// Dot product with eight independent partial sums, which the compiler turns into SIMD (a
/// single running sum is a serial dependency chain it may not reorder).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Passage embeddings, row-major, one row per document ordinal.
pub struct Embeddings {
    /// Vector size.
    pub dim: usize,
    /// `num_docs * dim` values.
    pub vectors: Vec<f32>,
    /// Where they are cached.
    pub dir: PathBuf,
    /// Passages encoded by this call (0 when everything came from the cache).
    pub encoded_now: usize,
}

impl Embeddings {
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors.len().checked_div(self.dim).unwrap_or(0)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// Exact top-`k` by dot product (cosine for normalised vectors), ties by ordinal.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<(u32, f32)> {
        let mut hits: Vec<(u32, f32)> = self
            .vectors
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, row)| (i as u32, dot(row, query)))
            .collect();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > k {
            hits.select_nth_unstable_by(k, order);
            hits.truncate(k);
        }
        hits.sort_unstable_by(order);
        hits
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheMeta {
    format_version: u32,
    model_sha256: String,
    spec: EncoderSpec,
    corpus_checksum: String,
    num_docs: usize,
    dim: usize,
}

/// Cache key of a corpus's embeddings under one model.
pub fn embedding_cache_key(model_sha256: &str, spec: &EncoderSpec, corpus_checksum: &str) -> String {
    let mut h = Sha256::new();
    h.update(model_sha256.as_bytes());
    h.update(serde_json::to_vec(spec).expect("spec serialises"));
    h.update(corpus_checksum.as_bytes());
    h.update(FORMAT_VERSION.to_le_bytes());
    hex::encode(&h.finalize()[..12])
}

fn chunk_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("chunk-{i:05}.f32"))
}

/// Reads a chunk: little-endian f32 values followed by the sha256 of those bytes. `None` when
/// missing or damaged (wrong length or checksum).
fn read_chunk(path: &Path, expected_values: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() != expected_values * 4 + 32 {
        return None;
    }
    let (data, sum) = bytes.split_at(expected_values * 4);
    if Sha256::digest(data).as_slice() != sum {
        return None;
    }
    Some(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn write_chunk(path: &Path, values: &[f32]) -> Result<()> {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tmp = path.with_extension("part");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&data).and_then(|_| f.write_all(&Sha256::digest(&data))).and_then(|_| f.sync_all()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Encodes `passages` with `encoder`, or loads them from the cache under `cache_root`.
/// Encoding goes chunk by chunk, so an interrupted run resumes where it stopped; a damaged
/// chunk is reported and encoded again, never used.
pub fn passage_embeddings(
    cache_root: &Path,
    encoder: &mut Encoder,
    corpus_checksum: &str,
    passages: &[String],
    batch_size: usize,
) -> Result<Embeddings> {
    let key = embedding_cache_key(encoder.model_sha256(), encoder.spec(), corpus_checksum);
    let dir = cache_root.join("dense").join(key);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let dim = encoder.encode(&["dimension probe"], TextKind::Passage)?[0].len();
    let meta = CacheMeta {
        format_version: FORMAT_VERSION,
        model_sha256: encoder.model_sha256().to_string(),
        spec: encoder.spec().clone(),
        corpus_checksum: corpus_checksum.to_string(),
        num_docs: passages.len(),
        dim,
    };
    let meta_path = dir.join("meta.json");
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).expect("meta serialises")).map_err(io_err(&meta_path))?;

    let chunks = passages.len().div_ceil(CHUNK);
    let mut vectors = Vec::with_capacity(passages.len() * dim);
    let mut pending = Vec::new();
    let mut loaded: Vec<Option<Vec<f32>>> = Vec::with_capacity(chunks);
    for c in 0..chunks {
        let n = CHUNK.min(passages.len() - c * CHUNK);
        let path = chunk_path(&dir, c);
        let chunk = read_chunk(&path, n * dim);
        if chunk.is_none() {
            if path.exists() {
                eprintln!("embedding cache chunk {} is damaged; encoding it again", path.display());
            }
            pending.push(c);
        }
        loaded.push(chunk);
    }
    let todo: usize = pending.iter().map(|&c| CHUNK.min(passages.len() - c * CHUNK)).sum();
    let progress = indicatif::ProgressBar::new(todo as u64).with_style(
        indicatif::ProgressStyle::with_template("encoding {bar:40} {pos}/{len} passages ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    for &c in &pending {
        let part = &passages[c * CHUNK..(c * CHUNK + CHUNK).min(passages.len())];
        let mut values = Vec::with_capacity(part.len() * dim);
        // Sub-chunks keep the progress bar moving; each is length-batched by encode_many.
        for sub in part.chunks(batch_size.max(1) * 8) {
            let refs: Vec<&str> = sub.iter().map(String::as_str).collect();
            for v in encoder.encode_many(&refs, TextKind::Passage, batch_size)? {
                values.extend_from_slice(&v);
            }
            progress.inc(sub.len() as u64);
        }
        write_chunk(&chunk_path(&dir, c), &values)?;
        loaded[c] = Some(values);
    }
    progress.finish_and_clear();
    for chunk in loaded {
        vectors.extend(chunk.expect("every chunk loaded or encoded"));
    }
    Ok(Embeddings { dim, vectors, dir, encoded_now: todo })
}

/// HNSW settings (defaults as the paper's FAISS HNSW index: M=32, efConstruction=200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// Links per node.
    pub m: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Candidate list size while searching.
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 32, ef_construction: 200, ef_search: 256 }
    }
}

/// An HNSW graph over [`Embeddings`] (dot-product distance on normalised vectors).
pub struct HnswIndex {
    graph: Hnsw<'static, f32, DistDot>,
    params: HnswParams,
}

const HNSW_BASENAME: &str = "hnsw";

impl HnswIndex {
    /// Loads the graph saved next to `embeddings` for these build settings, or builds and
    /// saves it.
    pub fn open_or_build(embeddings: &Embeddings, params: HnswParams) -> Result<Self> {
        let dir = embeddings.dir.join(format!("hnsw-m{}-efc{}", params.m, params.ef_construction));
        let done = dir.join("complete");
        if done.is_file() {
            // hnsw_rs ties a reloaded graph to its loader's lifetime; the loader lives as long
            // as the process (one per index opened), which is what a CLI run needs.
            let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, HNSW_BASENAME)));
            match loader.load_hnsw::<f32, DistDot>() {
                Ok(graph) if graph.get_nb_point() == embeddings.len() => return Ok(HnswIndex { graph, params }),
                _ => eprintln!("HNSW graph in {} is unusable; rebuilding it", dir.display()),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let graph = Hnsw::<f32, DistDot>::new(params.m, embeddings.len().max(1), 16, params.ef_construction, DistDot {});
        let rows: Vec<(&[f32], usize)> = (0..embeddings.len()).map(|i| (embeddings.row(i), i)).collect();
        graph.parallel_insert_slice(&rows);
        graph
            .file_dump(&dir, HNSW_BASENAME)
            .map_err(|e| RetrievalError::Invalid(format!("saving HNSW graph to {}: {e}", dir.display())))?;
        std::fs::write(&done, b"ok").map_err(io_err(&done))?;
        Ok(HnswIndex { graph, params })
    }

    /// Approximate top-`k` (similarity = dot product), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(u32, f32)> {
        let ef = self.params.ef_search.max(k);
        let mut hits: Vec<(u32, f32)> =
            self.graph.search(query, k, ef).into_iter().map(|n| (n.d_id as u32, 1.0 - n.distance)).collect();
        hits.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - naive).abs() < 1e-4);
    }

    #[test]
    fn damaged_chunks_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.f32");
        write_chunk(&p, &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(read_chunk(&p, 3), Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(read_chunk(&p, 4), None);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(read_chunk(&p, 3), None);
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn exact_and_hnsw_agree_on_a_small_set() {
        let dir = tempfile::tempdir().unwrap();
        // Distinct pseudo-random unit vectors (hnsw ties are arbitrary, so avoid duplicates).
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let dim = 16;
        let vectors: Vec<f32> = (0..500).flat_map(|_| unit(&(0..dim).map(|_| next()).collect::<Vec<_>>())).collect();
        let e = Embeddings { dim, vectors, dir: dir.path().to_path_buf(), encoded_now: 0 };
        let q = e.row(42).to_vec();
        let exact = e.search_exact(&q, 10);
        assert_eq!(exact[0].0, 42);
        let hnsw = HnswIndex::open_or_build(&e, HnswParams::default()).unwrap();
        let approx = hnsw.search(&q, 10);
        assert_eq!(approx.iter().map(|h| h.0).collect::<Vec<_>>(), exact.iter().map(|h| h.0).collect::<Vec<_>>());
        // Reload from disk.
        let again = HnswIndex::open_or_build(&e, HnswParams::default()).unwrap();
        assert_eq!(again.search(&q, 10)[0].0, 42);
    }
}
