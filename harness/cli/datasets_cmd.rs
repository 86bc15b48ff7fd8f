//! `harness datasets list|fetch`.
use anyhow::Result;
use harness_datasets::fetch::{fetch, FetchOptions};
use harness_datasets::registry::Availability;

#[derive(clap::Subcommand)]
pub enum DatasetsCommand {
    /// Show every dataset, its family and whether it runs offline (and what is missing).
    List,
    /// Download a dataset's official files into its data folder (needs network).
    Fetch {
        /// Dataset name.
        name: String,
        /// Download even when the card records no checksum (the sha256 is printed).
        #[arg(long)]
        allow_unverified: bool,
    },
}

pub fn run(cmd: DatasetsCommand, root: Option<std::path::PathBuf>) -> Result<()> {
    let registry = crate::workspace(root)?.registry()?;
    match cmd {
        DatasetsCommand::List => {
            let width = registry.cards().map(|c| c.name.len()).max().unwrap_or(7).max(7);
            println!("{:<width$} {:<17} {:<8} {:<8} details", "dataset", "family", "loader", "offline");
            for card in registry.cards() {
                let (offline, details) = match registry.availability(card) {
                    Availability::Offline if card.loader.implemented() => ("yes", card.title.clone()),
                    Availability::Offline => ("no", format!("{}: data present, loader '{}' not built yet", card.title, card.loader.name())),
                    Availability::Missing(m) => {
                        let note = if card.offline_note.is_empty() { String::new() } else { format!(" ({})", card.offline_note) };
                        ("no", format!("missing {}{note}", m.join(", ")))
                    }
                };
                println!("{:<width$} {:<17} {:<8} {:<8} {details}", card.name, card.family.name(), card.loader.name(), offline);
            }
            println!("data folder: {}", registry.data_root().display());
        }
        DatasetsCommand::Fetch { name, allow_unverified } => {
            let card = registry.get(&name)?;
            let dir = registry.dataset_dir(card);
            let opts = FetchOptions { allow_unverified, ..Default::default() };
            for f in fetch(card, &dir, &opts)? {
                println!("{} -> {} (sha256 {}, {} files unpacked)", f.url, f.path.display(), f.sha256, f.unpacked);
            }
        }
    }
    Ok(())
}
