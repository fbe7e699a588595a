//! Positions over the peer mesh: a sharing car tells its peers where it is whether or not
//! the server hears it, a fix that arrives over both transports is taken once, "location
//! off" reaches the peers with the server gone, and a position said for someone else is
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::mesh::*;
use common::*;
use jamz_proto::ServerEvent;
use jamz_proto::events::{ConvoyKind, ConvoyRelay, LocationRelay};
use jamz_proto::mesh::MeshEnvelope;
use jamz_proto::mesh::kinds;
use jamz_sync::convoy::Position;
use jamz_sync::location::{LocationEvent, LocationInput};
use jamz_sync::{Action, Engine, Input, Notification};

fn loc(e: &mut Engine, now: f64, i: LocationInput) -> Vec<Action> {
    e.handle(now, Input::Location(i));
    drain(e)
}

fn share(e: &mut Engine, now: f64) -> Vec<Action> {
    let i = LocationInput::Share {
        enabled: true,
        for_ms: None,
    };
    loc(e, now, i)
}

fn fix(lat: f64) -> LocationInput {
    LocationInput::Fix(Position::moving(lat, 11.575, 20.0, 0.0))
}

fn of_kind(actions: &[Action], kind: &str) -> Vec<MeshEnvelope> {
    mesh_out(actions)
        .into_iter()
        .filter(|(to, m)| {
            assert_eq!(*to, None, "a car's position goes to every peer");
            m.kind == kind
        })
        .map(|(_, m)| m)
        .collect()
}

fn positions_of(actions: &[Action], user: i64) -> Vec<f64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Location(LocationEvent::Location {
                user_id,
                latitude,
                ..
            })) if *user_id == user => Some(*latitude),
            _ => None,
        })
        .collect()
}

fn offs_of(actions: &[Action], user: i64) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(a, Action::Notify(Notification::Location(LocationEvent::LocationOff { user_id })) if *user_id == user)
        })
        .count()
}

fn from_mesh(e: &mut Engine, now: f64, link: i64, seq: u64, m: &MeshEnvelope) -> Vec<Action> {
    e.handle(
        now,
        Input::Mesh {
            link,
            message: envelope(link, seq, m),
        },
    );
    drain(e)
}

#[test]
fn a_sharing_car_tells_its_peers_where_it_is_with_the_server_gone() {
    let (mut me, now) = world(ME, &[DJ]);
    let (mut dj, _) = world(DJ, &[ME]);
    disconnect(&mut me, now);
    disconnect(&mut dj, now);

    // Not sharing: nothing goes out, over either transport.
    let quiet = loc(&mut me, now + 1.0, fix(48.1));
    assert!(
        of_kind(&quiet, kinds::LOCATION_UPDATE).is_empty(),
        "{quiet:?}"
    );

    share(&mut me, now + 2.0);
    let out = loc(&mut me, now + 3.0, fix(48.2));
    let sent = of_kind(&out, kinds::LOCATION_UPDATE);
    assert_eq!(sent.len(), 1, "{out:?}");
    assert_eq!(sent[0].data["latitude"], 48.2);
    assert!(sent[0].data["timestamp"].as_f64().unwrap() > 0.0);

    let seen = from_mesh(&mut dj, now + 4.0, ME, 1, &sent[0]);
    assert_eq!(positions_of(&seen, ME), vec![48.2], "{seen:?}");
    assert!(refused(&seen).is_empty(), "{seen:?}");
}

#[test]
fn a_fix_over_the_socket_and_the_mesh_is_taken_once_and_an_older_one_not_at_all() {
    let (mut me, now) = world(ME, &[DJ]);
    let (mut dj, _) = world(DJ, &[ME]);
    share(&mut me, now);
    let first = of_kind(&loc(&mut me, now + 1.0, fix(48.2)), kinds::LOCATION_UPDATE);
    let second = of_kind(
        &loc(&mut me, now + 10_000.0, fix(48.3)),
        kinds::LOCATION_UPDATE,
    );
    assert_eq!((first.len(), second.len()), (1, 1));

    // The server's relay of the first fix carries the same stamp as the mesh copy.
    let socket_copy = |m: &MeshEnvelope| {
        ServerEvent::LocationUpdate(LocationRelay {
            user_id: ME,
            session_id: Some(SESSION.into()),
            latitude: m.data["latitude"].as_f64().unwrap(),
            longitude: m.data["longitude"].as_f64().unwrap(),
            accuracy: None,
            speed: m.data["speed"].as_f64(),
            heading: m.data["heading"].as_f64(),
            timestamp: m.data["timestamp"].as_f64().unwrap(),
        })
    };
    let by_socket = server(&mut dj, now + 2.0, socket_copy(&first[0]));
    assert_eq!(positions_of(&by_socket, ME), vec![48.2]);
    let by_mesh = from_mesh(&mut dj, now + 3.0, ME, 1, &first[0]);
    assert!(positions_of(&by_mesh, ME).is_empty(), "{by_mesh:?}");

    // The newer fix over the mesh, then the socket's late copy of the first: not taken.
    let newer = from_mesh(&mut dj, now + 10_001.0, ME, 2, &second[0]);
    assert_eq!(positions_of(&newer, ME), vec![48.3]);
    let late = server(&mut dj, now + 10_002.0, socket_copy(&first[0]));
    assert!(positions_of(&late, ME).is_empty(), "{late:?}");
}

#[test]
fn location_off_reaches_the_peers_over_the_mesh_and_is_told_once() {
    let (mut me, now) = world(ME, &[DJ]);
    let (mut dj, _) = world(DJ, &[ME]);
    disconnect(&mut me, now);
    share(&mut me, now);
    let at = of_kind(&loc(&mut me, now + 1.0, fix(48.2)), kinds::LOCATION_UPDATE);
    from_mesh(&mut dj, now + 1.0, ME, 1, &at[0]);

    let off = loc(
        &mut me,
        now + 2.0,
        LocationInput::Share {
            enabled: false,
            for_ms: None,
        },
    );
    let said = of_kind(&off, kinds::CONVOY_UPDATE);
    assert_eq!(said.len(), 1, "{off:?}");
    assert_eq!(said[0].data["kind"], "location-off");

    let heard = from_mesh(&mut dj, now + 3.0, ME, 2, &said[0]);
    assert_eq!(offs_of(&heard, ME), 1, "{heard:?}");
    // The server's copy when it is back says nothing new.
    let again = server(
        &mut dj,
        now + 4.0,
        ServerEvent::ConvoyUpdate(ConvoyRelay {
            user_id: ME,
            session_id: Some(SESSION.into()),
            kind: ConvoyKind::LocationOff,
            latitude: None,
            longitude: None,
        }),
    );
    assert_eq!(offs_of(&again, ME), 0, "{again:?}");
}

#[test]
fn a_regroup_point_set_offline_reaches_the_peers() {
    let (mut me, now) = world(ME, &[DJ]);
    let (mut dj, _) = world(DJ, &[ME]);
    disconnect(&mut me, now);
    let set = loc(
        &mut me,
        now,
        LocationInput::SetRegroup {
            latitude: 48.5,
            longitude: 11.6,
        },
    );
    let said = of_kind(&set, kinds::CONVOY_UPDATE);
    assert_eq!(said.len(), 1, "{set:?}");
    let heard = from_mesh(&mut dj, now + 1.0, ME, 1, &said[0]);
    let point = heard.iter().find_map(|a| match a {
        Action::Notify(Notification::Location(LocationEvent::Regroup {
            latitude,
            longitude,
            set_by,
            ..
        })) => Some((*latitude, *longitude, *set_by)),
        _ => None,
    });
    assert_eq!(point, Some((48.5, 11.6, ME)), "{heard:?}");
}

#[test]
fn a_position_said_for_someone_else_is_refused() {
    let (mut me, now) = world(ME, &[DJ, OTHER]);
    let (mut dj, _) = world(DJ, &[ME, OTHER]);
    share(&mut me, now);
    let at = of_kind(&loc(&mut me, now + 1.0, fix(48.2)), kinds::LOCATION_UPDATE);
    // OTHER forwards ME's position on its own link, unsigned: a relay the gate refuses.
    dj.handle(
        now + 2.0,
        Input::Mesh {
            link: OTHER,
            message: envelope(ME, 1, &at[0]),
        },
    );
    let out = drain(&mut dj);
    assert!(positions_of(&out, ME).is_empty(), "{out:?}");
    assert_eq!(refused(&out).len(), 1, "{out:?}");
}
