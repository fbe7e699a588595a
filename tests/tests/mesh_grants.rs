//! Controller grants from a real `jamz-server` process (docs/protocol.md, "Controller
//! grants"): they come with the session state and with every change of control, carry
//! the DJ device's key presented at CONNECT, verify with the key the server serves, move
//! to a new epoch at each change of control, and outlive a restart of the server (same
//! key, same epoch). Then the trust gate and the mesh codec on those grants, the way the
//! engine chains them: judge, then de-duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod link_support;

use anyhow::{Context, Result};
use jamz_e2e::TestServer;
use jamz_mesh::message::{Outgoing, Receiver};
use jamz_proto::ServerEvent;
use jamz_proto::events::ControlAction;
use jamz_proto::grant::ControllerGrant;
use jamz_proto::mesh::{MeshEnvelope, kinds};
use jamz_sync::trust::{Admitted, DeviceKey, Gate, Rejection, ServerKey, verify_grant};
use link_support::{Member, seed};
use serde_json::json;

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn state_grant(m: &jamz_link::ServerMessage) -> (Option<i64>, Option<ControllerGrant>) {
    match m.decode().unwrap() {
        ServerEvent::MusicSessionState(s) => (s.controller_id, s.grant),
        other => panic!("not a session state: {other:?}"),
    }
}

fn changed_grant(m: &jamz_link::ServerMessage) -> (i64, Option<ControllerGrant>) {
    match m.decode().unwrap() {
        ServerEvent::MusicControllerChanged(c) => (c.user_id, c.grant),
        other => panic!("not a controller change: {other:?}"),
    }
}

/// A pause from `from` signed by `device` for `session` at `epoch`, as JSON text.
fn signed_pause(
    out: &mut Outgoing,
    device: &DeviceKey,
    session: &str,
    from: i64,
    epoch: u64,
) -> String {
    let mut e = out.envelope(
        kinds::MUSIC_CONTROL,
        Some(ControlAction::Pause),
        json!({"position": 30.0, "trackId": "t1", "timestamp": now_ms(), "from": from}),
        Some(epoch),
    );
    device.sign(session, &mut e).unwrap();
    jamz_mesh::message::encode(&e).unwrap()
}

/// What a peer's engine does with mesh text from `link`: decode, judge, de-duplicate.
fn receive(
    gate: &Gate,
    rx: &mut Receiver,
    link: i64,
    text: &str,
) -> Result<Option<Admitted>, Rejection> {
    let envelope: MeshEnvelope = jamz_mesh::message::decode(text.as_bytes()).unwrap();
    let admitted = gate.judge(now_ms(), link, &envelope)?;
    Ok(rx
        .accept(envelope.from, envelope.sequence)
        .then_some(admitted))
}

#[tokio::test]
async fn grants_come_with_the_state_and_each_change_of_control_and_survive_a_restart() -> Result<()>
{
    let seed = seed();
    let mut server = TestServer::start().await?;
    let dir = server.take_dir().context("temp dir")?;
    let base = server.url.clone();

    let mut ann = Member::register(&base, "ann").await?;
    let mut ben = Member::register(&base, "ben").await?;
    let mut web = Member::register(&base, "web").await?;
    let group = ann.rest.create_group("grants", None).await?;
    ann.rest.add_member(&group.id, "ben").await?;
    ann.rest.add_member(&group.id, "web").await?;
    let session = ann.rest.session_for_group(&group.id).await?.id;

    // The served key, fetched without a token.
    let anonymous = jamz_link::RestClient::new(&base)?;
    let served = anonymous.grant_key().await?;
    assert_eq!(served.algorithm, "Ed25519");
    let server_key = ServerKey::from_grant_key(&served)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key_file = dir.path().join("files").join("mesh-grant-key");
        let mode = std::fs::metadata(&key_file)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());
    }

    let ann_device = DeviceKey::from_seed([1; 32]);
    let ben_device = DeviceKey::from_seed([2; 32]);

    // Nobody controls yet: no grant.
    let st = ann
        .enter(
            ann.config(&base, seed)?.device_key(ann_device.public_hex()),
            &session,
        )
        .await?;
    assert_eq!(state_grant(&st), (None, None));

    // Ann takes control: her grant names her device key, epoch 1, and verifies.
    ann.take_control(&session)?;
    let (user, grant) = changed_grant(&ann.wait_for("music-controller-changed").await?);
    let grant = grant.context("controller change without a grant")?;
    assert_eq!(user, ann.user.id);
    assert_eq!(
        (grant.user_id, grant.epoch, grant.device_key.as_deref()),
        (ann.user.id, 1, Some(ann_device.public_hex().as_str()))
    );
    let verified = verify_grant(&server_key, &session, &grant).expect("ann's grant verifies");
    assert!(verified.expires_at as f64 > now_ms());

    // Ben joins: the state carries Ann's grant (fresh, same epoch).
    let st = ben
        .enter(
            ben.config(&base, seed + 1)?
                .device_key(ben_device.public_hex()),
            &session,
        )
        .await?;
    let (dj, ben_view) = state_grant(&st);
    let ben_view = ben_view.context("session state without a grant")?;
    assert_eq!(
        (dj, ben_view.user_id, ben_view.epoch),
        (Some(ann.user.id), ann.user.id, 1)
    );
    verify_grant(&server_key, &session, &ben_view).expect("state grant verifies");

    // With it, Ben's gate admits Ann's pause relayed by a third peer, signed; once.
    let mut ben_gate = Gate::new(&session);
    ben_gate.set_server_key(server_key.clone());
    ben_gate.on_server_controller(dj, Some(&ben_view))?;
    let mut ann_out = Outgoing::new(ann.user.id, 1_000);
    let pause = signed_pause(&mut ann_out, &ann_device, &session, ann.user.id, 1);
    let mut ben_rx = Receiver::new();
    assert_eq!(
        receive(&ben_gate, &mut ben_rx, web.user.id, &pause),
        Ok(Some(Admitted::Controller))
    );
    assert_eq!(
        receive(&ben_gate, &mut ben_rx, web.user.id, &pause),
        Ok(None),
        "a replay is admitted by the gate but dropped by the de-duplication"
    );
    // Web forges Ann's pause far ahead in her sequence: refused before the window sees it,
    // so Ann's next real message still counts.
    let forged = jamz_mesh::message::encode(&MeshEnvelope {
        kind: kinds::MUSIC_CONTROL.into(),
        action: Some(ControlAction::Pause),
        data: json!({"position": 0.0, "timestamp": now_ms(), "from": ann.user.id}),
        sequence: 1_000_000,
        from: ann.user.id,
        epoch: Some(1),
        sig: None,
        ttl: None,
    })?;
    assert!(matches!(
        receive(&ben_gate, &mut ben_rx, web.user.id, &forged),
        Err(Rejection::RelayedUnsigned { .. })
    ));
    let next = signed_pause(&mut ann_out, &ann_device, &session, ann.user.id, 1);
    assert_eq!(
        receive(&ben_gate, &mut ben_rx, web.user.id, &next),
        Ok(Some(Admitted::Controller))
    );

    // Ben takes control: everyone hears epoch 2 with Ben's key; Ann's epoch-1 messages
    // stop counting.
    ben.take_control(&session)?;
    let ben_id = ben.user.id;
    for member in [&mut ann, &mut ben] {
        let (user, g) = changed_grant(&member.wait_for("music-controller-changed").await?);
        let g = g.context("no grant")?;
        assert_eq!(user, ben_id);
        assert_eq!(
            (g.user_id, g.epoch, g.device_key.clone()),
            (ben_id, 2, Some(ben_device.public_hex()))
        );
        verify_grant(&server_key, &session, &g).expect("ben's grant verifies");
        ben_gate.on_server_controller(Some(user), Some(&g))?;
    }
    let late = signed_pause(&mut ann_out, &ann_device, &session, ann.user.id, 1);
    assert!(matches!(
        receive(&ben_gate, &mut ben_rx, web.user.id, &late),
        Err(Rejection::NotController { .. })
    ));

    // A client that presents no key (a web app) still becomes DJ, with a keyless grant;
    // so does one whose key is malformed (ignored, not refused).
    let st = web
        .enter(
            web.config(&base, seed + 2)?.device_key("not a key"),
            &session,
        )
        .await?;
    assert_eq!(state_grant(&st).1.map(|g| g.epoch), Some(2));
    web.take_control(&session)?;
    let (_, g) = changed_grant(&web.wait_for("music-controller-changed").await?);
    let g = g.context("no grant")?;
    assert_eq!((g.user_id, g.epoch, g.device_key), (web.user.id, 3, None));
    let (user, _) = changed_grant(&ann.wait_for("music-controller-changed").await?);
    assert_eq!(user, web.user.id, "the room heard it too");

    // Ann takes control back: epoch 4.
    ann.take_control(&session)?;
    let (_, g) = changed_grant(&ann.wait_for("music-controller-changed").await?);
    assert_eq!(
        g.map(|g| (g.epoch, g.device_key)),
        Some((4, Some(ann_device.public_hex())))
    );

    // The server restarts: same key, same DJ and epoch, a fresh grant.
    let addr = server.addr.clone();
    server.kill9().await?;
    drop(server);
    let server = TestServer::start_in(dir.path(), &addr).await?;
    let again = jamz_link::RestClient::new(&server.url)?.grant_key().await?;
    assert_eq!(again, served, "the key survives a restart");
    let mut late_joiner = Member::register(&server.url, "lou").await?;
    ann.rest.add_member(&group.id, "lou").await?;
    let st = late_joiner
        .enter(late_joiner.config(&server.url, seed + 3)?, &session)
        .await?;
    let (dj, g) = state_grant(&st);
    let g = g.context("no grant after restart")?;
    assert_eq!(
        (dj, g.user_id, g.epoch),
        (Some(ann.user.id), ann.user.id, 4)
    );
    assert_eq!(g.device_key, Some(ann_device.public_hex()));
    verify_grant(&server_key, &session, &g).expect("verifies with the key fetched before");
    Ok(())
}
