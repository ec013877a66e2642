//! The event stream: redaction for wallboards, replay after `Last-Event-ID`, waiting clients.

use super::*;

fn ended(call: u64) -> CallEvent {
    CallEvent::CallEnded {
        call,
        by: "caller".into(),
    }
}

#[tokio::test]
async fn a_wallboards_event_stream_carries_no_caller_numbers() {
    let h = harness().await;
    h.state.publish(CallEvent::CallEntered {
        call: 1,
        queue: "sales".into(),
        caller_number: Some("+442079460958".into()),
    });
    h.state.publish(ended(1));
    let stream = |token| {
        request(
            h.addr,
            "GET",
            "/api/v1/events",
            Some(token),
            &[("Last-Event-ID", "0")],
            None,
        )
    };
    let wb = stream(WB).await;
    assert!(
        wb.body.contains("id: 1\nevent: call_entered\ndata: {")
            && wb.body.contains("\"caller_number\":null")
            && !wb.body.contains("+442079460958")
            && wb.body.contains("id: 2\nevent: call_ended"),
        "{}",
        wb.body
    );
    let sup = stream(SUP).await;
    assert!(
        sup.body.contains("\"caller_number\":\"+442079460958\""),
        "{}",
        sup.body
    );
}

#[tokio::test]
async fn events_replay_after_last_event_id_and_resync_when_behind() {
    let h = harness().await;
    for c in 1..=3 {
        h.state.publish(ended(c));
    }
    let r = request(
        h.addr,
        "GET",
        "/api/v1/events",
        Some(WB),
        &[("Last-Event-ID", "1")],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers.contains("content-type: text/event-stream"),
        "{}",
        r.headers
    );
    let frames: Vec<&str> = r
        .body
        .split("\n\n")
        .filter(|f| f.contains("data:"))
        .collect();
    assert_eq!(
        frames,
        [
            "id: 2\nevent: call_ended\ndata: {\"type\":\"call_ended\",\"call\":2,\"by\":\"caller\"}",
            "id: 3\nevent: call_ended\ndata: {\"type\":\"call_ended\",\"call\":3,\"by\":\"caller\"}",
        ]
    );
    let r = get_(&h, "/api/v1/events?since=2", Some(WB)).await;
    assert!(
        r.body.contains("id: 3\n") && !r.body.contains("id: 2\n"),
        "{}",
        r.body
    );

    // Push 1 out of a full buffer: a client at 0 has missed it.
    for c in 4..=(REPLAY_BUFFER as u64 + 1) {
        h.state.publish(ended(c));
    }
    let r = get_(&h, "/api/v1/events?since=0", Some(WB)).await;
    let latest = REPLAY_BUFFER + 1;
    assert_eq!(
        r.body,
        format!("retry: 100\n\nid: {latest}\nevent: resync\ndata: {{\"latest\":{latest}}}\n\n")
    );
    // From the future (a restart): resync too. Not a number: 422.
    let r = get_(&h, "/api/v1/events?since=999999", Some(WB)).await;
    assert!(r.body.contains("event: resync"));
    let r = request(
        h.addr,
        "GET",
        "/api/v1/events",
        Some(WB),
        &[("Last-Event-ID", "x")],
        None,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(get_(&h, "/api/v1/events", None).await.status, 401);
}

#[tokio::test]
async fn a_waiting_event_client_gets_the_next_event() {
    let h = harness().await;
    h.state.publish(ended(1));
    let addr = h.addr;
    let waiting =
        tokio::spawn(
            async move { request(addr, "GET", "/api/v1/events", Some(WB), &[], None).await },
        );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    h.state.publish(ended(2));
    let r = waiting.await.unwrap();
    assert!(r.body.contains("id: 2\nevent: call_ended\n"), "{}", r.body);
    assert!(!r.body.contains("id: 1\n"), "{}", r.body);
}
