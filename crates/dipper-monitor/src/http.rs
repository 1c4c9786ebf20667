//! A tiny HTTP/1.x endpoint for scrapes and health checks, std only.
//!
//! [`HttpServer`] serves on one background thread, one connection at a
//! time: it reads at most [`MAX_HEAD_BYTES`] of request head within
//! [`IO_TIMEOUT`], answers `GET`/`HEAD` through a handler (`404` when it
//! returns `None`, `405` for other methods, `400` for malformed requests,
//! `500` if it panics) and always closes the connection. It is meant for a
//! Prometheus scraper and a liveness probe, not for general traffic.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::exposition::PROMETHEUS_CONTENT_TYPE;
use crate::pipeline::Registry;

/// Largest accepted request head (request line + headers).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request, and to read the response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Read granularity: how often a pending read checks for shutdown.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for the client to close after the response, so unread
/// input does not turn our close into a reset that loses the response.
const LINGER: Duration = Duration::from_millis(250);

/// `text/plain; charset=utf-8`.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// What a handler answers for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// Body (omitted for `HEAD`, but still counted in `Content-Length`).
    pub body: String,
}

impl Response {
    /// A response with any status.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
        }
    }

    /// `200` with a plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(200, TEXT_CONTENT_TYPE, body)
    }

    /// `200` with a Prometheus exposition body.
    pub fn prometheus(body: impl Into<String>) -> Self {
        Self::new(200, PROMETHEUS_CONTENT_TYPE, body)
    }
}

/// Maps a request path (query string removed) to a response; `None` is 404.
pub type Handler = Arc<dyn Fn(&str) -> Option<Response> + Send + Sync>;

/// A handler serving `GET /metrics` (the registry's exposition) and
/// `GET /healthz` (`ok`).
pub fn metrics_handler(registry: Arc<Registry>) -> Handler {
    Arc::new(move |path| match path {
        "/metrics" => Some(Response::prometheus(registry.render())),
        "/healthz" => Some(Response::text("ok\n")),
        _ => None,
    })
}

/// A running endpoint; stops on [`shutdown`](Self::shutdown) or drop.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving on a
    /// background thread.
    pub fn start(addr: SocketAddr, handler: Handler) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("dipper-http-{}", addr.port()))
            .spawn(move || accept_loop(listener, &handler, &thread_stop))?;
        Ok(HttpServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, interrupts any connection being served and waits for
    /// the thread to end (within about 50 ms).
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept by connecting to ourselves.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        match TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            Ok(_) => {
                let _ = thread.join();
            }
            // Could not wake it: leave the thread to exit on its next
            // connection rather than hang the caller.
            Err(_) => drop(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn accept_loop(listener: TcpListener, handler: &Handler, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => serve(stream, handler, stop),
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// How reading the request head ended.
enum Head {
    /// The head, without the blank line.
    Complete(Vec<u8>),
    Bad,
    TooLarge,
    TimedOut,
    /// The client went away or shutdown was requested: answer nothing.
    Gone,
}

fn serve(mut stream: TcpStream, handler: &Handler, stop: &AtomicBool) {
    // Accepted sockets may inherit non-blocking mode on some platforms.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(POLL)).is_err() || stream.set_write_timeout(Some(POLL)).is_err()
    {
        return;
    }
    let (response, head_only, allow) = match read_head(&mut stream, stop) {
        Head::Gone => return,
        Head::Bad => (error(400, "bad request\n"), false, false),
        Head::TooLarge => (
            error(431, "request header fields too large\n"),
            false,
            false,
        ),
        Head::TimedOut => (error(408, "request timeout\n"), false, false),
        Head::Complete(head) => match parse_head(&head) {
            Err(()) => (error(400, "bad request\n"), false, false),
            Ok((method, path)) if method == "GET" || method == "HEAD" => {
                let answer = catch_unwind(AssertUnwindSafe(|| handler(path)));
                let response = match answer {
                    Ok(Some(r)) => r,
                    Ok(None) => error(404, "not found\n"),
                    Err(_) => error(500, "internal server error\n"),
                };
                (response, method == "HEAD", false)
            }
            Ok(_) => (error(405, "method not allowed\n"), false, true),
        },
    };
    if write_response(&mut stream, &response, head_only, allow, stop).is_ok() {
        linger(&mut stream, stop);
    }
}

fn error(status: u16, body: &str) -> Response {
    Response::new(status, TEXT_CONTENT_TYPE, body)
}

fn read_head(stream: &mut TcpStream, stop: &AtomicBool) -> Head {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let mut line_checked = false;
    loop {
        if let Some(end) = head_end(&buf) {
            if end > MAX_HEAD_BYTES {
                return Head::TooLarge;
            }
            buf.truncate(end);
            return Head::Complete(buf);
        }
        // Reject a garbage request line as soon as it is complete.
        if !line_checked {
            if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                if parse_request_line(&buf[..nl]).is_err() {
                    return Head::Bad;
                }
                line_checked = true;
            }
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Head::TooLarge;
        }
        if stop.load(Ordering::SeqCst) {
            return Head::Gone;
        }
        if Instant::now() >= deadline {
            return Head::TimedOut;
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Head::Gone,
            // Half-closed after an incomplete head.
            Ok(0) => return Head::Bad,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_retry(&e) => {}
            Err(_) => return Head::Gone,
        }
    }
}

/// Where the head ends (the index of its blank line), accepting bare `\n`
/// line ends as well as `\r\n`.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let next = i + nl + 1;
        if buf[next..].starts_with(b"\r\n") || buf[next..].starts_with(b"\n") {
            return Some(next);
        }
        i = next;
    }
    None
}

/// `(method, target)` from `METHOD SP /target SP HTTP/1.x`.
fn parse_request_line(line: &[u8]) -> Result<(&str, &str), ()> {
    let line = std::str::from_utf8(line).map_err(|_| ())?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(());
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase());
    let target_ok = target.starts_with('/') && target.bytes().all(|b| b.is_ascii_graphic());
    if token(method) && target_ok && (version == "HTTP/1.1" || version == "HTTP/1.0") {
        Ok((method, target))
    } else {
        Err(())
    }
}

/// Validates the head and returns `(method, path without query)`.
fn parse_head(head: &[u8]) -> Result<(&str, &str), ()> {
    let text = std::str::from_utf8(head).map_err(|_| ())?;
    let mut lines = text.split('\n');
    let (method, target) = parse_request_line(lines.next().ok_or(())?.as_bytes())?;
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (name, _) = line.split_once(':').ok_or(())?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(());
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok((method, path))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    allow: bool,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&response.body);
    }
    // Write in POLL-sized waits under one overall deadline, so a client that
    // reads slowly cannot hold the thread and shutdown can interrupt it.
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut rest = out.as_bytes();
    while !rest.is_empty() {
        if stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if is_retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    stream.shutdown(Shutdown::Write)
}

/// A timeout tick or an interrupted call: try again.
fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Reads and discards input until the client closes (or briefly times out),
/// so closing with unread data does not reset the connection before the
/// client has read the response.
fn linger(stream: &mut TcpStream, stop: &AtomicBool) {
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_retry(&e) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineMetrics;
    use crate::testutil::check_exposition;

    fn localhost() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// Sends raw bytes, reads until close; returns (status, headers, body).
    fn request(addr: SocketAddr, raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let resp = String::from_utf8(resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").expect("no head end");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status = status_line[9..12].parse().unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_ascii_lowercase(), v.to_owned())
            })
            .collect();
        (status, headers, body.to_owned())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn metrics_server() -> (HttpServer, Arc<PipelineMetrics>) {
        let registry = Arc::new(Registry::new());
        let m = registry.create("http-test").unwrap();
        m.records_in.add(5);
        m.scoring_latency.observe(0.002);
        let server = HttpServer::start(localhost(), metrics_handler(registry)).unwrap();
        (server, m)
    }

    #[test]
    fn serves_metrics() {
        let (server, _m) = metrics_server();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let (status, headers, body) = request(
            addr,
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "content-type"),
            Some(PROMETHEUS_CONTENT_TYPE)
        );
        assert_eq!(header(&headers, "connection"), Some("close"));
        assert_eq!(
            header(&headers, "content-length"),
            Some(body.len().to_string().as_str())
        );
        let samples = check_exposition(&body).unwrap();
        assert!(samples
            .iter()
            .any(|s| s.name == "dipper_records_in_total" && s.value == 5.0));

        // HEAD: same headers, no body. Bare LF line ends are accepted.
        let (status, headers, head_body) = request(addr, b"HEAD /metrics HTTP/1.0\n\n");
        assert_eq!(status, 200);
        assert!(head_body.is_empty());
        let len: usize = header(&headers, "content-length").unwrap().parse().unwrap();
        assert!(len > 1000);

        let (status, _, body) = request(addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        server.shutdown();
    }

    #[test]
    fn errors() {
        let (server, _m) = metrics_server();
        let addr = server.local_addr();
        let (status, _, _) = request(addr, b"GET /nope HTTP/1.1\r\n\r\n");
        assert_eq!(status, 404);
        let (status, headers, _) =
            request(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(status, 405);
        assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
        for garbage in [
            &b"garbage\r\n\r\n"[..],
            b"\x00\xff\xfe\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"hello", // half-closed below before the head ends
        ] {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(garbage).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            assert!(resp.starts_with("HTTP/1.1 400 "), "{garbage:?}: {resp}");
        }
        // Oversized head.
        let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while big.len() <= MAX_HEAD_BYTES + 100 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        big.extend_from_slice(b"\r\n");
        let (status, _, _) = request(addr, &big);
        assert_eq!(status, 431);
        // Still serving afterwards.
        assert_eq!(request(addr, b"GET /healthz HTTP/1.1\r\n\r\n").0, 200);
        server.shutdown();
    }

    #[test]
    fn slow_client_times_out_and_handler_panic_is_500() {
        let handler: Handler = Arc::new(|path| match path {
            "/panic" => panic!("handler bug"),
            "/huge" => Some(Response::text("x".repeat(32 << 20))),
            _ => Some(Response::text("fine")),
        });
        let server = HttpServer::start(localhost(), handler).unwrap();
        let addr = server.local_addr();
        let started = Instant::now();
        let (status, _, _) = request(addr, b"GET / HTTP/1.1\r\n");
        assert_eq!(status, 408);
        let waited = started.elapsed();
        assert!(
            waited >= IO_TIMEOUT && waited < IO_TIMEOUT * 3,
            "{waited:?}"
        );
        assert_eq!(request(addr, b"GET /panic HTTP/1.1\r\n\r\n").0, 500);
        assert_eq!(request(addr, b"GET /x HTTP/1.1\r\n\r\n").0, 200);

        // A client that never reads a large response holds the thread for
        // about IO_TIMEOUT, not forever.
        let mut stuck = TcpStream::connect(addr).unwrap();
        stuck.write_all(b"GET /huge HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(request(addr, b"GET /x HTTP/1.1\r\n\r\n").0, 200);
        let waited = started.elapsed();
        assert!(waited < IO_TIMEOUT * 3, "{waited:?}");
        drop(stuck);
    }

    #[test]
    fn shutdown_is_prompt_even_with_an_idle_client() {
        let (server, _m) = metrics_server();
        let addr = server.local_addr();
        // A client that connects and sends nothing keeps the thread busy.
        let _idle = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        server.shutdown();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The port is no longer served.
        let refused =
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
                let mut buf = Vec::new();
                s.read_to_end(&mut buf)?;
                Ok(buf)
            });
        assert!(refused.map(|b| b.is_empty()).unwrap_or(true));

        // Drop stops it too.
        let started = Instant::now();
        drop(HttpServer::start(localhost(), Arc::new(|_| None)).unwrap());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
