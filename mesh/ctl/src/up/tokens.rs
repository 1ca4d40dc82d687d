//! The credentials of one `meshctl up`: a fresh random token per proxy, written where only
//! this user can read them. The control plane gets the list of all of them
//! (`--workload-tokens`), each proxy its own file (`MESH_PROXY_TOKEN_FILE`), so a
//! process that is not the proxy of a workload cannot register as that workload or get
//! its certificate.

use std::path::{Path, PathBuf};

use bookinfo_common::secret::{random_token, write_private};

use crate::CtlError;

/// The control plane's tokens file, in the tokens directory.
pub(crate) const CONTROL_FILE: &str = "workload-tokens.yaml";

/// The identity one proxy's token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) workload: String,
    pub(crate) namespace: String,
    pub(crate) service_account: String,
}

/// Where the proxy of `workload` finds its token.
pub(crate) fn token_path(dir: &Path, workload: &str) -> PathBuf {
    dir.join(format!("{workload}.token"))
}

/// Generates a token per grant and writes the proxies' files and the control plane's
/// list into `dir`, replacing the tokens of an earlier run.
pub(crate) fn write(dir: &Path, grants: &[Grant]) -> Result<(), CtlError> {
    let io = |what: &Path, e| CtlError::io(format!("cannot write {}", what.display()), e);
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir, e)),
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io(dir, e))?;
    let mut list = String::from(
        "# Written by meshctl up for this run: one token per proxy (see each <workload>.token).\n",
    );
    for grant in grants {
        let token = random_token();
        let path = token_path(dir, &grant.workload);
        write_private(&path, &format!("{token}\n")).map_err(|e| io(&path, e))?;
        list.push_str(&format!(
            "- token: \"{token}\"\n  namespace: \"{}\"\n  serviceAccount: \"{}\"\n  workload: \"{}\"\n",
            grant.namespace, grant.service_account, grant.workload
        ));
    }
    let path = dir.join(CONTROL_FILE);
    write_private(&path, &list).map_err(|e| io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proxy_gets_its_own_private_token() {
        let dir = std::env::temp_dir().join(format!("meshctl-tokens-{}", std::process::id()));
        let grant = |w: &str, sa: &str| Grant {
            workload: w.into(),
            namespace: "default".into(),
            service_account: sa.into(),
        };
        let grants = [
            grant("reviews-v1", "bookinfo-reviews"),
            grant("reviews-v2", "bookinfo-reviews"),
        ];
        write(&dir, &grants).unwrap();
        let first = std::fs::read_to_string(token_path(&dir, "reviews-v1")).unwrap();
        let second = std::fs::read_to_string(token_path(&dir, "reviews-v2")).unwrap();
        assert_eq!(first.trim().len(), 64);
        assert_ne!(first, second, "same account, still one token each");
        let list = std::fs::read_to_string(dir.join(CONTROL_FILE)).unwrap();
        assert!(list.contains(first.trim()) && list.contains("workload: \"reviews-v1\""));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [
                dir.join(CONTROL_FILE),
                token_path(&dir, "reviews-v1"),
                dir.clone(),
            ] {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{}: {mode:o}", path.display());
            }
        }
        // A second run replaces the tokens.
        write(&dir, &grants[..1]).unwrap();
        let again = std::fs::read_to_string(token_path(&dir, "reviews-v1")).unwrap();
        assert_ne!(again, first);
        assert!(!token_path(&dir, "reviews-v2").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
