use super::*;
use ed25519_dalek::Signer;
use jamz_proto::events::ControlAction;
use proptest::prelude::*;
use serde_json::json;

const SESSION: &str = "5b0c7e0e-1b2f-4c1e-9a51-3b7c1d2e4f60";
const DJ: UserId = 1;
const BOB: UserId = 2;
const CAROL: UserId = 3;
/// Server time of the tests (ms).
const NOW: f64 = 1_700_000_000_000.0;
const HOUR: u64 = 3_600_000;

fn server_signer() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

fn server_key() -> ServerKey {
    ServerKey::from_hex(&hex::encode(server_signer().verifying_key().as_bytes())).unwrap()
}

fn dj_device() -> DeviceKey {
    DeviceKey::from_seed([22; 32])
}

fn carol_device() -> DeviceKey {
    DeviceKey::from_seed([33; 32])
}

/// A grant as `signer` would issue it.
fn grant_by(
    signer: &SigningKey,
    session: &str,
    user: UserId,
    epoch: u64,
    device: Option<&DeviceKey>,
    expires_at: u64,
) -> ControllerGrant {
    let mut g = ControllerGrant {
        session_id: session.into(),
        user_id: user,
        epoch,
        device_key: device.map(DeviceKey::public_hex),
        issued_at: NOW as u64 - HOUR,
        expires_at,
        sig: String::new(),
    };
    g.sig = hex::encode(signer.sign(&g.signing_bytes().unwrap()).to_bytes());
    g
}

fn good_grant(epoch: u64) -> ControllerGrant {
    grant_by(
        &server_signer(),
        SESSION,
        DJ,
        epoch,
        Some(&dj_device()),
        NOW as u64 + HOUR,
    )
}

/// A gate that knows the server's key and DJ 1 with `grant`.
fn gate_with(grant: &ControllerGrant) -> Gate {
    let mut gate = Gate::new(SESSION);
    gate.set_server_key(server_key());
    gate.on_server_controller(Some(grant.user_id), Some(grant))
        .unwrap();
    gate
}

fn pause(from: UserId, sequence: u64, epoch: Option<u64>) -> MeshEnvelope {
    MeshEnvelope {
        kind: kinds::MUSIC_CONTROL.into(),
        action: Some(ControlAction::Pause),
        data: json!({"position": 42.5, "trackId": "t1", "timestamp": NOW, "from": from}),
        sequence,
        from,
        epoch,
        sig: None,
        ttl: None,
    }
}

fn signed(device: &DeviceKey, session: &str, mut e: MeshEnvelope) -> MeshEnvelope {
    device.sign(session, &mut e).unwrap();
    e
}

/// As it would arrive: encoded to text and parsed again.
fn over_the_wire(e: &MeshEnvelope) -> MeshEnvelope {
    serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap()
}

#[test]
fn the_dj_is_obeyed_on_its_direct_link_and_relayed_with_a_valid_grant() {
    let gate = gate_with(&good_grant(3));
    assert_eq!(gate.epoch(), Some(3));
    assert_eq!(
        gate.judge(NOW, DJ, &pause(DJ, 1, None)),
        Ok(Admitted::Controller),
        "direct: no signature needed"
    );
    let relayed = over_the_wire(&signed(&dj_device(), SESSION, pause(DJ, 2, Some(3))));
    assert_eq!(gate.judge(NOW, BOB, &relayed), Ok(Admitted::Controller));
    assert_eq!(
        gate.judge(NOW, BOB, &pause(DJ, 3, Some(3))),
        Err(Rejection::RelayedUnsigned {
            link: BOB,
            from: DJ
        })
    );
}

#[test]
fn an_expired_grant_admits_nothing() {
    let g = grant_by(
        &server_signer(),
        SESSION,
        DJ,
        3,
        Some(&dj_device()),
        NOW as u64 - 1,
    );
    let gate = gate_with(&g);
    let relayed = signed(&dj_device(), SESSION, pause(DJ, 2, Some(3)));
    assert_eq!(
        gate.judge(NOW, BOB, &relayed),
        Err(Rejection::GrantExpired {
            expires_at: NOW as u64 - 1,
            now: NOW as u64
        })
    );
    assert_eq!(
        gate.judge(NOW, DJ, &pause(DJ, 3, None))
            .map_err(|e| e.label()),
        Err("grant-expired"),
        "the direct link needs a valid grant too"
    );
    assert!(matches!(
        gate.judge(f64::NAN, BOB, &relayed),
        Err(Rejection::GrantExpired { .. })
    ));
}

#[test]
fn a_grant_for_another_session_is_refused_and_so_is_a_message_signed_for_one() {
    let other = grant_by(
        &server_signer(),
        "another-session",
        DJ,
        3,
        Some(&dj_device()),
        NOW as u64 + HOUR,
    );
    let mut gate = Gate::new(SESSION);
    gate.set_server_key(server_key());
    assert_eq!(
        gate.on_server_controller(Some(DJ), Some(&other)),
        Err(Rejection::GrantOtherSession("another-session".into()))
    );
    let relayed = signed(&dj_device(), SESSION, pause(DJ, 2, Some(3)));
    assert_eq!(
        gate.judge(NOW, BOB, &relayed),
        Err(Rejection::GrantOtherSession("another-session".into()))
    );
    assert_eq!(
        gate.learn_grant(&other),
        Err(Rejection::GrantOtherSession("another-session".into()))
    );
    // The right grant, and a message the DJ signed for its other session: replayed here, refused.
    let gate = gate_with(&good_grant(3));
    let elsewhere = signed(&dj_device(), "another-session", pause(DJ, 2, Some(3)));
    assert_eq!(
        gate.judge(NOW, BOB, &elsewhere),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn a_message_of_another_epoch_is_refused() {
    let gate = gate_with(&good_grant(4));
    for epoch in [Some(3), Some(5), None] {
        let mut e = pause(DJ, 2, epoch);
        if epoch.is_some() {
            e = signed(&dj_device(), SESSION, e);
        }
        assert_eq!(
            gate.judge(NOW, BOB, &e),
            Err(Rejection::GrantOtherEpoch {
                grant: 4,
                message: epoch
            })
        );
    }
    assert_eq!(
        dj_device().sign(SESSION, &mut pause(DJ, 2, None)),
        Err(SignError::NoEpoch)
    );
}

#[test]
fn a_grant_signed_by_another_key_is_refused() {
    let forged = grant_by(
        &SigningKey::from_bytes(&[99; 32]),
        SESSION,
        CAROL,
        9,
        Some(&carol_device()),
        NOW as u64 + HOUR,
    );
    let mut gate = Gate::new(SESSION);
    gate.set_server_key(server_key());
    assert_eq!(
        gate.on_server_controller(Some(CAROL), Some(&forged)),
        Err(Rejection::GrantBadSignature)
    );
    let carol_relayed = signed(&carol_device(), SESSION, pause(CAROL, 5, Some(9)));
    assert_eq!(
        gate.judge(NOW, BOB, &carol_relayed),
        Err(Rejection::GrantBadSignature)
    );
    // Over the mesh, it cannot displace the real DJ.
    let mut gate = gate_with(&good_grant(3));
    assert_eq!(gate.learn_grant(&forged), Err(Rejection::GrantBadSignature));
    assert_eq!(gate.server_controller(), Some(DJ));
    // A tampered real grant (a longer life) is no longer the server's.
    let mut stretched = good_grant(3);
    stretched.expires_at += 100 * HOUR;
    assert_eq!(
        gate.learn_grant(&stretched),
        Err(Rejection::GrantBadSignature)
    );
}

#[test]
fn a_forged_from_is_refused_direct_or_relayed() {
    let gate = gate_with(&good_grant(3));
    // Bob claims to be the DJ on his own link, unsigned.
    assert_eq!(
        gate.judge(NOW, BOB, &pause(DJ, 7, Some(3))),
        Err(Rejection::RelayedUnsigned {
            link: BOB,
            from: DJ
        })
    );
    // ... signed with his own key.
    let bob_device = DeviceKey::from_seed([44; 32]);
    let bob_signed = signed(&bob_device, SESSION, pause(DJ, 7, Some(3)));
    assert_eq!(
        gate.judge(NOW, BOB, &bob_signed),
        Err(Rejection::BadSignature)
    );
    // ... or says he is himself in the envelope but the DJ in the seeds' data.
    let mut mixed = pause(BOB, 7, None);
    mixed.data["from"] = json!(DJ);
    assert_eq!(
        gate.judge(NOW, BOB, &mixed),
        Err(Rejection::ForgedFrom {
            from: BOB,
            data_from: DJ
        })
    );
    // A real signed message with `from` rewritten by a relay.
    let mut rewritten = signed(&dj_device(), SESSION, pause(DJ, 8, Some(3)));
    rewritten.from = CAROL;
    rewritten.data["from"] = json!(CAROL);
    assert!(matches!(
        gate.judge(NOW, BOB, &rewritten),
        Err(Rejection::NotController { from: CAROL, .. })
    ));
}

#[test]
fn a_replayed_or_renumbered_message_fails_its_signature() {
    let gate = gate_with(&good_grant(3));
    let original = signed(&dj_device(), SESSION, pause(DJ, 10, Some(3)));
    assert_eq!(gate.judge(NOW, BOB, &original), Ok(Admitted::Controller));
    // A relay that renumbers it past the de-duplication window (a replay trick).
    let mut renumbered = original.clone();
    renumbered.sequence = 10 + 1_000_000;
    assert_eq!(
        gate.judge(NOW, BOB, &renumbered),
        Err(Rejection::BadSignature)
    );
    // ... or replays it as a seek to elsewhere.
    let mut moved = original.clone();
    moved.data["position"] = json!(0.0);
    assert_eq!(gate.judge(NOW, BOB, &moved), Err(Rejection::BadSignature));
    // After a change of control (new epoch), an old signed message is refused.
    let mut gate = gate;
    assert_eq!(gate.learn_grant(&good_grant(4)), Ok(true));
    assert_eq!(
        gate.judge(NOW, BOB, &original),
        Err(Rejection::GrantOtherEpoch {
            grant: 4,
            message: Some(3)
        })
    );
}

#[test]
fn a_member_with_its_own_key_controls_nothing() {
    let gate = gate_with(&good_grant(3));
    // Direct, from Carol herself.
    assert_eq!(
        gate.judge(NOW, CAROL, &pause(CAROL, 1, None)),
        Err(Rejection::NotController {
            from: CAROL,
            controller: Some(DJ)
        })
    );
    // Relayed and signed by her own key, with the DJ's epoch.
    let relayed = signed(&carol_device(), SESSION, pause(CAROL, 2, Some(3)));
    assert_eq!(
        gate.judge(NOW, BOB, &relayed),
        Err(Rejection::NotController {
            from: CAROL,
            controller: Some(DJ)
        })
    );
    // Her position syncs and controller claims likewise.
    for kind in [kinds::POSITION_SYNC, kinds::CONTROLLER_CHANGED] {
        let mut e = pause(CAROL, 3, None);
        e.kind = kind.into();
        e.action = None;
        assert!(matches!(
            gate.judge(NOW, CAROL, &e),
            Err(Rejection::NotController { .. })
        ));
    }
}

#[test]
fn members_are_heard_on_their_own_links_only() {
    let gate = gate_with(&good_grant(3));
    let append = MeshEnvelope {
        kind: kinds::PLAYLIST_UPDATE.into(),
        action: None,
        data: json!({"playlist": []}),
        sequence: 1,
        from: BOB,
        epoch: None,
        sig: None,
        ttl: None,
    };
    assert_eq!(gate.judge(NOW, BOB, &append), Ok(Admitted::Member));
    assert_eq!(
        gate.judge(NOW, CAROL, &append),
        Err(Rejection::RelayedUnsigned {
            link: CAROL,
            from: BOB
        })
    );
    let mut hello = append.clone();
    hello.kind = kinds::STATE_HELLO.into();
    assert_eq!(gate.judge(NOW, BOB, &hello), Ok(Admitted::Member));
    assert!(matches!(
        gate.judge(NOW, CAROL, &hello),
        Err(Rejection::NotDirect { .. })
    ));
    // The DJ's own playlist, relayed and signed: the DJ's to make.
    let mut dj_list = append.clone();
    dj_list.from = DJ;
    dj_list.epoch = Some(3);
    let dj_list = signed(&dj_device(), SESSION, dj_list);
    assert_eq!(gate.judge(NOW, CAROL, &dj_list), Ok(Admitted::Controller));
    let mut unknown = append;
    unknown.kind = "future-thing".into();
    assert_eq!(
        gate.judge(NOW, BOB, &unknown),
        Err(Rejection::UnknownKind("future-thing".into()))
    );
}

#[test]
fn a_web_app_dj_without_a_key_is_obeyed_on_its_direct_link_only() {
    let g = grant_by(&server_signer(), SESSION, DJ, 3, None, NOW as u64 + HOUR);
    let gate = gate_with(&g);
    assert_eq!(
        gate.judge(NOW, DJ, &pause(DJ, 1, None)),
        Ok(Admitted::Controller)
    );
    assert_eq!(
        gate.judge(NOW, BOB, &pause(DJ, 2, Some(3))),
        Err(Rejection::DeviceCannotSign)
    );
}

#[test]
fn without_the_servers_key_or_a_grant_nothing_relayed_is_admitted() {
    let mut gate = Gate::new(SESSION);
    gate.on_server_controller(Some(DJ), Some(&good_grant(3)))
        .unwrap();
    let relayed = signed(&dj_device(), SESSION, pause(DJ, 2, Some(3)));
    assert_eq!(gate.judge(NOW, BOB, &relayed), Err(Rejection::NoServerKey));
    assert_eq!(
        gate.learn_grant(&good_grant(3)),
        Err(Rejection::NoServerKey)
    );
    gate.set_server_key(server_key());
    assert_eq!(gate.judge(NOW, BOB, &relayed), Ok(Admitted::Controller));
    gate.on_server_controller(Some(DJ), None).unwrap();
    assert_eq!(gate.judge(NOW, BOB, &relayed), Err(Rejection::NoGrant));
    gate.on_server_controller(None, None).unwrap();
    assert_eq!(
        gate.judge(NOW, DJ, &pause(DJ, 3, None)),
        Err(Rejection::NotController {
            from: DJ,
            controller: None
        })
    );
}

#[test]
fn grants_learned_over_the_mesh_move_control_forward_only() {
    let mut gate = gate_with(&good_grant(5));
    let carol_older = grant_by(
        &server_signer(),
        SESSION,
        CAROL,
        4,
        Some(&carol_device()),
        NOW as u64 + HOUR,
    );
    assert_eq!(gate.learn_grant(&carol_older), Ok(false));
    assert_eq!(gate.server_controller(), Some(DJ));
    let carol_newer = grant_by(
        &server_signer(),
        SESSION,
        CAROL,
        6,
        Some(&carol_device()),
        NOW as u64 + HOUR,
    );
    assert_eq!(gate.learn_grant(&carol_newer), Ok(true));
    assert_eq!(
        (gate.server_controller(), gate.epoch()),
        (Some(CAROL), Some(6))
    );
    assert_eq!(gate.acting(), Acting::Server(CAROL));
    assert!(matches!(
        gate.judge(NOW, DJ, &pause(DJ, 9, None)),
        Err(Rejection::NotController { .. })
    ));
    // The server's own word wins, whatever the mesh said.
    gate.on_server_controller(Some(DJ), Some(&good_grant(7)))
        .unwrap();
    assert_eq!(
        (gate.server_controller(), gate.epoch()),
        (Some(DJ), Some(7))
    );
}

#[test]
fn succession_keeps_a_dj_the_same_way_on_every_peer() {
    let t = 1_000_000.0;
    let heard = [(DJ, t - 500.0), (BOB, t - 200.0), (CAROL, t - 100.0)];
    // Everyone hears the DJ: the DJ.
    assert_eq!(
        acting_controller(Some(DJ), BOB, &heard, t, false),
        Acting::Server(DJ)
    );
    // The server is up: its DJ, heard or not.
    assert_eq!(
        acting_controller(Some(DJ), BOB, &[], t, true),
        Acting::Server(DJ)
    );
    // The DJ unheard for longer than the limit while the server is gone: the lowest id
    // among those present, the same from Bob's, Carol's and Dave's side.
    let later = t + DJ_ABSENCE_MS + 1.0;
    let dave = 4;
    let bob_view = [(DJ, t), (CAROL, later - 50.0), (dave, later - 900.0)];
    let carol_view = [(DJ, t), (BOB, later - 10.0), (dave, later - 300.0)];
    let dave_view = [(BOB, later - 20.0), (CAROL, later - 30.0)];
    for (me, view) in [
        (BOB, &bob_view[..]),
        (CAROL, &carol_view[..]),
        (dave, &dave_view[..]),
    ] {
        assert_eq!(
            acting_controller(Some(DJ), me, view, later, false),
            Acting::Successor(BOB),
            "seen from {me}"
        );
    }
    // Exactly at the limit the DJ still counts as present.
    assert_eq!(
        acting_controller(Some(DJ), CAROL, &[(DJ, t)], t + DJ_ABSENCE_MS, false),
        Acting::Server(DJ)
    );
    // The DJ itself never hands control away; nobody stays nobody.
    assert_eq!(
        acting_controller(Some(DJ), DJ, &[], later, false),
        Acting::Server(DJ)
    );
    assert_eq!(
        acting_controller(None, BOB, &heard, later, false),
        Acting::Nobody
    );
    // A member long unheard is not a candidate; alone, nobody succeeds.
    assert_eq!(
        acting_controller(
            Some(DJ),
            CAROL,
            &[(BOB, t - 60_000.0), (dave, later)],
            later,
            false
        ),
        Acting::Successor(CAROL)
    );
    assert_eq!(
        acting_controller(Some(DJ), CAROL, &[(BOB, t - 60_000.0)], later, false),
        Acting::Server(DJ)
    );
}

#[test]
fn the_successor_is_obeyed_directly_but_never_relayed() {
    let mut gate = gate_with(&good_grant(3));
    let t = 50_000.0;
    let acting = gate.update_acting(CAROL, &[(BOB, t - 1.0), (DJ, t - 60_000.0)], t, false);
    assert_eq!(acting, Acting::Successor(BOB));
    assert_eq!(
        gate.judge(NOW, BOB, &pause(BOB, 1, None)),
        Ok(Admitted::Controller)
    );
    assert_eq!(
        gate.judge(NOW, DJ, &pause(DJ, 2, None))
            .map_err(|e| e.label()),
        Err("not-controller")
    );
    assert_eq!(
        gate.judge(NOW, CAROL, &pause(BOB, 3, None)),
        Err(Rejection::NoGrant)
    );
    // The DJ heard again: control is back with it.
    assert_eq!(
        gate.update_acting(CAROL, &[(DJ, t + 5.0)], t + 10.0, false),
        Acting::Server(DJ)
    );
    assert_eq!(
        gate.judge(NOW, DJ, &pause(DJ, 4, None)),
        Ok(Admitted::Controller)
    );
}

#[test]
fn only_the_device_the_grant_names_signs() {
    let gate = gate_with(&good_grant(3));
    assert_eq!(gate.signing_epoch(DJ, &dj_device()), Some(3));
    assert_eq!(
        gate.signing_epoch(DJ, &carol_device()),
        None,
        "another device of the DJ's user"
    );
    assert_eq!(gate.signing_epoch(CAROL, &dj_device()), None, "not the DJ");
    let mut keyless = Gate::new(SESSION);
    let _ = keyless.on_server_controller(Some(DJ), Some(&good_grant(3)));
    assert_eq!(
        keyless.signing_epoch(DJ, &dj_device()),
        None,
        "a grant not checked (no server key) is not signed under"
    );
}

#[test]
fn the_djs_signature_relayed_is_admitted_while_a_successor_acts() {
    let mut gate = gate_with(&good_grant(3));
    let t = 50_000.0;
    let acting = gate.update_acting(CAROL, &[(BOB, t - 1.0), (DJ, t - 60_000.0)], t, false);
    assert_eq!(acting, Acting::Successor(BOB));
    let relayed = over_the_wire(&signed(&dj_device(), SESSION, pause(DJ, 7, Some(3))));
    assert_eq!(gate.judge(NOW, BOB, &relayed), Ok(Admitted::Controller));
    // Not signed by the DJ's device: still refused.
    let forged = over_the_wire(&signed(&carol_device(), SESSION, pause(DJ, 8, Some(3))));
    assert_eq!(gate.judge(NOW, BOB, &forged), Err(Rejection::BadSignature));
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(256))]
    /// Whatever field a relay changes in a signed message, it is refused; unchanged, admitted.
    #[test]
    fn any_change_to_a_signed_message_is_refused(
        seq in 0u64..u64::MAX / 2,
        position in 0.0f64..86_400.0,
        bump_seq in any::<bool>(),
        delta in 1u64..1000,
        field in 0usize..4,
    ) {
        let gate = gate_with(&good_grant(3));
        let mut e = pause(DJ, seq, Some(3));
        e.data["position"] = json!(position);
        let e = over_the_wire(&signed(&dj_device(), SESSION, e));
        prop_assert_eq!(gate.judge(NOW, BOB, &e), Ok(Admitted::Controller));
        let mut changed = e.clone();
        match field {
            0 if bump_seq => changed.sequence = seq + delta,
            0 => changed.sequence = seq.wrapping_sub(delta),
            1 => changed.data["position"] = json!(position + delta as f64),
            2 => changed.action = Some(ControlAction::Play),
            // Never the track the message named (`t1`): a change, whatever `delta` is.
            _ => changed.data["trackId"] = json!(format!("other-{delta}")),
        }
        prop_assert_eq!(gate.judge(NOW, BOB, &changed), Err(Rejection::BadSignature));
    }
}

proptest! {
    /// On its own link the DJ is obeyed exactly when the grant held for it is the server's,
    /// for this session, names it and has not expired; a member who is not the DJ never.
    #[test]
    fn a_direct_control_is_obeyed_only_under_a_valid_grant(
        right_signer in any::<bool>(),
        right_session in any::<bool>(),
        right_user in any::<bool>(),
        expires_in in -2i64 * HOUR as i64..2 * HOUR as i64,
        with_key in any::<bool>(),
        sender in prop::sample::select(vec![DJ, BOB, CAROL]),
    ) {
        let signer = if right_signer { server_signer() } else { SigningKey::from_bytes(&[99; 32]) };
        let session = if right_session { SESSION } else { "another-session" };
        let user = if right_user { DJ } else { CAROL };
        let expires_at = (NOW as i64 + expires_in) as u64;
        let grant = grant_by(&signer, session, user, 3, Some(&dj_device()), expires_at);
        let mut gate = Gate::new(SESSION);
        if with_key {
            gate.set_server_key(server_key());
        }
        // The server names the DJ; the grant it came with may be bad.
        let _ = gate.on_server_controller(Some(DJ), Some(&grant));
        let valid = with_key && right_signer && right_session && right_user
            && (NOW as u64) < expires_at;
        let verdict = gate.judge(NOW, sender, &pause(sender, 1, None));
        prop_assert_eq!(
            verdict.is_ok(),
            valid && sender == DJ,
            "{:?}", verdict
        );
        if sender != DJ {
            prop_assert_eq!(verdict.map_err(|e| e.label()), Err("not-controller"));
        }
    }
}

#[test]
fn a_refusal_names_the_dj_in_words() {
    let with_dj = Rejection::NotController {
        from: CAROL,
        controller: Some(DJ),
    };
    assert_eq!(
        with_dj.to_string(),
        "user 3 is not the DJ (the DJ is user 1)"
    );
    let without = Rejection::NotController {
        from: CAROL,
        controller: None,
    };
    assert_eq!(without.to_string(), "user 3 is not the DJ (there is no DJ)");
}
