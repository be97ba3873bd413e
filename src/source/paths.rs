//! Paths written inside listing files (manifests, pair lists, MVTec dictionaries), often on another
//! machine: Windows separators, foreign absolute prefixes, and entries that climb out of the dataset.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the paths of one listing file resolve.
#[derive(Debug, Clone, Copy)]
pub struct Rebase<'a> {
    /// The listing file's folder: relative paths start here, and must stay inside it.
    pub root: &'a Path,
    pub prefix: Option<&'a PathPrefix>,
    pub allow_outside: bool,
}

impl Rebase<'_> {
    /// The file a written path names. A leading `/` means the listing's folder (as SegNet's CamVid
    /// lists write it) unless `allow_outside`; a foreign Windows path needs `path_prefix`.
    pub fn resolve(&self, written: &str) -> Result<PathBuf, String> {
        let path = self.rebased(written)?;
        if !self.allow_outside && !inside(&path, self.root) {
            return Err(format!(
                "`{written}` points outside {}; set [input] allow_outside = true if that is intended",
                self.root.display()
            ));
        }
        Ok(path)
    }

    /// The path with `path_prefix` applied, if the prefix matches.
    pub fn prefixed(&self, written: &str) -> Option<PathBuf> {
        let prefix = self.prefix?;
        let s = normalise(written.trim());
        let rest = strip_prefix(&s, &normalise(&prefix.from))?;
        Some(self.root.join(&prefix.to).join(rest))
    }

    fn rebased(&self, written: &str) -> Result<PathBuf, String> {
        if let Some(p) = self.prefixed(written) {
            return Ok(p);
        }
        let s = normalise(written.trim());
        if is_windows_absolute(&s) {
            return Err(format!(
                "`{written}` is a Windows path from another machine; set [input] path_prefix = {{ from = \"{}\", to = \".\" }} with the part that leads to this dataset",
                windows_parent(&s)
            ));
        }
        match s.strip_prefix('/') {
            Some(rest) if !self.allow_outside => Ok(self.root.join(rest)),
            _ => Ok(self.root.join(&s)),
        }
    }
}

/// Backslashes become `/` (a file name cannot hold `\` portably anyway).
pub fn normalise(path: &str) -> String {
    path.replace('\\', "/")
}

/// `C:/...` or `//server/...`.
pub fn is_windows_absolute(path: &str) -> bool {
    let b = path.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/')
        || path.starts_with("//")
}

fn windows_parent(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(parent, _)| parent)
}

/// The rest of `path` after `prefix` (whole components; case-insensitive for Windows paths).
fn strip_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let prefix = prefix.trim_end_matches('/');
    let head = path.get(..prefix.len())?;
    let same = if is_windows_absolute(path) {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    let rest = &path[prefix.len()..];
    (same && (rest.is_empty() || rest.starts_with('/'))).then(|| rest.trim_start_matches('/'))
}

/// Whether `file` stays within `root`, both lexically (no `..` climbing out, no foreign absolute
/// path) and after following symlinks when the file exists.
pub fn inside(file: &Path, root: &Path) -> bool {
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .map(|a| super::tidy(&a))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let lexical = absolute(file).starts_with(absolute(root));
    let real = match (std::fs::canonicalize(file), std::fs::canonicalize(root)) {
        (Ok(f), Ok(r)) => f.starts_with(r),
        _ => true, // a missing file is reported when it is read
    };
    lexical && real
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathPrefix {
    /// The start of the foreign paths, e.g. `C:\\Users\\ana\\pills` or `/SegNet/CamVid`.
    pub from: String,
    /// What replaces it, relative to the listing file's folder (e.g. `.`).
    pub to: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebase<'a>(root: &'a Path, prefix: Option<&'a PathPrefix>) -> Rebase<'a> {
        Rebase {
            root,
            prefix,
            allow_outside: false,
        }
    }

    #[test]
    fn windows_prefix_is_replaced_case_insensitively() {
        let p = PathPrefix {
            from: r"C:\Users\Ana\Pills".into(),
            to: "data".into(),
        };
        let r = rebase(Path::new("/ds"), Some(&p));
        assert_eq!(
            r.resolve(r"c:\users\ana\pills\img\001.png").unwrap(),
            Path::new("/ds/data/img/001.png")
        );
        // a prefix matches whole components only
        assert!(r.resolve(r"C:\Users\Ana\Pills2\x.png").is_err());
    }

    #[test]
    fn foreign_windows_path_without_prefix_says_what_to_set() {
        let e = rebase(Path::new("/ds"), None)
            .resolve(r"D:\data\img\1.png")
            .unwrap_err();
        assert!(
            e.contains("path_prefix") && e.contains("D:/data/img"),
            "{e}"
        );
    }

    #[test]
    fn leading_slash_is_the_listing_folder_and_climbing_out_is_refused() {
        let r = rebase(Path::new("/ds"), None);
        assert_eq!(
            r.resolve("/train/a.png").unwrap(),
            Path::new("/ds/train/a.png")
        );
        assert!(r.resolve("../secret.png").unwrap_err().contains("outside"));
    }
}
