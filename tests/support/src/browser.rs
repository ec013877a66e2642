//! A real browser for the web pages' end-to-end tests: Debian's headless `chromium` driven over
//! WebDriver by `chromedriver` (started on a free port by the test, stopped on drop) through
//! the `fantoccini` client, behind a small blocking API (the tests around it are synchronous);
//! plus a raw HTTP client that keeps a session cookie, for what a browser would not send (a
//! state change without the CSRF token).
//!

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::{free_port, TestEnv};

/// How long a page may take to show something (a loaded 2-core machine: generous).
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    pub base: String,
}

impl Browser {
    /// Chromium at 1366×768 with `lang` as its language (Accept-Language and
    /// `navigator.language`), pointed at nothing yet; `base` is the admin listener's URL.
    pub fn start(env: &TestEnv, lang: &str) -> Browser {
        Browser::launch(env, lang, None)
    }

    /// The same on a phone's screen: `width`×`height` CSS pixels, touch, mobile (Chromium's
    /// device emulation: a desktop window cannot be made narrower than 500 px).
    pub fn phone(env: &TestEnv, lang: &str, width: u32, height: u32) -> Browser {
        Browser::launch(env, lang, Some((width, height)))
    }

    fn launch(env: &TestEnv, lang: &str, phone: Option<(u32, u32)>) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the web tests need Debian's chromium and chromium-driver (scripts/test-all installs them)"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + PAGE_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::Builder::new()
            .prefix("ctid-chromium-")
            .tempdir()
            .expect("profile dir");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            "--window-size=1366,768".into(),
            format!("--lang={lang}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = serde_json::json!({
            "binary": CHROMIUM,
            "args": args,
            "prefs": {"intl.accept_languages": lang},
        });
        if let Some((w, h)) = phone {
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": {"width": w, "height": h, "pixelRatio": 1.0, "touch": true, "mobile": true},
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("http://127.0.0.1:{port}");
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .expect("a chromium session from chromedriver");
        let b = Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
            base: format!("http://127.0.0.1:{}", env.admin_port),
        };
        if phone.is_none() {
            b.resize(1366, 768);
        }
        b
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("browser session")
    }

    pub fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.rt
            .block_on(self.c().goto(&url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element `css` once it exists.
    fn find(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            match self.rt.block_on(self.c().find(Locator::Css(css))) {
                Ok(e) => return e,
                Err(e) if Instant::now() > deadline => panic!("no element {css}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.rt.block_on(async {
            e.clear().await.expect("clear");
            e.send_keys(text).await.expect("type");
        });
    }

    /// Types `keys` (WebDriver key codes allowed: `"\u{E004}"` Tab, `"\u{E007}"` Enter) into
    /// whatever has the keyboard focus, as a person at the keyboard would.
    pub fn keys(&self, keys: &str) {
        self.rt.block_on(async {
            let e = self.c().active_element().await.expect("a focused element");
            e.send_keys(keys).await.expect("type");
        });
    }

    /// The id of the element that has the keyboard focus ("" for none).
    pub fn focused_id(&self) -> String {
        self.eval("return document.activeElement ? document.activeElement.id : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Clicks `css` once it is displayed and enabled.
    pub fn click(&self, css: &str) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let e = self.find(css);
            let ready = self.rt.block_on(async {
                Ok::<_, fantoccini::error::CmdError>(
                    e.is_displayed().await? && e.is_enabled().await?,
                )
            });
            if let Ok(true) = ready {
                if self.rt.block_on(e.click()).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{css} never became clickable");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Picks the option with `value` in the select `css`.
    /// (Tried again until [`PAGE_TIMEOUT`]: a page that redraws may replace the element.)
    pub fn select(&self, css: &str, value: &str) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let e = self.find(css);
            match self.rt.block_on(e.select_by_value(value)) {
                Ok(()) => return,
                Err(err) if Instant::now() > deadline => {
                    panic!("select {value} in {css}: {err}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The visible text of `css` ("" when it is not there).
    pub fn text(&self, css: &str) -> String {
        self.rt.block_on(async {
            match self.c().find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
    }

    /// Attribute `name` of `css`, if both exist.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.rt.block_on(async {
            let e = self.c().find(Locator::Css(css)).await.ok()?;
            e.attr(name).await.ok().flatten()
        })
    }

    /// Whether `css` exists and is displayed.
    pub fn visible(&self, css: &str) -> bool {
        self.rt.block_on(async {
            match self.c().find(Locator::Css(css)).await {
                Ok(e) => e.is_displayed().await.unwrap_or(false),
                Err(_) => false,
            }
        })
    }

    /// Polls `f` until it holds or [`PAGE_TIMEOUT`] passes; panics with `what` and the page's
    /// text then.
    pub fn wait_until(&self, what: &str, mut f: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        while !f(self) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    self.text("body")
                );
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Waits until the text of `css` satisfies `pred`; returns it.
    pub fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        self.wait_until(&format!("the text of {css}"), |b| {
            last = b.text(css);
            pred(&last)
        });
        last
    }

    /// Runs `js` in the page and returns its value.
    pub fn eval(&self, js: &str) -> serde_json::Value {
        self.rt
            .block_on(self.c().execute(js, vec![]))
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Makes the page's viewport `w`×`h` CSS pixels (the window is larger by its frame).
    pub fn resize(&self, w: u32, h: u32) {
        self.rt
            .block_on(self.c().set_window_size(w, h))
            .expect("resize");
        let frame = self.eval(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
        );
        let dw = frame[0].as_u64().unwrap_or(0) as u32;
        let dh = frame[1].as_u64().unwrap_or(0) as u32;
        if dw > 0 || dh > 0 {
            self.rt
                .block_on(self.c().set_window_size(w + dw, h + dh))
                .expect("resize");
        }
    }

    /// Panics unless the page is as wide as the screen, `width` (nothing sticks out sideways:
    /// wide tables scroll inside their own box).
    pub fn assert_fits(&self, width: u64) {
        let v = self.eval(
            "return [window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth]",
        );
        let got: Vec<u64> = (0..3).map(|i| v[i].as_u64().unwrap_or(u64::MAX)).collect();
        assert_eq!(got[0], width, "the screen is not {width} px wide: {v}");
        assert!(
            got[1] <= width && got[2] <= width,
            "the page is wider than the {width} px screen: {v}\n{}",
            self.text("body")
        );
    }

    /// A PNG of the window, written to `path` (its directory is created).
    pub fn screenshot(&self, path: &Path) {
        let png = self.rt.block_on(self.c().screenshot()).expect("screenshot");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Writes the screenshot `name` into the test's directory, and into
    /// `$CTID_SCREENSHOTS_DIR` when that is set (how `docs/*.png` are refreshed).
    pub fn keep_screenshot(&self, env: &TestEnv, name: &str) {
        self.screenshot(&env.path().join(name));
        if let Ok(dir) = std::env::var("CTID_SCREENSHOTS_DIR") {
            self.screenshot(&Path::new(&dir).join(name));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), c.close()).await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An HTTP/1.1 answer: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request to the admin listener with extra header lines (`"Cookie: …"`), a JSON body.
pub fn http(env: &TestEnv, method: &str, path: &str, headers: &[String], json: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", env.admin_port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A signed-in web session over raw HTTP: its cookie header line and CSRF token.
pub struct WebSession {
    pub cookie: String,
    pub csrf: String,
    pub info: serde_json::Value,
}

/// Signs in with the JSON `creds` (`{"token": …}` or `{"username", "password"}`); panics
/// unless the answer is 200 with a session cookie.
pub fn sign_in(env: &TestEnv, creds: &str) -> WebSession {
    let a = http(env, "POST", "/web/login", &[], creds);
    assert_eq!(a.status, 200, "sign-in with {creds}: {a:?}");
    let set = a
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    let cookie = set.split(';').next().unwrap_or("").to_string();
    let info = a.json();
    WebSession {
        cookie: format!("Cookie: {cookie}"),
        csrf: info["csrf"].as_str().unwrap_or("").to_string(),
        info,
    }
}

/// The ids of the first `n` events of the event stream at `path` (with extra header lines such
/// as `Cookie:` and `Last-Event-ID:`), read for at most `timeout`; fewer when the stream had no
/// more by then.
pub fn sse_ids(
    env: &TestEnv,
    path: &str,
    headers: &[String],
    n: usize,
    timeout: Duration,
) -> Vec<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", env.admin_port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut req =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: ")?.trim().parse().ok())
            .collect();
        if ids.len() >= n || Instant::now() > deadline {
            return ids.into_iter().take(n).collect();
        }
        match s.read(&mut buf) {
            Ok(0) => return ids,
            Ok(k) => text.push_str(&String::from_utf8_lossy(&buf[..k])),
            Err(_) => {}
        }
    }
}
