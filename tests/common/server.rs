//! A stand-in download server: python3's http.server on a free 127.0.0.1 port, for the tests
//! that run bundle functions against downloads (never anything off this host).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Serves `root`, appends the path of each GET to `log`, and answers 503 to the first request
/// for every path listed in `flaky` (one a line, read at each request), to exercise retries.
/// Prints the port it bound.
const SERVER: &str = r#"
import http.server, os, sys
root, log, flaky = sys.argv[1], sys.argv[2], sys.argv[3]
failed = set()
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + "\n")
        wanted = open(flaky).read().split() if os.path.exists(flaky) else []
        if self.path in wanted and self.path not in failed:
            failed.add(self.path)
            self.send_error(503, "try again")
            return
        super().do_GET()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The running server, stopped (by its own handle) when dropped.
pub struct Server {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The folder it serves.
    pub root: PathBuf,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// Starts serving `root` (created if missing), logging to `log`, with the flaky paths
    /// listed in `flaky` (which need not exist).
    pub fn start(root: &Path, log: &Path, flaky: &Path) -> Server {
        fs::create_dir_all(root).unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(root)
            .arg(log)
            .arg(flaky)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the stand-in download server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        Server {
            child,
            port,
            root: root.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    /// Stops the server now (a later request fails to connect).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The URL of `path` (relative to the served folder).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}
