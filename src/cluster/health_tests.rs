use super::*;

fn obs(link_up: bool, last_frame_ms: Option<u64>) -> Observation {
    Observation {
        link_up,
        last_frame_ms,
        last_change_ms: 0,
    }
}

#[test]
fn the_bounds_split_up_suspect_and_down() {
    assert_eq!(classify(obs(false, None), 10_000), Reach::Down);
    assert_eq!(classify(obs(true, Some(1_000)), 1_000), Reach::Up);
    let suspect_at = 1_000 + PEER_SUSPECT_AFTER_MS;
    assert_eq!(classify(obs(true, Some(1_000)), suspect_at), Reach::Up);
    assert_eq!(
        classify(obs(true, Some(1_000)), suspect_at + 1),
        Reach::Suspect
    );
    // A link that just broke: suspect at once, however recent the last frame.
    assert_eq!(classify(obs(false, Some(1_000)), 1_001), Reach::Suspect);
    let down_at = 1_000 + PEER_DOWN_AFTER_MS;
    assert_eq!(
        classify(obs(false, Some(1_000)), down_at - 1),
        Reach::Suspect
    );
    assert_eq!(classify(obs(false, Some(1_000)), down_at), Reach::Down);
    assert_eq!(classify(obs(true, Some(1_000)), down_at), Reach::Down);
}

#[test]
fn a_tracker_goes_up_suspect_down_and_back_with_times() {
    let mut t = Tracker::new(0);
    assert_eq!(t.step(Reach::Down, 50), None);
    let first = t.step(Reach::Up, 100).expect("first contact");
    assert_eq!(
        (first.from, first.to, first.after_ms, first.comeback),
        (Reach::Down, Reach::Up, 100, false)
    );
    assert_eq!(t.step(Reach::Up, 400), None);
    let suspect = t.step(Reach::Suspect, 1_000).expect("suspect");
    assert_eq!((suspect.from, suspect.after_ms), (Reach::Up, 900));
    let down = t.step(Reach::Down, 1_900).expect("down");
    assert_eq!(
        (down.from, down.to, down.after_ms),
        (Reach::Suspect, Reach::Down, 900)
    );
    assert_eq!((t.state, t.since_ms), (Reach::Down, 1_900));
    let back = t.step(Reach::Up, 5_000).expect("back");
    assert_eq!(
        (back.from, back.after_ms, back.comeback),
        (Reach::Down, 3_100, true)
    );
    assert_eq!((t.state, t.since_ms, t.ever_up), (Reach::Up, 5_000, true));
}

#[test]
fn the_view_folds_every_cores_links_and_counts_the_majority() {
    let urls = ["http://a:1", "http://b:1", "http://c:1"]
        .map(String::from)
        .to_vec();
    let health = Health::new(7, urls, 0, 2, 2);
    assert!(!health.has_majority());
    assert_eq!(
        health.reach_row(),
        vec![Reach::SelfNode, Reach::Down, Reach::Down]
    );
    // One core's link to b is up: b is up, and with this node that is a majority.
    assert_eq!(health.node_ids(), vec![Some(7), None, None]);
    health.slot(1, 1).link_up(9);
    health.slot(0, 1).heartbeat(Duration::from_micros(250), -7);
    health.tick();
    assert_eq!(
        health.reach_row(),
        vec![Reach::SelfNode, Reach::Up, Reach::Down]
    );
    assert!(health.has_majority());
    assert_eq!(health.node_ids(), vec![Some(7), Some(9), None]);
    let b = health.peer(1).expect("b");
    assert_eq!((b.rtt_us, b.wall_offset_ms), (Some(250), Some(-7)));
    assert!(b.state_since_unix_ms >= health.since_unix_ms(0));
    // Its link breaks: suspect at once, and the majority is lost at once.
    health.slot(1, 1).link_down();
    health.tick();
    assert_eq!(health.peer(1).expect("b").state, Reach::Suspect);
    assert!(!health.has_majority());
    assert_eq!(health.peer(0), None);
}

#[test]
fn a_single_node_is_its_own_majority() {
    let health = Health::new(7, vec!["http://a:1".to_string()], 0, 1, 4);
    assert!(health.has_majority());
    health.tick();
    assert!(health.has_majority());
    assert_eq!(health.reach_row(), vec![Reach::SelfNode]);
}

#[test]
fn reach_codes_round_trip() {
    for r in [Reach::SelfNode, Reach::Up, Reach::Suspect, Reach::Down] {
        assert_eq!(Reach::from_code(r.code()), Some(r));
    }
    assert_eq!(Reach::from_code(4), None);
}
