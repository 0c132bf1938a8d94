//! `seed models fetch` and `seed models list`.

use crate::fetch::models;
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ModelsAction {
    /// Install models: `default` (target and draft), `tiny`, `all` or one name.
    Fetch {
        #[arg(default_value = "default")]
        which: String,
    },
    /// Show the known models and where they are installed.
    List,
}

pub fn run(action: ModelsAction) -> Result<()> {
    let dir = models::models_dir()?;
    match action {
        ModelsAction::Fetch { which } => {
            for spec in models::group(&which)? {
                let path = models::ensure(spec, &dir, true)?;
                println!("{}\t{}", spec.name, path.display());
            }
        }
        ModelsAction::List => {
            println!("models folder: {}", dir.display());
            for line in models::list(&dir) {
                println!("{line}");
            }
        }
    }
    Ok(())
}
