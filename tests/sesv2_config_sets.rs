//! SES v2 configuration sets driven by boto3 against a real `mailpush serve`: the set and event destination
//! operations with their AWS errors, then mail sent with `ConfigurationSetName` and `EmailTags` whose DELIVERY
//! and BOUNCE events reach the set's HTTP endpoint (a receiver in this test) in SES's event JSON, signed with the
//! account's CallbackSecret. Skipped (with a note) when boto3 is not installed, unless MAILPUSH_REQUIRE_BOTO3=1.

use mailpush_suite::*;
use mailpush_testkit::SinkReply;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

type Posts = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A minimal HTTP receiver on loopback: keeps every POST's headers and body, answers 200.
async fn receiver() -> (String, Posts) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Posts = Arc::default();
    let posts = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let Some((headers, body)) = read_http_request(&mut s).await else {
                    return;
                };
                got.lock().unwrap().push((headers, body));
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}/ses-events"), posts)
}

async fn run_script(step: &str, server: &ServerProcess, creds: &Credentials, hook: &str) -> Value {
    let sdk_dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"));
    run_sdk_script(
        "python3",
        &["sesv2_config_sets.py", step],
        sdk_dir,
        &server.api_addr,
        creds,
        &[("HOOK", hook.to_string())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_set_events_reach_the_endpoint_in_ses_json() {
    if !sdk_installed(
        "python3",
        &["-c", "import boto3"],
        None,
        "MAILPUSH_REQUIRE_BOTO3",
        "pip install boto3",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink,
        dir: _dir,
        env,
    } = mail_world(&[("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string())]).await;
    let creds = create_account(&env, "aws").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let (hook, posts) = receiver().await;

    run_script("create", &server, &creds, &hook).await;
    let tencent = ApiClient::new(&server.api_addr, &creds);
    let identity = tencent
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "shop.example.com" }))
        .await;
    publish_records(&dns, &identity, "shop.example.com");
    let secret = tencent.call("GetCallbackConfig", &json!({})).await["CallbackSecret"]
        .as_str()
        .expect("CallbackSecret")
        .to_string();
    sink.set_reply("gone@example.org", SinkReply::reply(550, "5.1.1 no such user here"));

    let v = run_script("sets", &server, &creds, &hook).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["set_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["bad_name"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["set_name"], "marketing", "{v}");
    assert_eq!(v["unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["sets"], json!(["marketing", "temp"]), "{v}");
    assert_eq!(v["deleted_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["delete_again"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["dest_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["dest_private"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["dest_arn"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["dest_bad_type"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["dest_unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(
        v["dests"],
        json!([
            ["hook", true, ["DELIVERY", "BOUNCE"], true],
            ["off", false, ["OPEN", "CLICK"], true]
        ]),
        "{v}"
    );
    assert_eq!(v["delete_dest_again"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["update_missing"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["send_unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["bad_tag"], json!(["BadRequestException", 400]), "{v}");
    let delivered_id = v["delivered_id"].as_str().expect("id").to_string();
    let bounced_id = v["bounced_id"].as_str().expect("id").to_string();

    // The DELIVERY of the one and the BOUNCE of the other, each signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let events = loop {
        let events: Vec<Value> = posts
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                let h = |n: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let ts: i64 = h("x-mailpush-timestamp").parse().expect("timestamp");
                assert!(
                    mailpush_webhook::verify(secret.as_bytes(), ts, body, &h("x-mailpush-signature")),
                    "the signature verifies"
                );
                serde_json::from_slice(body).expect("json")
            })
            .collect();
        let has = |t: &str, id: &str| {
            events
                .iter()
                .any(|e| e["eventType"] == t && e["mail"]["messageId"] == id)
        };
        if has("Delivery", &delivered_id) && has("Bounce", &bounced_id) {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events never arrived: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for e in &events {
        assert_eq!(e["mail"]["tags"]["campaign"], json!(["spring"]), "{e}");
        assert_eq!(e["mail"]["tags"]["batch"], json!(["b-1"]), "{e}");
        assert_eq!(e["mail"]["tags"]["ses:configuration-set"], json!(["marketing"]), "{e}");
        assert_eq!(e["mail"]["source"], "noreply@shop.example.com", "{e}");
        assert!(
            e["eventType"] == "Delivery" || e["eventType"] == "Bounce",
            "only the matching types: {e}"
        );
    }
    let delivery = events.iter().find(|e| e["eventType"] == "Delivery").expect("delivery");
    assert_eq!(
        delivery["mail"]["destination"],
        json!(["reader@example.org"]),
        "{delivery}"
    );
    assert_eq!(
        delivery["delivery"]["recipients"],
        json!(["reader@example.org"]),
        "{delivery}"
    );
    let bounce = events.iter().find(|e| e["eventType"] == "Bounce").expect("bounce");
    assert_eq!(bounce["bounce"]["bounceType"], "Permanent", "{bounce}");
    assert_eq!(
        bounce["bounce"]["bouncedRecipients"][0]["emailAddress"], "gone@example.org",
        "{bounce}"
    );
    server.terminate().await;
}

const BASE: &str = "https://mail.mailpush.test";

/// The header `name` of a delivered mail, unfolded.
fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ");
    head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_list_topics_decide_delivery_and_one_click_unsubscribes() {
    if !sdk_installed(
        "python3",
        &["-c", "import boto3"],
        None,
        "MAILPUSH_REQUIRE_BOTO3",
        "pip install boto3",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink,
        dir: _dir,
        env,
    } = mail_world(&[("MAILPUSH_PUBLIC_BASE_URL", BASE.to_string())]).await;
    let creds = create_account(&env, "aws").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;

    run_script("create", &server, &creds, "").await;
    let tencent = ApiClient::new(&server.api_addr, &creds);
    let identity = tencent
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "shop.example.com" }))
        .await;
    publish_records(&dns, &identity, "shop.example.com");

    let v = run_script("contacts", &server, &creds, "").await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["list_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["bad_default"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["topics"], json!([["weekly", "OPT_IN"], ["offers", "OPT_OUT"]]), "{v}");
    assert_eq!(v["description"], "Newsletter", "{v}");
    assert_eq!(v["lists"], json!(["news"]), "{v}");
    assert_eq!(v["unknown_list"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["contact_again"], json!(["AlreadyExistsException", 400]), "{v}");
    assert_eq!(v["contact_bad_topic"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(
        v["alice"],
        json!([
            [{ "TopicName": "weekly", "SubscriptionStatus": "OPT_OUT" }],
            [{ "TopicName": "offers", "SubscriptionStatus": "OPT_OUT" }],
            false
        ]),
        "{v}"
    );
    assert_eq!(v["weekly_out"], json!(["alice@example.org"]), "{v}");
    assert_eq!(v["contacts"], json!(["alice@example.org", "reader@example.org"]), "{v}");
    assert_eq!(v["alice_all"], true, "{v}");
    assert_eq!(v["update_missing"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["send_unknown_list"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["send_unknown_topic"], json!(["NotFoundException", 404]), "{v}");

    // Only "Weekly 1" is delivered: Alice unsubscribed from everything, "offers" is OPT_OUT by default.
    let msgs = sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .expect("delivered");
    let weekly = String::from_utf8_lossy(&msgs[0].data).into_owned();
    assert!(weekly.contains("Subject: Weekly 1"), "{weekly}");
    assert_eq!(
        header(&weekly, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let link = header(&weekly, "List-Unsubscribe").expect("List-Unsubscribe");
    let url = link.trim_start_matches('<').trim_end_matches('>');
    let local = format!(
        "http://{}{}",
        server.api_addr,
        url.strip_prefix(BASE).expect("a mailpush link")
    );
    let http = reqwest::Client::new();
    let page = http.get(&local).send().await.expect("page");
    assert_eq!(page.status(), 200);
    // RFC 8058 one-click: a POST with List-Unsubscribe=One-Click.
    let resp = http
        .post(&local)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click");
    assert_eq!(resp.status(), 200);
    // The topic token is not a tracking token: the domain unsubscribe endpoint does not take it.
    let token = local.rsplit('/').next().expect("token");
    let other = http
        .post(format!("http://{}/u/{token}", server.api_addr))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("tracking endpoint");
    assert_eq!(other.status(), 404);
    let forged = http
        .post(format!("{local}x"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 404);

    let v = run_script("after_unsubscribe", &server, &creds, "").await;
    assert_eq!(
        v["preferences"],
        json!([{ "TopicName": "weekly", "SubscriptionStatus": "OPT_OUT" }]),
        "{v}"
    );
    assert_eq!(v["deleted_contact"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["deleted_list"], json!(["NotFoundException", 404]), "{v}");
    sink.wait_for_messages(2, Duration::from_secs(20))
        .await
        .expect("the plain mail");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let subjects: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| header(&String::from_utf8_lossy(&m.data), "Subject").unwrap_or_default())
        .collect();
    assert!(subjects.contains(&"Plain after".to_string()), "{subjects:?}");
    for never in ["Weekly 2", "Offers 1", "Weekly to Alice"] {
        assert!(!subjects.contains(&never.to_string()), "{never} was sent: {subjects:?}");
    }
    // The dropped mail says why.
    let status = tencent
        .call(
            "GetSendEmailStatus",
            &json!({ "MessageId": v["weekly_2"], "RequestDate": today(), "Offset": 0, "Limit": 10 }),
        )
        .await;
    assert!(status.to_string().contains("unsubscribed"), "{status}");
    server.terminate().await;
}

/// The JSON bodies `posts` received so far.
fn bodies(posts: &Posts) -> Vec<Value> {
    posts
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, body)| serde_json::from_slice(body).ok())
        .collect()
}

/// Waits (40 s at most) until an event of `event_type` for message `id` (any message when empty) reached `posts`.
async fn ses_event(posts: &Posts, event_type: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let found = bodies(posts)
            .into_iter()
            .find(|e| e["eventType"] == event_type && (id.is_empty() || e["mail"]["messageId"] == id));
        if let Some(e) = found {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {event_type} event for {id:?}: {:?}",
            bodies(posts)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_options_ses_only_events_and_raw_mail_with_a_set_and_a_list() {
    if !sdk_installed(
        "python3",
        &["-c", "import boto3"],
        None,
        "MAILPUSH_REQUIRE_BOTO3",
        "pip install boto3",
    ) {
        return;
    }
    let MailWorld {
        dns,
        sink,
        dir: _dir,
        env,
    } = mail_world(&[
        ("MAILPUSH_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ("MAILPUSH_PUBLIC_BASE_URL", BASE.to_string()),
    ])
    .await;
    let creds = create_account(&env, "aws").await;
    let server = ServerProcess::start("mailpush", &["serve"], &env).await;
    let (hook, posts) = receiver().await;
    let (callback_url, callbacks) = receiver().await;

    run_script("create", &server, &creds, &hook).await;
    let tencent = ApiClient::new(&server.api_addr, &creds);
    let identity = tencent
        .call("GetEmailIdentity", &json!({ "EmailIdentity": "shop.example.com" }))
        .await;
    publish_records(&dns, &identity, "shop.example.com");
    // The account's Tencent callback URL: it must get the Tencent kinds only.
    let r = tencent
        .call("SetCallbackUrl", &json!({ "CallbackUrl": callback_url }))
        .await;
    assert!(r.get("Error").is_none(), "{r}");
    // The content review refuses the "casino" mail (REJECT).
    mailpush_cli(
        &env,
        &["screening", "aws", "--min-score", "none", "--review-content", "true"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let v = run_script("events", &server, &creds, &hook).await;
    assert_eq!(v["created_options"], json!(["REQUIRE", true, true]), "{v}");
    assert_eq!(
        v["options"],
        json!([
            { "CustomRedirectDomain": "track.shop.example.com", "HttpsPolicy": "REQUIRE" },
            { "TlsPolicy": "OPTIONAL", "MaxDeliverySeconds": 600 },
            false,
            true,
            ["BOUNCE"]
        ]),
        "{v}"
    );
    assert_eq!(v["bad_tls"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["options_unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["paused_get"], false, "{v}");
    assert_eq!(v["paused_send"], json!(["SendingPausedException", 400]), "{v}");
    assert_eq!(v["paused_raw"], json!(["SendingPausedException", 400]), "{v}");
    assert_eq!(v["bulk_paused"], json!(["SendingPausedException", 400]), "{v}");
    assert_eq!(
        v["updated_list"],
        json!(["Members' club", [["deals", "OPT_IN"], ["meetups", "OPT_OUT"]]]),
        "{v}"
    );
    assert_eq!(v["update_unknown_list"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["update_bad_topic"], json!(["BadRequestException", 400]), "{v}");
    assert_eq!(v["raw_unknown_list"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["raw_unknown_set"], json!(["NotFoundException", 404]), "{v}");
    assert_eq!(v["bulk"], json!(["SUCCESS", "INVALID_PARAMETER"]), "{v}");
    assert_eq!(v["rejected"], json!(["MessageRejected", 400]), "{v}");
    let raw_id = v["raw_id"].as_str().expect("raw id").to_string();
    let bulk_id = v["bulk_id"].as_str().expect("bulk id").to_string();

    // SEND and DELIVERY of the raw mail, with its tags; SEND of the bulk entry that rendered.
    let send = ses_event(&posts, "Send", &raw_id).await;
    assert_eq!(send["send"], json!({}), "{send}");
    assert_eq!(send["mail"]["tags"]["campaign"], json!(["raw"]), "{send}");
    assert_eq!(
        send["mail"]["tags"]["ses:configuration-set"],
        json!(["events"]),
        "{send}"
    );
    assert_eq!(send["mail"]["source"], "noreply@shop.example.com", "{send}");
    let delivery = ses_event(&posts, "Delivery", &raw_id).await;
    assert_eq!(
        delivery["mail"]["destination"],
        json!(["reader@example.org"]),
        "{delivery}"
    );
    ses_event(&posts, "Send", &bulk_id).await;
    // RENDERING_FAILURE of the entry without `name`, REJECT of the casino mail.
    let failure = ses_event(&posts, "Rendering Failure", "").await;
    assert_eq!(failure["failure"]["templateName"], "greet", "{failure}");
    assert!(
        failure["failure"]["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("name"),
        "{failure}"
    );
    assert_eq!(
        failure["mail"]["destination"],
        json!(["nameless@example.org"]),
        "{failure}"
    );
    assert_eq!(failure["mail"]["source"], "noreply@shop.example.com", "{failure}");
    let reject = ses_event(&posts, "Reject", "").await;
    assert_eq!(reject["reject"]["reason"], "Bad content", "{reject}");
    assert_eq!(reject["mail"]["tags"]["campaign"], json!(["raw"]), "{reject}");
    assert_eq!(reject["mail"]["commonHeaders"]["subject"], "Your order", "{reject}");

    // The raw mails: the list's one-click link added where the mail had none, the sender's own kept, the
    // contact who unsubscribed from everything not sent to.
    sink.wait_for_messages(3, Duration::from_secs(20))
        .await
        .expect("delivered");
    let by_subject = |subject: &str| {
        sink.messages()
            .iter()
            .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            .find(|m| header(m, "Subject").as_deref() == Some(subject))
    };
    let deals = by_subject("Raw deals").expect("Raw deals delivered");
    assert_eq!(
        header(&deals, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "{deals}"
    );
    let own = by_subject("Raw own header").expect("Raw own header delivered");
    assert_eq!(
        header(&own, "List-Unsubscribe").as_deref(),
        Some("<mailto:leave@shop.example.com>"),
        "{own}"
    );
    assert!(header(&own, "List-Unsubscribe-Post").is_none(), "{own}");

    // SUBSCRIPTION: the one-click link of the mail sent with the set.
    let link = header(&deals, "List-Unsubscribe").expect("List-Unsubscribe");
    let url = link.trim_start_matches('<').trim_end_matches('>');
    let local = format!(
        "http://{}{}",
        server.api_addr,
        url.strip_prefix(BASE).expect("a mailpush link")
    );
    let resp = reqwest::Client::new()
        .post(&local)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click");
    assert_eq!(resp.status(), 200);
    let sub = ses_event(&posts, "Subscription", &raw_id).await;
    let s = &sub["subscription"];
    assert_eq!(s["contactList"], "club", "{sub}");
    assert_eq!(s["source"], "UnsubscribeHeader", "{sub}");
    assert_eq!(
        s["newTopicPreferences"]["topicSubscriptionStatus"],
        json!([{ "topicName": "deals", "subscriptionStatus": "OptOut" }]),
        "{sub}"
    );
    assert_eq!(s["oldTopicPreferences"]["topicSubscriptionStatus"], json!([]), "{sub}");
    assert_eq!(s["newTopicPreferences"]["unsubscribeAll"], false, "{sub}");
    assert_eq!(sub["mail"]["destination"], json!(["reader@example.org"]), "{sub}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        by_subject("Raw to Alice").is_none(),
        "Alice unsubscribed from everything"
    );

    // The Tencent callback got the delivered events and none of the SES-only kinds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !bodies(&callbacks).iter().any(|e| e["event"] == "delivered") {
        assert!(tokio::time::Instant::now() < deadline, "no Tencent callback arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let known = [
        "delivered",
        "dropped",
        "bounce",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "deferred",
    ];
    for e in bodies(&callbacks) {
        assert!(
            known.contains(&e["event"].as_str().unwrap_or("")),
            "the Tencent callback got a kind it does not know: {e}"
        );
    }
    // Every SES event kept to the destination's types.
    for e in bodies(&posts) {
        assert!(
            ["Send", "Delivery", "Reject", "Rendering Failure", "Subscription"]
                .contains(&e["eventType"].as_str().unwrap_or("")),
            "{e}"
        );
    }
    server.terminate().await;
}
