//! The control plane client as meshctl uses it: `mesh_client::ControlClient`, telling the
//! user how to get a control plane when none answers.

pub use mesh_client::{ClientError, ControlClient, Credential, DEFAULT_URL};

/// What meshctl adds to "cannot reach the control plane at URL (REASON)".
const UNREACHABLE_HINT: &str =
    "; is `meshctl up` running? (or pass --control / set MESHCTL_CONTROL)";

/// A client for the control plane at `url` (`http://host:port[/prefix]`).
pub fn connect(url: &str) -> Result<ControlClient, ClientError> {
    Ok(ControlClient::new(url)?.with_hint(UNREACHABLE_HINT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_says_how_to_start_or_point_at_a_control_plane() {
        // Bind then drop: the port is (almost certainly) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let e = connect(&url).unwrap().faults().await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot reach the control plane at {url} (")),
            "{text}"
        );
        assert!(
            text.ends_with("); is `meshctl up` running? (or pass --control / set MESHCTL_CONTROL)"),
            "{text}"
        );
    }
}
