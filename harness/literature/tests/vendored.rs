//! The vendored offline corpus: counts, integrity, and the engine with the paper's reward.
use std::path::{Path, PathBuf};

use harness_core::answer::AnswerFormat;
use harness_core::rewards::{self, Answer};
use harness_literature::offline::OfflineEngine;
use harness_literature::tasks::{load_offline_reviews, load_records};
use harness_literature::{recall_at, Engine};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/data/literature")
}

#[test]
fn vendored_reviews_and_records_are_complete() {
    let reviews = load_offline_reviews(&data().join("reviews.jsonl")).unwrap();
    let records = load_records(&data().join("records.jsonl.gz")).unwrap();
    assert_eq!(reviews.len(), 34);
    assert_eq!(records.len(), 41_060);
    assert_eq!(reviews.iter().map(|r| r.targets.len()).sum::<usize>(), 1_877);
    assert_eq!(reviews.iter().filter(|r| r.id.starts_with("CD")).count(), 20);
    let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), records.len(), "one record per PMID");
    assert!(reviews.iter().all(|r| r.targets.iter().all(|t| ids.contains(t.as_str()))));
    // Text we wrote is labelled as ours.
    assert!(reviews.iter().filter(|r| r.id.starts_with("cohen-")).all(|r| r.topic_source.starts_with("ours")));
}

#[test]
fn engine_answers_feed_the_papers_literature_reward() {
    let cache = tempfile::tempdir().unwrap();
    let mut engine = OfflineEngine::open_or_build(&data().join("records.jsonl.gz"), cache.path()).unwrap();
    let reviews = load_offline_reviews(&data().join("reviews.jsonl")).unwrap();
    let review = reviews.iter().find(|r| r.id == "cohen-Triptans").unwrap();
    let mut score = |turn: &str| {
        Answer::from_turn(turn, AnswerFormat::Direct, "query", |q| engine.search(q, review, 3000).ok().map(|ids| recall_at(&ids, &review.targets, 3000)))
    };
    // A broad, well-formed query finds most of the review: a high tier.
    let good = score("<answer>{\"query\": \"sumatriptan OR zolmitriptan OR naratriptan OR rizatriptan OR eletriptan OR almotriptan OR frovatriptan OR triptan*\"}</answer>");
    let Answer::Scored(recall) = good else { panic!("{good:?}") };
    assert!(recall > 0.7, "recall {recall}");
    assert_eq!(rewards::literature(&good), 6.0);
    // Unparseable Boolean syntax is the paper's exception tier (answer -4, format +1).
    let broken = score("<answer>{\"query\": \"(sumatriptan OR \"}</answer>");
    assert_eq!(broken, Answer::Invalid);
    assert_eq!(rewards::literature(&broken), -3.0);
    // A well-formed query that finds nothing is the lowest recall tier.
    let miss = score("<answer>{\"query\": \"xylophone AND zeppelin\"}</answer>");
    assert_eq!(miss, Answer::Scored(0.0));
    assert_eq!(rewards::literature(&miss), -2.5);
}
