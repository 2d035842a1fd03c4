//! Engagement end to end through the real `mailpush serve`: one-click unsubscribe bound to the sending
//! domain (DKIM-covered List-Unsubscribe headers), open/click tracking with signed tokens, status flags, and
//! signed callbacks that survive a receiver outage; the SSRF guard.

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use mail_parser::MessageParser;
use mailpush_suite::*;
use mailpush_testkit::{DnsAuthority, SinkMx};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const BASE: &str = "https://track.mailpush.test";

struct World {
    dir: tempfile::TempDir,
    dns: DnsAuthority,
    sink: SinkMx,
    server: ServerProcess,
    client: ApiClient,
    clock: TestClock,
}

async fn world() -> World {
    let dns = DnsAuthority::start().await.expect("dns");
    let sink = SinkMx::start_default().await.expect("sink");
    for domain in ["example.org", "example.net"] {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        dns.add_a(&format!("mx.{domain}"), Ipv4Addr::LOCALHOST);
    }
    let dir = temp_dir();
    let clock = TestClock::new(dir.path());
    let env = base_env(
        dir.path(),
        &[
            ("MAILPUSH_DNS_SERVERS", dns.addr().to_string()),
            ("MAILPUSH_DELIVERY_PORT", sink.addr().port().to_string()),
            ("MAILPUSH_RETRY_SCHEDULE_SECS", "1".to_string()),
            ("MAILPUSH_PUBLIC_BASE_URL", BASE.to_string()),
            ("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
            ("MAILPUSH_CALLBACK_TIMEOUT_SECS", "5".to_string()),
            clock.env(),
        ],
    );
    let creds = create_account_with(&env, "shop", &["--allow-simple-content", "--allow-links"]).await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let client = ApiClient::new(&server.api_addr, &creds);
    verified_sender(&client, &dns, "noreply@shop.example.com").await;
    World {
        dir,
        dns,
        sink,
        server,
        client,
        clock,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The public URL of a token link, pointed at the test server.
fn local(w: &World, url: &str) -> String {
    format!(
        "http://{}{}",
        w.server.api_addr,
        url.strip_prefix(BASE).expect("a mailpush link")
    )
}

async fn send(w: &World, from: &str, to: &[&str], html: &str, unsubscribe: &str) -> Value {
    w.client
        .call(
            "SendEmail",
            &json!({
                "FromEmailAddress": from,
                "Destination": to,
                "Subject": "News",
                "Simple": { "Html": b64(html.as_bytes()), "Text": b64(b"News in text") },
                "Unsubscribe": unsubscribe,
            }),
        )
        .await
}

async fn status_rows(w: &World, id: &str) -> Vec<Value> {
    outcomes::status_of(&w.client, id).await
}

/// Links `base/<prefix>…` in `text`, in order.
fn links(text: &str, prefix: &str) -> Vec<String> {
    let needle = format!("{BASE}/{prefix}");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c == '"' || c == '\'' || c == '>' || c.is_whitespace())
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn authenticator(dns: &DnsAuthority) -> MessageAuthenticator {
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for c in &mut ns.connections {
        c.port = dns.addr().port();
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts).expect("resolver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_binds_the_sending_domain_and_dkim_covers_the_headers() {
    let w = world().await;
    verified_sender(&w.client, &w.dns, "news@other.example.com").await;
    let r = send(
        &w,
        "noreply@shop.example.com",
        &["alice@example.org"],
        "<p>Hello</p>",
        "2",
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let first_id = r["MessageId"].as_str().unwrap().to_string();

    let msgs = w
        .sink
        .wait_for_messages(1, Duration::from_secs(30))
        .await
        .expect("delivered");
    let raw = msgs[0].data.clone();
    let parsed = MessageParser::default().parse(&raw).expect("mime");
    let list_unsub = parsed
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim()
        .to_string();
    assert!(
        list_unsub.contains(&format!("<{BASE}/u/")) && list_unsub.contains("<mailto:"),
        "{list_unsub}"
    );
    assert_eq!(
        parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    let html = parsed.body_html(0).expect("html").to_string();
    assert!(html.contains("unsubscribe</a>"), "English footer: {html}");
    // The DKIM signature verifies and its h= names both headers.
    let sig = parsed
        .header_raw("DKIM-Signature")
        .expect("signed")
        .to_ascii_lowercase();
    let h: String = sig
        .split(';')
        .find(|p| p.trim().starts_with("h="))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        h.contains("list-unsubscribe:") && h.contains("list-unsubscribe-post"),
        "{h}"
    );
    let auth = authenticator(&w.dns);
    let msg = AuthenticatedMessage::parse(&raw).expect("parsable");
    let results = auth.verify_dkim(&msg).await;
    assert!(
        results.iter().any(|o| *o.result() == DkimResult::Pass),
        "DKIM fails: {results:?}"
    );
    assert_dkim_verifies_everywhere(&w.dns, &[&raw]).await;

    let unsub_url = links(&list_unsub, "u/").remove(0);
    // GET shows a confirmation page and changes nothing.
    let page = http().get(local(&w, &unsub_url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    let r = send(
        &w,
        "noreply@shop.example.com",
        &["alice@example.org"],
        "<p>Again</p>",
        "0",
    )
    .await;
    assert!(r.get("Error").is_none(), "GET must not unsubscribe: {r}");
    // A tampered token is unknown.
    let tampered = format!("{}x", local(&w, &unsub_url));
    assert_eq!(http().post(&tampered).send().await.unwrap().status(), 404);

    // RFC 8058 one-click POST.
    let resp = http()
        .post(local(&w, &unsub_url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let r = send(
        &w,
        "noreply@shop.example.com",
        &["alice@example.org"],
        "<p>Again</p>",
        "0",
    )
    .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("FailedOperation.ReceiverHasUnsubscribed"),
        "{r}"
    );
    // With another recipient the mail goes, alice gets SendStatus 1013.
    let r = send(
        &w,
        "noreply@shop.example.com",
        &["alice@example.org", "dave@example.org"],
        "<p>x</p>",
        "0",
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let rows = status_rows(&w, r["MessageId"].as_str().unwrap()).await;
    let alice = rows
        .iter()
        .find(|r| r["ToEmailAddress"] == "alice@example.org")
        .unwrap();
    assert_eq!(alice["SendStatus"], 1013, "{rows:?}");
    let dave = rows.iter().find(|r| r["ToEmailAddress"] == "dave@example.org").unwrap();
    assert_eq!(dave["SendStatus"], 0, "{rows:?}");
    // Another sending domain is not affected.
    let r = send(
        &w,
        "news@other.example.com",
        &["alice@example.org"],
        "<p>Other</p>",
        "0",
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    // The first message shows the unsubscribe.
    let rows = status_rows(&w, &first_id).await;
    assert_eq!(rows[0]["UserUnsubscribed"], true, "{rows:?}");
    drop(w.dir);
}

/// One received callback: its headers and body.
type ReceivedPost = (Vec<(String, String)>, Vec<u8>);

/// A minimal HTTP receiver: answers 503 while `down`, else 200, and records what it got.
#[derive(Clone, Default)]
struct Receiver {
    down: Arc<Mutex<bool>>,
    attempts: Arc<Mutex<usize>>,
    got: Arc<Mutex<Vec<ReceivedPost>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let Some((headers, body)) = read_http_request(&mut s).await else {
                        return;
                    };
                    *me.attempts.lock().unwrap() += 1;
                    let down = *me.down.lock().unwrap();
                    let status = if down {
                        "503 Service Unavailable"
                    } else {
                        me.got.lock().unwrap().push((headers, body));
                        "200 OK"
                    };
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        });
        format!("http://{addr}/hook")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_click_flip_flags_and_signed_callbacks_survive_an_outage() {
    let w = world().await;
    // SSRF guard: a private target outside the allow-list is refused.
    let r = w
        .client
        .call("SetCallbackUrl", &json!({ "CallbackUrl": "http://10.1.2.3/hook" }))
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue"),
        "{r}"
    );
    let r = w
        .client
        .call(
            "SetCallbackUrl",
            &json!({ "CallbackUrl": "http://169.254.169.254/latest" }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue"),
        "{r}"
    );

    let receiver = Receiver::default();
    *receiver.down.lock().unwrap() = true;
    let url = receiver.start().await;
    let r = w
        .client
        .call(
            "SetCallbackUrl",
            &json!({ "CallbackUrl": url, "EmailAddress": "noreply@shop.example.com" }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    let cfg = w.client.call("GetCallbackConfig", &json!({})).await;
    let secret = cfg["CallbackSecret"].as_str().expect("secret").to_string();
    assert_eq!(cfg["AddressCallbacks"][0]["CallbackUrl"], url.as_str());

    let r = send(
        &w,
        "noreply@shop.example.com",
        &["bob@example.net"],
        "<html><body><p>See <a href=\"https://shop.example.com/sale?a=1&amp;b=2\">the sale</a></p></body></html>",
        "0",
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let id = r["MessageId"].as_str().unwrap().to_string();
    let msgs = w
        .sink
        .wait_for_messages(1, Duration::from_secs(30))
        .await
        .expect("delivered");
    let parsed = MessageParser::default().parse(&msgs[0].data).expect("mime");
    let html = parsed.body_html(0).expect("html").to_string();
    assert!(
        !html.contains("https://shop.example.com/sale"),
        "the link is rewritten: {html}"
    );
    let click = links(&html, "t/c/").remove(0);
    let pixel = links(&html, "t/o/").remove(0);

    // Forged and tampered tokens: 404, never a redirect.
    for bad in [
        format!("http://{}/t/c/forged.token", w.server.api_addr),
        format!("{}A", local(&w, &click)),
        local(&w, &click).replace("/t/c/", "/t/o/"),
    ] {
        let resp = http().get(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{bad}");
        assert!(resp.headers().get("location").is_none());
    }
    let rows = status_rows(&w, &id).await;
    assert_eq!(
        (rows[0]["UserOpened"].clone(), rows[0]["UserClicked"].clone()),
        (json!(false), json!(false))
    );

    let resp = http()
        .get(local(&w, &pixel))
        .header("User-Agent", "TestMail/1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/gif");
    let resp = http().get(local(&w, &click)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "https://shop.example.com/sale?a=1&b=2");
    let rows = status_rows(&w, &id).await;
    assert_eq!(rows[0]["UserOpened"], true, "{rows:?}");
    assert_eq!(rows[0]["UserClicked"], true, "{rows:?}");

    // The receiver is down: attempts fail.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while *receiver.attempts.lock().unwrap() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no callback attempt");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receiver.got.lock().unwrap().is_empty());
    // Up again, an hour later: every event arrives, signed.
    *receiver.down.lock().unwrap() = false;
    w.clock.advance(3600 * 1000).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let kinds: Vec<String> = receiver
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| {
                serde_json::from_slice::<Value>(b).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if kinds.contains(&"open".to_string()) && kinds.contains(&"click".to_string()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "callbacks never arrived: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (headers, body) in receiver.got.lock().unwrap().iter() {
        let h = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        let ts: i64 = h("x-mailpush-timestamp").parse().unwrap();
        assert!(mailpush_webhook::verify(
            secret.as_bytes(),
            ts,
            body,
            &h("x-mailpush-signature")
        ));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["bulkId"], id.as_str());
        assert_eq!(v["messageId"], id.as_str());
        assert_eq!(v["email"], "bob@example.net");
        assert_eq!(v["from"], "noreply@shop.example.com");
        assert_eq!(v["fromDomain"], "shop.example.com");
        assert_eq!(v["username"], "shop");
        match v["event"].as_str().unwrap() {
            "open" => {
                assert_eq!(v["eventid"], 4);
                assert_eq!(v["useragent"], "TestMail/1");
            }
            "click" => {
                assert_eq!(v["eventid"], 5);
                assert_eq!(v["link"], "https://shop.example.com/sale?a=1&b=2");
            }
            // Events other engineers' code records (delivered, …) arrive too, equally signed.
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_callback_url_refuses_addresses_the_caller_does_not_own() {
    let w = world().await;
    // A second tenant on the same server.
    let env = base_env(w.dir.path(), &[]);
    let rival = create_account(&env, "rival").await;
    let rival = ApiClient::new(&w.server.api_addr, &rival);
    let r = rival
        .call(
            "SetCallbackUrl",
            &json!({ "CallbackUrl": "http://127.0.0.1:9/hook", "EmailAddress": "noreply@shop.example.com" }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.NoSuchSender"),
        "{r}"
    );
    let cfg = rival.call("GetCallbackConfig", &json!({})).await;
    assert!(
        cfg["AddressCallbacks"].as_array().is_none_or(|a| a.is_empty()),
        "nothing stored: {cfg}"
    );
    // The owner's own but never created address is refused the same way; its created one is accepted.
    let r = w
        .client
        .call(
            "SetCallbackUrl",
            &json!({ "CallbackUrl": "http://127.0.0.1:9/hook", "EmailAddress": "other@shop.example.com" }),
        )
        .await;
    assert_eq!(
        ApiClient::error_code(&r).as_deref(),
        Some("InvalidParameterValue.NoSuchSender"),
        "{r}"
    );
    let r = w
        .client
        .call(
            "SetCallbackUrl",
            &json!({ "CallbackUrl": "http://127.0.0.1:9/hook", "EmailAddress": "noreply@shop.example.com" }),
        )
        .await;
    assert!(r.get("Error").is_none(), "{r}");
}
