//! `probe`: the `curl` of our `FROM scratch` images, which have no shell and no curl.
//!
//! ```text
//! probe URL                 exit 0 when the answer is 2xx or 3xx, else 1 (healthchecks)
//! probe --print URL         print the body, like `curl -sS URL` (exit 0 on any HTTP answer)
//! probe --status URL        print the status code, like `curl -s -o /dev/null -w '%{http_code}'`
//!   -i, --include           with --print: the status line and headers too
//!   -H, --header 'K: V'     an extra request header (repeatable)
//!   -d, --data BODY         POST BODY as a form (application/x-www-form-urlencoded)
//!   -X, --request METHOD    the method (default GET, or POST with --data)
//!   -f, --fail              with --print or --status: exit 1 on a status of 400 or more
//!   -t, --timeout SECONDS   for the whole exchange (default 5)
//!       --no-proxy          ignore http_proxy / HTTP_PROXY
//!
//! probe exec [--route-to HOST:PORT] NAME=VALUE... -- PROGRAM [ARGS...]
//!   runs PROGRAM with the variables set; `{ip}` in a value becomes this container's IP
//!   address on the route to HOST:PORT (in brackets when IPv6, ready for `{ip}:PORT`)
//! ```
//!
//! Like curl, a request to a host other than localhost goes through `http_proxy` (or
//! `HTTP_PROXY`) unless `no_proxy` (or `NO_PROXY`) names it, so inside an app's container
//! `probe --print http://productpage:9080/productpage` goes through the sidecar, as the
//! istio.io tasks expect. Only plain `http://` is spoken. Exit codes: 0 success, 1 the
//! request failed (no connection, timeout, or the status), 2 bad usage, 127 `exec` could
//! not run the program.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: probe [--print|--status] [-i] [-f] [-H 'K: V']... [-d BODY] [-X METHOD] [-t SECONDS] [--no-proxy] URL
       probe exec [--route-to HOST:PORT] NAME=VALUE... -- PROGRAM [ARGS...]";

/// The largest answer kept in memory.
const MAX_RESPONSE: usize = 16 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("exec") {
        return exec(&args[1..]);
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(Usage(msg)) => {
            eprintln!("probe: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let proxy = if opts.no_proxy {
        None
    } else {
        proxy_for(&opts.url, |k| std::env::var(k).ok())
    };
    match fetch(&opts, proxy.as_ref()) {
        Ok(answer) => report(&opts, &answer),
        Err(e) => {
            eprintln!("probe: {}: {e}", opts.url.text);
            ExitCode::from(1)
        }
    }
}

/// Writes what was asked for; the exit code for the answer.
fn report(opts: &Options, answer: &Answer) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = match opts.output {
        Output::Quiet => Ok(()),
        Output::Status => writeln!(out, "{}", answer.status),
        Output::Body => {
            let head = if opts.include {
                out.write_all(&answer.head)
            } else {
                Ok(())
            };
            head.and_then(|()| out.write_all(&answer.body))
        }
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        eprintln!("probe: cannot write the answer: {e}");
        return ExitCode::from(1);
    }
    let failed = match opts.output {
        Output::Quiet => answer.status >= 400 || answer.status < 200,
        Output::Status | Output::Body => opts.fail && answer.status >= 400,
    };
    if failed {
        if opts.output == Output::Quiet {
            eprintln!("probe: {}: status {}", opts.url.text, answer.status);
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A usage error, with its message.
#[derive(Debug, PartialEq, Eq)]
struct Usage(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Quiet,
    Body,
    Status,
}

#[derive(Debug)]
struct Options {
    url: Url,
    output: Output,
    include: bool,
    fail: bool,
    method: Option<String>,
    headers: Vec<(String, String)>,
    data: Option<String>,
    timeout: Duration,
    no_proxy: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, Usage> {
        let mut url = None;
        let mut o = Options {
            url: Url::default(),
            output: Output::Quiet,
            include: false,
            fail: false,
            method: None,
            headers: Vec::new(),
            data: None,
            timeout: Duration::from_secs(5),
            no_proxy: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| Usage(format!("{name} needs a value")))
            };
            match a.as_str() {
                "-h" | "--help" => return Err(Usage("help".into())),
                "-p" | "--print" => o.output = Output::Body,
                "-s" | "--status" => o.output = Output::Status,
                "-i" | "--include" => o.include = true,
                "-f" | "--fail" => o.fail = true,
                "--no-proxy" => o.no_proxy = true,
                "-H" | "--header" => {
                    let h = value(a)?;
                    let (k, v) = h
                        .split_once(':')
                        .filter(|(k, _)| !k.trim().is_empty())
                        .ok_or_else(|| Usage(format!("header {h:?} is not 'Name: value'")))?;
                    o.headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                "-d" | "--data" => o.data = Some(value(a)?),
                "-X" | "--request" => o.method = Some(value(a)?),
                "-t" | "--timeout" => {
                    let v = value(a)?;
                    let secs: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| {
                            Usage(format!("timeout {v:?} is not a number of seconds"))
                        })?;
                    o.timeout = Duration::from_secs_f64(secs);
                }
                s if s.starts_with('-') => return Err(Usage(format!("unknown option {s}"))),
                s => {
                    if url.is_some() {
                        return Err(Usage(format!("one URL only ({s})")));
                    }
                    url = Some(Url::parse(s)?);
                }
            }
        }
        o.url = url.ok_or_else(|| Usage("a URL is required".into()))?;
        Ok(o)
    }

    fn method(&self) -> &str {
        match (&self.method, &self.data) {
            (Some(m), _) => m,
            (None, Some(_)) => "POST",
            (None, None) => "GET",
        }
    }
}

/// An `http://` URL, taken apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Url {
    /// As given, for messages and the proxy's request line.
    text: String,
    /// `host[:port]` as written (the Host header).
    authority: String,
    /// Host name or IP, without IPv6 brackets.
    host: String,
    port: u16,
    /// Path and query, at least `/`.
    path: String,
}

impl Url {
    fn parse(text: &str) -> Result<Self, Usage> {
        let bad = |why: &str| Usage(format!("URL {text:?}: {why}"));
        let rest = if let Some(r) = text.strip_prefix("http://") {
            r
        } else if text.contains("://") {
            return Err(bad("only http:// is supported"));
        } else {
            text
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        };
        Ok(Url {
            text: text.to_owned(),
            authority: authority.to_owned(),
            host: host.to_owned(),
            port,
            path,
        })
    }

    fn is_local(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The proxy a request for `url` goes through, as curl picks it from the environment.
fn proxy_for(url: &Url, env: impl Fn(&str) -> Option<String>) -> Option<Url> {
    if url.is_local() {
        return None;
    }
    let no_proxy = env("no_proxy")
        .or_else(|| env("NO_PROXY"))
        .unwrap_or_default();
    let host = url.host.to_ascii_lowercase();
    let excluded = no_proxy.split(',').map(str::trim).any(|n| {
        let n = n.trim_start_matches('.').to_ascii_lowercase();
        n == "*" || (!n.is_empty() && (host == n || host.ends_with(&format!(".{n}"))))
    });
    if excluded {
        return None;
    }
    let proxy = env("http_proxy")
        .or_else(|| env("HTTP_PROXY"))
        .filter(|p| !p.is_empty())?;
    Url::parse(proxy.trim_end_matches('/')).ok()
}

/// A complete answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The status line and headers, with the blank line.
    head: Vec<u8>,
    body: Vec<u8>,
}

fn fetch(opts: &Options, proxy: Option<&Url>) -> Result<Answer, String> {
    let deadline = Instant::now() + opts.timeout;
    let target = proxy.unwrap_or(&opts.url);
    let mut stream = connect(target, deadline)?;
    let request_target = if proxy.is_some() {
        format!("http://{}{}", opts.url.authority, opts.url.path)
    } else {
        opts.url.path.clone()
    };
    let request = request_bytes(opts, &request_target);
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&request)
        .map_err(|e| format!("cannot send the request: {e}"))?;
    read_answer(&mut stream, opts.method() == "HEAD", deadline)
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "timed out".to_owned())
}

fn connect(url: &Url, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut last = format!("{} has no address", url.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn request_bytes(opts: &Options, target: &str) -> Vec<u8> {
    let has = |name: &str| {
        opts.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut head = format!("{} {target} HTTP/1.1\r\n", opts.method());
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", opts.url.authority));
    }
    if !has("user-agent") {
        head.push_str(concat!(
            "User-Agent: probe/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    if !has("accept") {
        head.push_str("Accept: */*\r\n");
    }
    head.push_str("Connection: close\r\n");
    if let Some(data) = &opts.data {
        if !has("content-type") {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", data.len()));
    }
    for (k, v) in &opts.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(data) = &opts.data {
        bytes.extend_from_slice(data.as_bytes());
    }
    bytes
}

/// Reads until the answer is complete (by its framing) or the server closes.
fn read_answer(
    stream: &mut TcpStream,
    head_request: bool,
    deadline: Instant,
) -> Result<Answer, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(answer) = parse_answer(&buf, head_request, false)? {
            return Ok(answer);
        }
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out waiting for the answer".into());
            }
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        };
        if n == 0 {
            return parse_answer(&buf, head_request, true)?
                .ok_or_else(|| "the connection closed before a complete answer".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(format!("the answer is larger than {MAX_RESPONSE} bytes"));
        }
    }
}

/// The answer in `buf` if it is complete; `closed`: the server has closed the connection.
fn parse_answer(buf: &[u8], head_request: bool, closed: bool) -> Result<Option<Answer>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = &buf[..end + 4];
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(
                    v.parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {v:?}"))?,
                );
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let rest = &buf[end + 4..];
    let done = |body: Vec<u8>| {
        Some(Answer {
            status,
            head: head.to_vec(),
            body,
        })
    };
    if head_request || status < 200 || status == 204 || status == 304 {
        return Ok(done(Vec::new()));
    }
    if chunked {
        return Ok(dechunk(rest)?.and_then(done));
    }
    if let Some(len) = length {
        return Ok((rest.len() >= len)
            .then(|| rest[..len].to_vec())
            .and_then(done));
    }
    Ok(closed.then(|| rest.to_vec()).and_then(done))
}

/// The body of a complete chunked encoding; `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            // Trailers, if any, end with an empty line.
            return Ok(
                (data.starts_with(b"\r\n") || data.windows(4).any(|w| w == b"\r\n\r\n"))
                    .then_some(body),
            );
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `probe exec`: sets variables (with `{ip}` filled in) and becomes the program.
fn exec(args: &[String]) -> ExitCode {
    match exec_plan(args) {
        Ok(plan) => {
            let ip = match &plan.route_to {
                Some(target) => match route_ip(target, Duration::from_secs(60)) {
                    Ok(ip) => Some(ip),
                    Err(e) => {
                        eprintln!("probe exec: {e}");
                        return ExitCode::from(1);
                    }
                },
                None => None,
            };
            let vars = plan.vars.iter().map(|(k, v)| (k, fill(v, ip)));
            let err = Command::new(&plan.program)
                .args(&plan.args)
                .envs(vars)
                .exec();
            eprintln!("probe exec: cannot run {}: {err}", plan.program);
            ExitCode::from(127)
        }
        Err(Usage(msg)) => {
            eprintln!("probe exec: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ExecPlan {
    route_to: Option<String>,
    vars: Vec<(String, String)>,
    program: String,
    args: Vec<String>,
}

fn exec_plan(args: &[String]) -> Result<ExecPlan, Usage> {
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or_else(|| Usage("-- PROGRAM is missing".into()))?;
    let (before, after) = (&args[..split], &args[split + 1..]);
    let (program, rest) = after
        .split_first()
        .ok_or_else(|| Usage("no PROGRAM after --".into()))?;
    let mut route_to = None;
    let mut vars = Vec::new();
    let mut it = before.iter();
    while let Some(a) = it.next() {
        if a == "--route-to" {
            route_to = Some(
                it.next()
                    .cloned()
                    .ok_or_else(|| Usage("--route-to needs HOST:PORT".into()))?,
            );
        } else if let Some((k, v)) = a.split_once('=').filter(|(k, _)| !k.is_empty()) {
            vars.push((k.to_owned(), v.to_owned()));
        } else {
            return Err(Usage(format!("{a:?} is not NAME=VALUE")));
        }
    }
    if route_to.is_none() && vars.iter().any(|(_, v)| v.contains("{ip}")) {
        return Err(Usage("{ip} needs --route-to HOST:PORT".into()));
    }
    Ok(ExecPlan {
        route_to,
        vars,
        program: program.clone(),
        args: rest.to_vec(),
    })
}

fn fill(value: &str, ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(ip)) => value.replace("{ip}", &ip.to_string()),
        Some(IpAddr::V6(ip)) => value.replace("{ip}", &format!("[{ip}]")),
        None => value.to_owned(),
    }
}

/// The local address the kernel picks to reach `target` (no packet is sent); retried
/// while the name does not resolve yet (a container starting before its DNS entry).
fn route_ip(target: &str, patience: Duration) -> Result<IpAddr, String> {
    let deadline = Instant::now() + patience;
    loop {
        let attempt = target
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {target}: {e}"))
            .and_then(|mut addrs| {
                addrs
                    .next()
                    .ok_or_else(|| format!("{target} has no address"))
            })
            .and_then(|addr| {
                let any: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any).map_err(|e| e.to_string())?;
                socket
                    .connect(addr)
                    .map_err(|e| format!("no route to {addr}: {e}"))?;
                socket
                    .local_addr()
                    .map(|a| a.ip())
                    .map_err(|e| e.to_string())
            });
        match attempt {
            Ok(ip) => return Ok(ip),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn urls_are_taken_apart_like_curl() {
        let u = Url::parse("http://productpage:9080/productpage?u=normal#x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("productpage", 9080));
        assert_eq!(u.path, "/productpage?u=normal");
        assert_eq!(u.authority, "productpage:9080");
        let u = Url::parse("localhost:9080").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 9080, "/")
        );
        let u = Url::parse("http://[::1]:15000/ready").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 15000));
        assert_eq!(Url::parse("http://h?x=1").unwrap().path, "/?x=1");
        assert!(Url::parse("https://example.com/").is_err());
        assert!(Url::parse("http://:80/").is_err());
    }

    #[test]
    fn the_proxy_comes_from_the_environment_except_for_local_and_no_proxy_hosts() {
        let env = |k: &str| match k {
            "http_proxy" => Some("http://127.0.0.1:15001".to_owned()),
            "NO_PROXY" => Some("example.org,.svc".to_owned()),
            _ => None,
        };
        let via = |u: &str| proxy_for(&Url::parse(u).unwrap(), env).map(|p| p.port);
        assert_eq!(via("http://reviews:9080/"), Some(15001));
        assert_eq!(via("http://127.0.0.1:9080/"), None);
        assert_eq!(via("http://localhost:9080/"), None);
        assert_eq!(via("http://api.example.org/"), None);
        assert_eq!(via("http://ratings.default.svc/"), None);
    }

    #[test]
    fn framing_content_length_chunked_and_close() {
        let a = parse_answer(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]));
        assert!(
            parse_answer(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok",
                false,
                false
            )
            .unwrap()
            .is_none()
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_answer(chunked, false, false).unwrap().unwrap().body,
            b"abcde"
        );
        assert!(
            parse_answer(&chunked[..chunked.len() - 2], false, false)
                .unwrap()
                .is_none()
        );
        assert!(
            parse_answer(b"HTTP/1.0 503 x\r\n\r\nbody", false, false)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            parse_answer(b"HTTP/1.0 503 x\r\n\r\nbody", false, true)
                .unwrap()
                .unwrap()
                .body,
            b"body"
        );
        assert!(parse_answer(b"SSH-2.0\r\n\r\n", false, true).is_err());
    }

    #[test]
    fn options_and_exec_plans() {
        let o = Options::parse(&strings(&[
            "--print",
            "-H",
            "end-user: jason",
            "-d",
            "a=b",
            "http://h/login",
        ]))
        .unwrap();
        assert_eq!((o.output, o.method()), (Output::Body, "POST"));
        let req = String::from_utf8(request_bytes(&o, "/login")).unwrap();
        assert!(
            req.starts_with("POST /login HTTP/1.1\r\nHost: h\r\n"),
            "{req}"
        );
        assert!(
            req.contains("end-user: jason\r\n") && req.ends_with("\r\n\r\na=b"),
            "{req}"
        );
        assert!(Options::parse(&strings(&["-H", "nocolon", "http://h/"])).is_err());
        assert!(Options::parse(&strings(&[])).is_err());

        let p = exec_plan(&strings(&[
            "--route-to",
            "control:15010",
            "IN={ip}:15006",
            "--",
            "/mesh-proxy",
            "-v",
        ]))
        .unwrap();
        assert_eq!(p.route_to.as_deref(), Some("control:15010"));
        assert_eq!(p.args, ["-v"]);
        assert_eq!(
            fill(&p.vars[0].1, Some([10, 0, 0, 7].into())),
            "10.0.0.7:15006"
        );
        assert_eq!(
            fill("{ip}:1", Some(std::net::Ipv6Addr::LOCALHOST.into())),
            "[::1]:1"
        );
        assert!(exec_plan(&strings(&["IN={ip}", "--", "x"])).is_err());
        assert!(exec_plan(&strings(&["IN=1"])).is_err());
        assert_eq!(
            route_ip("127.0.0.1:9", Duration::ZERO).unwrap(),
            IpAddr::from([127, 0, 0, 1])
        );
    }

    #[test]
    fn a_real_exchange_over_loopback() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown")
                .unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let o = Options::parse(&strings(&[&format!("http://127.0.0.1:{port}/health")])).unwrap();
        let a = fetch(&o, None).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (503, &b"down"[..]));
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /health HTTP/1.1\r\n")
        );
        let o =
            Options::parse(&strings(&["-t", "1", &format!("http://127.0.0.1:{port}/")])).unwrap();
        assert!(fetch(&o, None).unwrap_err().contains("cannot connect"));
    }
}
