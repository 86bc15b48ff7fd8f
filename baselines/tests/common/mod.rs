//! A `harness serve` over loopback for the integration tests: the setup's SmolLM2, ready when
//! returned, stopped when dropped.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_baselines::serve::{bind, serve, ServeOptions};
use harness_policy::Policy;

pub fn model_dir() -> PathBuf {
    std::env::var_os("HARNESS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/models"))
        .join("smollm2-135m-instruct")
}

pub struct TestServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Listens with connection timeouts of `timeout`, loads the model, and returns once
    /// `GET /v1/models` answers.
    pub fn start(options: ServeOptions, timeout: Duration) -> TestServer {
        tch::set_num_threads(2);
        let server = bind("127.0.0.1:0", timeout).unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let policy = Policy::load(&model_dir(), tch::Device::Cpu).unwrap();
                serve(&server, &policy, &options, &stop);
            })
        };
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let start = Instant::now();
        while agent.get(&format!("http://127.0.0.1:{port}/v1/models")).call().map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
            assert!(start.elapsed() < Duration::from_secs(120), "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TestServer { port, stop, handle: Some(handle) }
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut();
    }
}
