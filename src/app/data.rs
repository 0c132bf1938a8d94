//! `seed data fetch`: installs the Tree-of-Thoughts data files.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;

use crate::fetch::data::fetch;
use crate::search::tasks::data as datasets;

#[derive(Subcommand)]
pub enum DataAction {
    /// Install the Tree-of-Thoughts data files (Game of 24, Creative Writing, crosswords).
    Fetch {
        /// Install here instead of <user cache dir>/seed/datasets.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(action: DataAction) -> Result<()> {
    match action {
        DataAction::Fetch { dir } => {
            let dir = match dir.or_else(datasets::install_dir) {
                Some(dir) => dir,
                None => bail!("no user cache directory is known here; pass --dir"),
            };
            for path in fetch(&dir)? {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}
