//! The runner end to end, with a stand-in `meshctl` (a script that says it is ready and
//! waits): the `up` step gets the free ports, `env` lines get them too, a failing
//! expectation stops the lab with its message, and the cleanup still runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bookinfo_labs::runner::{self, Options};

const LAB: &str = r#"# Lab 99: the runner itself

```sh up
meshctl up --workloads productpage
```

```sh env
export GATEWAY_URL=127.0.0.1:8080
```

```sh
echo "gateway at $GATEWAY_URL"
ls mesh
```

```expect
contains "gateway at 127.0.0.1:"
does not contain ":8080"
contains "config"
```

```sh
echo 503
```

```expect
status 200
```

```sh
touch never-reached
```

```sh cleanup
touch cleaned
```
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_lab_runs_until_its_first_failing_step_then_cleans_up() {
    let base = std::env::temp_dir().join(format!("labs-runner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let repo = base.join("repo");
    write(&repo.join("mesh/config/x.yaml"), "");
    write(&repo.join("labs/99-runner/README.md"), LAB);
    let bin = base.join("bin");
    let meshctl = bin.join("meshctl");
    write(
        &meshctl,
        "#!/bin/sh\necho \"$@\" > .labs/meshctl-args\necho 'Bookinfo is ready'\nexec sleep 600\n",
    );
    std::fs::set_permissions(&meshctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let opts = Options {
        repo: repo.clone(),
        bin_dir: bin,
        work: base.join("work"),
        step_timeout: Duration::from_secs(20),
        up_timeout: Duration::from_secs(20),
    };

    let report = runner::run(&repo.join("labs/99-runner"), &opts);

    let failure = report.failure.expect("the status step fails");
    assert!(
        failure.contains("(labs/99-runner/README.md:22)"),
        "{failure}"
    );
    assert!(failure.contains("$ echo 503"), "{failure}");
    assert!(
        failure.contains("expected status 200, saw status 503"),
        "{failure}"
    );
    assert_eq!(
        (report.passed, report.steps),
        (4, 6),
        "up, env, echo, then the cleanup"
    );
    let workdir: PathBuf = base.join("work/99-runner");
    let args = std::fs::read_to_string(workdir.join(".labs/meshctl-args")).unwrap();
    assert!(
        args.starts_with("up --workloads productpage --base-port "),
        "{args}"
    );
    assert!(
        workdir.join("cleaned").exists(),
        "the cleanup ran after the failure"
    );
    assert!(
        !workdir.join("never-reached").exists(),
        "the lab stopped at the failure"
    );
    std::fs::remove_dir_all(&base).unwrap();
}
