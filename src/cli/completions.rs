//! Shell completions and the man page, generated from the same clap definition as `--help`.
use clap::CommandFactory;
use std::io::Write;

use super::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Error, Result};

pub fn completions(a: CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "segprep", &mut std::io::stdout());
    Ok(0)
}

/// `segprep.1` on standard output, or one page per command (`segprep-build.1`, ...) in `--out`.
pub fn man(a: ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    let Some(dir) = a.out else {
        let mut out = Vec::new();
        render(&cmd, &mut out)?;
        std::io::stdout()
            .write_all(&out)
            .map_err(|e| Error::Usage(format!("cannot write the man page: {e}")))?;
        return Ok(0);
    };
    let mut pages = vec![(String::from("segprep"), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("segprep-{}", sub.get_name()), sub.clone()));
    }
    for (name, page) in pages {
        let mut out = Vec::new();
        let page = page.display_name(name.clone()).bin_name(name.clone());
        render(&page.version(env!("CARGO_PKG_VERSION")), &mut out)?;
        crate::storage::atomic::write_bytes(&dir.join(format!("{name}.1")), &out)?;
    }
    Ok(0)
}

fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<()> {
    clap_mangen::Man::new(cmd.clone())
        .render(out)
        .map_err(|e| Error::Usage(format!("cannot render the man page: {e}")))
}
