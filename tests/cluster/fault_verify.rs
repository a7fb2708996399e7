//! The fault test's report and its verdict: the schedule and per-phase figures, every
//! assertion on a finished run, and the explanation of a key a listing made
//! non-linearizable. A child of `fault.rs` (it reads that file's items).

use super::*;

pub(super) fn report_run(events: &[Event], stats: &Stats) {
    println!("nemesis schedule:");
    for e in events {
        let node = if e.node == usize::MAX {
            "-".to_string()
        } else {
            e.node.to_string()
        };
        println!(
            "  {:>7.1} s – {:>7.1} s  {:<12} node {node}",
            e.start_ms as f64 / 1e3,
            e.end_ms as f64 / 1e3,
            e.phase.name()
        );
    }
    let rows: Vec<(&str, &PhaseStats)> = PHASES
        .iter()
        .map(|p| (p.name(), &stats[*p as usize]))
        .collect();
    print_stats(&rows);
    let faults = [Phase::Kill, Phase::Pause, Phase::Partition];
    let cas = |phases: &[Phase]| {
        phases
            .iter()
            .map(|p| &stats[*p as usize])
            .collect::<Vec<_>>()
    };
    print_cas_answers("in all phases", &cas(&PHASES[..Phase::Final as usize]));
    print_cas_answers("under faults", &cas(&faults));
}

/// Every assertion on a finished run; returns what failed.
pub(super) fn verify(recs: &[Rec], finals: &[Rec], stats: &Stats, list: &ListReads) -> Vec<String> {
    let mut problems = Vec::new();
    let mut total = PhaseStats::default();
    for s in &stats[..Phase::Final as usize] {
        total.add(s);
    }
    let share = total.ops_ok as f64 / total.ops.max(1) as f64;
    if share < SUCCESS_SHARE_MIN {
        problems.push(format!(
            "only {:.2} % of {} operations succeeded (want ≥ {:.0} %)",
            100.0 * share,
            total.ops,
            100.0 * SUCCESS_SHARE_MIN
        ));
    }
    problems.extend(nemeses_took_effect(stats));
    let mut all: Vec<Rec> = recs.to_vec();
    all.extend(finals.iter().cloned());
    for (key, value, pid, call) in visible_failures(&all) {
        problems.push(format!(
            "key {key}: value {value} of a definitely failed write was observed (pid {pid} at {:.3} ms)",
            call as f64 / 1e6
        ));
    }
    let budget = Duration::from_millis(CHECK_BUDGET_PER_KEY_MS);
    let explain = |key: &str, ops: &[&Rec]| explain_listing(key, ops, list, budget);
    problems.extend(history::check_all_explained(
        &all,
        recs,
        budget,
        Duration::from_millis(CHECK_BUDGET_TOTAL_MS),
        &explain,
    ));
    problems
}

/// For a key a listing made non-linearizable: the first listing read that the rest of the
/// history cannot explain, which listing it was, and what the history allows there.
fn explain_listing(key: &str, ops: &[&Rec], list: &ListReads, budget: Duration) -> Option<String> {
    let listed = |r: &Rec| list.label(r).is_some();
    let (read, allowed) = history::first_breaking_read(key, ops, &listed, budget)?;
    let allowed: Vec<String> = allowed
        .iter()
        .map(|v| v.as_ref().map_or("absent".into(), |v| format!("{v:?}")))
        .collect();
    let allowed = match allowed.len() {
        0 => "nothing".to_string(),
        _ => allowed.join(" or "),
    };
    Some(format!(
        "{} at {:.3}–{:.3} ms; with every other op (and the listings before it) a read there \
         could only have found: {allowed}",
        list.label(read)?,
        read.call_ns as f64 / 1e6,
        read.ret_ns as f64 / 1e6,
    ))
}

/// The faults must have been felt, or the run proves nothing about them.
fn nemeses_took_effect(stats: &Stats) -> Vec<String> {
    let mut problems = Vec::new();
    let kill = &stats[Phase::Kill as usize];
    if kill.ops > 0 && kill.n(ReplyClass::NotSent) == 0 {
        problems.push("kill -9: no request was refused by the dead node".to_string());
    }
    let pause = &stats[Phase::Pause as usize];
    if pause.ops > 0 && pause.latency_max_ns < NODE_TIMEOUT_MS * 1_000_000 {
        problems.push("SIGSTOP: no request waited out the pause".to_string());
    }
    let part = &stats[Phase::Partition as usize];
    if part.ops > 0 && part.n(ReplyClass::NotMost) + part.n(ReplyClass::NotMostIndeterminate) == 0 {
        problems.push("partition: the isolated node never answered NotMost".to_string());
    }
    if stats[Phase::Quiet as usize].ops_ok == 0 {
        problems.push("no operation succeeded in the quiet periods".to_string());
    }
    problems
}
