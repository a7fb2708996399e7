//! Listers beside a recorded run's clients (DESIGN §11): each lists a range of the clients' keys
//! page by page through `GET /mostdb/list`, with a small `limit` so that pages are cut and
//! cursors followed, through any node, or as the run's [`Focus`] says while a fault's node is
//! of interest ([`Attend`]): through it (its page, which lacks what it missed, meets
//! another's), or around it (through the others, whose pages meet its own: values only it
//! holds). What the pages
//! showed becomes reads in the keys' histories, checked for linearizability with every other
//! op:
//!
//! * an item (K, V) is a get of K that returned V, over its page's call and return;
//! * a key of the history inside the range that no page of the pass listed is a get that found
//!   it absent, over the pages that may have covered it. A page covers the range from just
//!   after the previous page's cursor to its own cursor (to the range's end when it says there
//!   is no more), so a key between two items, or before the first, lies in a page from the one
//!   of the item before it to the one of the item after it (the cursor stays opaque). After
//!   the last item, only a pass whose last page said "no more" claims anything.
//!
//! That is the listing's promise (each item is what a linearizable get could have returned
//! during its page; every set or del completed before the page began is reflected), checked
//! as reads. A page that no node answers ends its pass early.
//!
//! Must not import the `mostdb` library.

use std::collections::{BTreeSet, HashMap};
use std::ops::{Bound, RangeInclusive};
use std::time::Duration;

use super::history::{KvOp, Outcome, Rec, Rng};
use super::kv::{KvClient, Reply, ReplyClass, REPLY_CLASSES};
use super::recorded::Run;

/// Nodes a lister tries for one page before it gives the pass up.
pub const LIST_ATTEMPTS_MAX: usize = 3;
/// Pause of a lister after a page that no node answered.
pub const LIST_FAILED_BACKOFF_MS: u64 = 50;
/// Pages one pass follows at most (a listing that never ends is a problem, not a hang).
pub const LIST_PAGES_PER_PASS_MAX: usize = 1_000;
/// Keys left uncertain by indeterminate writes a lister lists before each pass, at most.
pub const LIST_SUSPECTS_PER_TURN: usize = 8;
/// Times a lister lists each such key through each node it goes through: a value only one
/// replica holds shows through a node whose merge took that replica's page, and the older
/// value through one that took another's, in either order.
pub const LIST_SUSPECT_ROUNDS: usize = 3;
/// Such keys a lister keeps to list again when a new focus begins, at most.
pub const LIST_SUSPECTS_AGAIN_MAX: usize = 32;
/// Problems [`list_reads`] reports one by one (the rest are counted).
pub const LIST_PROBLEMS_LISTED_MAX: usize = 10;

/// What a lister lists and when; the closures read the run's state.
pub struct ListPlan<'a> {
    /// The ranges of the passes, in turn, each as it is when a pass starts: from the first
    /// key (included) to the second (excluded). After a fault, the first is listed first.
    pub ranges: &'a [&'a (dyn Fn() -> (String, String) + Sync)],
    /// The node of a fault while it is of interest, and how to list ([`Focus`]). A new event
    /// ends the pass under way; the next ones go as it says.
    pub focus: FocusNow<'a>,
    /// Page limits, one drawn per pass.
    pub limits: RangeInclusive<usize>,
    /// Pause between passes.
    pub pause: Duration,
    pub seed: u64,
}

/// A fault's node the listers attend to for a while: `id` names the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Focus {
    pub id: u64,
    pub node: usize,
    pub how: Attend,
}

/// How the listers attend to a focus node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attend {
    /// Every pass through it: it lacks what the others hold, and its merge meets their pages.
    Through,
    /// The passes over ranges through the others (whose merges would repair it while it
    /// misses writes); single keys through every node.
    Around,
    /// Every pass through the others: it cannot list (it cannot send), but it holds values
    /// the others lack, and their merges meet its page.
    Without,
}

/// The focus now.
pub type FocusNow<'a> = &'a (dyn Fn() -> Option<Focus> + Sync);

/// One page as a lister got it, and the node that answered it.
#[derive(Clone, Debug)]
pub struct PageSeen {
    pub call_ns: u64,
    pub ret_ns: u64,
    pub node: usize,
    pub items: Vec<(String, String)>,
}

/// One pass over `start..end` (the first page from `start`, each next one from the previous
/// page's cursor), `limit` items a page. `whole`: its last page said there is no more.
#[derive(Clone, Debug)]
pub struct Pass {
    pub pid: u64,
    pub start: String,
    pub end: String,
    pub limit: usize,
    pub pages: Vec<PageSeen>,
    pub whole: bool,
}

/// What one lister did: its passes, every page request's answer by class, the answers that
/// made no sense.
#[derive(Default)]
pub struct ListerOut {
    pub passes: Vec<Pass>,
    pub classes: [u64; REPLY_CLASSES],
    pub unexpected: Vec<String>,
}

/// Lister `me`: passes until the run stops. Before each, it lists every key an indeterminate
/// write left uncertain ([`Run::suspect`]), a few at a time, through each node in turn (but
/// one that cannot list, [`Attend::Without`]), [`LIST_SUSPECT_ROUNDS`] times: a value only some replicas hold must not show through one
/// node and not through the next. It lists them again when a new focus begins: the value may
/// have stayed on a node alone while it could not send, and show through it now.
pub fn list_loop(me: usize, run: &Run, plan: &ListPlan) -> ListerOut {
    let mut kv = run.client();
    let mut rng = Rng(plan.seed ^ (me as u64 + 1).wrapping_mul(0x9FB2_1C65_1E98_DF25));
    let mut out = ListerOut::default();
    let (pid, n) = (run.new_pid(), run.addrs.len());
    let (mut turn, mut last_event) = (0, None);
    let mut again: Vec<String> = Vec::new();
    while !run.stopped() {
        for key in (0..LIST_SUSPECTS_PER_TURN).map_while(|_| run.take_suspect()) {
            let without = (plan.focus)().filter(|f| f.how == Attend::Without);
            let avoid = without.map(|f| f.node);
            list_key(run, (pid, &mut rng, avoid), &key, &mut kv, &mut out);
            if again.len() < LIST_SUSPECTS_AGAIN_MAX {
                again.push(key);
            }
        }
        let focus = (plan.focus)();
        if focus.is_some() && focus.map(|f| f.id) != last_event {
            (turn, last_event) = (0, focus.map(|f| f.id));
            let avoid = focus.filter(|f| f.how == Attend::Without).map(|f| f.node);
            for key in std::mem::take(&mut again) {
                list_key(run, (pid, &mut rng, avoid), &key, &mut kv, &mut out);
            }
        }
        let range = (plan.ranges[turn % plan.ranges.len()])();
        turn += 1;
        let limit = *plan.limits.start() + rng.below(plan.limits.clone().count() as u64) as usize;
        let how = How {
            pid,
            limit,
            first: rng.below(n as u64) as usize,
            through: focus.filter(|f| f.how == Attend::Through).map(|f| f.node),
            avoid: focus.filter(|f| f.how != Attend::Through).map(|f| f.node),
            interrupt: Some((focus.map(|f| f.id), plan.focus)),
        };
        let (pass, failed) = one_pass(run, &how, range, &mut kv, &mut out);
        let interrupted = !pass.whole && !failed;
        out.passes.push(pass);
        if failed {
            std::thread::sleep(Duration::from_millis(LIST_FAILED_BACKOFF_MS));
        } else if !interrupted && focus.is_none() {
            std::thread::sleep(plan.pause);
        }
    }
    out
}

/// Lists `key` alone through each node but `avoid`, from a random one, in
/// [`LIST_SUSPECT_ROUNDS`] rounds (pages of one item, each pass to its end).
fn list_key(
    run: &Run,
    (pid, rng, avoid): (u64, &mut Rng, Option<usize>),
    key: &str,
    kv: &mut KvClient,
    out: &mut ListerOut,
) {
    let n = run.addrs.len();
    let first = rng.below(n as u64) as usize;
    let nodes = (first..first + n * LIST_SUSPECT_ROUNDS).map(|i| i % n);
    for node in nodes.filter(|&i| Some(i) != avoid) {
        let how = How::through(pid, 1, node);
        let range = (key.to_string(), format!("{key}!"));
        let (pass, _) = one_pass(run, &how, range, kv, out);
        out.passes.push(pass);
    }
}

/// The final listing, after the run and before the final reads: a pass over each of `ranges`
/// through each node, `limit` items a page. A value only one replica holds (an indeterminate
/// write's, among the last ones) shows here if the listing takes it as it is, and the final
/// reads may then read the older value a majority holds.
pub fn final_passes(run: &Run, ranges: &[(String, String)], limit: usize) -> ListerOut {
    let (mut kv, mut out, pid) = (run.client(), ListerOut::default(), run.new_pid());
    for node in 0..run.addrs.len() {
        for range in ranges {
            let how = How::through(pid, limit, node);
            let (pass, _) = one_pass(run, &how, range.clone(), &mut kv, &mut out);
            out.passes.push(pass);
        }
    }
    out
}

/// How one pass goes: its process id and page limit, and the node every page goes through
/// first, or else the node of its first page (the next go through the next nodes, but
/// `avoid`).
struct How<'a> {
    pid: u64,
    limit: usize,
    first: usize,
    through: Option<usize>,
    avoid: Option<usize>,
    /// While the run goes on: the focus event the pass started under, and the focus now (a
    /// new event, or the run's end, ends the pass).
    interrupt: Option<(Option<u64>, FocusNow<'a>)>,
}

impl How<'_> {
    /// A pass through `node`, to its end whether or not the run goes on.
    fn through(pid: u64, limit: usize, node: usize) -> How<'static> {
        let (first, through, avoid, interrupt) = (node, Some(node), None, None);
        How {
            pid,
            limit,
            first,
            through,
            avoid,
            interrupt,
        }
    }
}

/// One pass over `start..end` as `how` says; `true` with it if a page got no answer from any
/// node.
fn one_pass(
    run: &Run,
    how: &How,
    (start, end): (String, String),
    kv: &mut KvClient,
    out: &mut ListerOut,
) -> (Pass, bool) {
    let mut pass = Pass {
        pid: how.pid,
        start,
        end,
        limit: how.limit,
        pages: Vec::new(),
        whole: false,
    };
    let n = run.addrs.len();
    let mut cursor: Option<String> = None;
    while pass.pages.len() < LIST_PAGES_PER_PASS_MAX {
        if let Some((event, focus)) = how.interrupt {
            let now = focus().map(|f| f.id);
            if run.stopped() || now.is_some() && now != event {
                return (pass, false);
            }
        }
        let limit = how.limit;
        let mut query = format!("start={}&end={}&limit={limit}", pass.start, pass.end);
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let node0 = how.through.unwrap_or(how.first + pass.pages.len());
        let nodes = (node0..node0 + n).map(|i| i % n);
        let nodes: Vec<usize> = nodes.filter(|&i| Some(i) != how.avoid).collect();
        let mut page = None;
        for &node in nodes.iter().take(LIST_ATTEMPTS_MAX) {
            let call_ns = run.now_ns();
            let reply = kv.list(node, &query);
            let ret_ns = run.now_ns();
            out.classes[class(&reply) as usize] += 1;
            match reply {
                Reply::NotMost { .. } | Reply::Unavailable(_) | Reply::NotSent(_) => {}
                Reply::Lost(_) => {}
                Reply::Page { items, cursor } => {
                    page = Some((
                        PageSeen {
                            call_ns,
                            ret_ns,
                            node,
                            items,
                        },
                        cursor,
                    ));
                    break;
                }
                other => out.unexpected.push(format!("list {query}: {other:?}")),
            }
        }
        let Some((seen, next)) = page else {
            return (pass, true);
        };
        pass.pages.push(seen);
        match next {
            Some(c) => cursor = Some(c),
            None => {
                pass.whole = true;
                return (pass, false);
            }
        }
    }
    if pass.pages.len() >= LIST_PAGES_PER_PASS_MAX {
        let what = format!("{}..{}", pass.start, pass.end);
        out.unexpected.push(format!(
            "list {what}: no end after {} pages",
            pass.pages.len()
        ));
    }
    (pass, false)
}

/// A page request's answer as a class of the run's statistics.
fn class(reply: &Reply) -> ReplyClass {
    match reply {
        Reply::Page { .. } => ReplyClass::Ok,
        Reply::NotMost {
            indeterminate: false,
        } => ReplyClass::NotMost,
        Reply::NotMost {
            indeterminate: true,
        } => ReplyClass::NotMostIndeterminate,
        Reply::Unavailable(_) => ReplyClass::Unavailable,
        Reply::NotSent(_) => ReplyClass::NotSent,
        Reply::Lost(_) => ReplyClass::Lost,
        _ => ReplyClass::Unexpected,
    }
}

// ------------------------------------------------------------------------------------------------
// Pages as reads

/// What the passes came to as reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListReads {
    /// Items read as gets of their value.
    pub items: usize,
    /// Keys read as absent.
    pub absent: usize,
    /// Each read's listing in words (see [`ListReads::label`]).
    labels: HashMap<(u64, String, u64, u64), String>,
}

impl ListReads {
    /// Which listing `r` is a read of, in words, if it is one: the pass (its process, range
    /// and limit), the page or pages and the nodes they went through, and what it read.
    pub fn label(&self, r: &Rec) -> Option<&str> {
        let id = (r.pid, r.key.clone(), r.call_ns, r.ret_ns);
        self.labels.get(&id).map(String::as_str)
    }
}

/// What `r`, one of `pass`'s reads, is in words.
fn label(pass: &Pass, r: &Rec) -> String {
    let at = |t: u64, ret: bool| {
        let page = |p: &PageSeen| if ret { p.ret_ns } else { p.call_ns };
        pass.pages.iter().position(|p| page(p) == t).unwrap_or(0)
    };
    let (first, last) = (at(r.call_ns, false), at(r.ret_ns, true));
    let pages = &pass.pages[first..=last];
    let nodes: BTreeSet<usize> = pages.iter().map(|p| p.node).collect();
    let pages = if first == last {
        format!("page {first}")
    } else {
        format!("pages {first}-{last}")
    };
    let what = match &r.op {
        KvOp::Get(Some(v)) => format!("listed it as {v:?}"),
        _ => "did not list it (read as absent)".to_string(),
    };
    format!(
        "listing {}..{} (pid {}, limit {}, {} pages{}) {what} on {pages} through node {nodes:?}",
        pass.start,
        pass.end,
        pass.pid,
        pass.limit,
        pass.pages.len(),
        if pass.whole { "" } else { ", cut short" },
    )
}

/// The reads `pass` implies for the keys in `keys` (see the module doc), and what made no
/// sense: an item outside the range, or not after the item before it.
pub fn pass_reads(pass: &Pass, keys: &BTreeSet<String>) -> (Vec<Rec>, Vec<String>) {
    let read = |key: &str, value: Option<&str>, pages: (usize, usize)| Rec {
        pid: pass.pid,
        key: key.to_string(),
        op: KvOp::Get(value.map(String::from)),
        outcome: Outcome::Ok,
        call_ns: pass.pages[pages.0].call_ns,
        ret_ns: pass.pages[pages.1].ret_ns,
    };
    let (mut recs, mut problems) = (Vec::new(), Vec::new());
    let start = pass.start.as_str();
    // The last item so far (the range's start before the first) and its page.
    let mut before: (Bound<&str>, usize) = (Bound::Included(start), 0);
    // Whether `key` lies after `low` (an empty range would make `BTreeSet::range` panic).
    let above = |low: Bound<&str>, key: &str| match low {
        Bound::Included(low) => key >= low,
        Bound::Excluded(low) => key > low,
        Bound::Unbounded => true,
    };
    let absent = |low: Bound<&str>, high: &str, pages: (usize, usize), recs: &mut Vec<Rec>| {
        if above(low, high) {
            let keys = keys.range::<str, _>((low, Bound::Excluded(high)));
            recs.extend(keys.map(|key| read(key, None, pages)));
        }
    };
    for (p, page) in pass.pages.iter().enumerate() {
        for (key, value) in &page.items {
            if !above(before.0, key) || key.as_str() >= pass.end.as_str() {
                let listed: Vec<&str> = page.items.iter().map(|i| i.0.as_str()).collect();
                problems.push(format!(
                    "list {}..{}: page {p} listed {key} after {:?} (its page: {listed:?})",
                    pass.start, pass.end, before.0
                ));
                continue;
            }
            absent(before.0, key, (before.1, p), &mut recs);
            recs.push(read(key, Some(value), (p, p)));
            before = (Bound::Excluded(key.as_str()), p);
        }
    }
    if pass.whole {
        let last = pass.pages.len() - 1;
        absent(before.0, &pass.end, (before.1, last), &mut recs);
    }
    (recs, problems)
}

/// The reads of every pass of `listers`, added to `recs` (whose keys are the ones a pass may
/// find absent); returns what they came to and the problems.
pub fn list_reads(listers: &[ListerOut], recs: &mut Vec<Rec>) -> (ListReads, Vec<String>) {
    let keys: BTreeSet<String> = recs.iter().map(|r| r.key.clone()).collect();
    let mut reads = ListReads::default();
    let mut problems: Vec<String> = Vec::new();
    for pass in listers.iter().flat_map(|l| &l.passes) {
        let (got, odd) = pass_reads(pass, &keys);
        for r in &got {
            match r.op {
                KvOp::Get(Some(_)) => reads.items += 1,
                _ => reads.absent += 1,
            }
            let id = (r.pid, r.key.clone(), r.call_ns, r.ret_ns);
            reads.labels.insert(id, label(pass, r));
        }
        recs.extend(got);
        problems.extend(odd);
    }
    for l in listers {
        problems.extend(
            l.unexpected
                .iter()
                .map(|u| format!("unexpected answer: {u}")),
        );
    }
    let n = problems.len();
    problems.truncate(LIST_PROBLEMS_LISTED_MAX);
    if n > LIST_PROBLEMS_LISTED_MAX {
        problems.push(format!(
            "listing: … and {} more problems",
            n - LIST_PROBLEMS_LISTED_MAX
        ));
    }
    (reads, problems)
}

/// A line of what the listers did: passes, pages, answers by share, reads checked.
pub fn print_listers(listers: &[ListerOut], reads: &ListReads) {
    let passes: Vec<&Pass> = listers.iter().flat_map(|l| &l.passes).collect();
    let whole = passes.iter().filter(|p| p.whole).count();
    let pages: usize = passes.iter().map(|p| p.pages.len()).sum();
    let mut c = [0u64; REPLY_CLASSES];
    for l in listers {
        for (a, b) in c.iter_mut().zip(l.classes) {
            *a += b;
        }
    }
    let n: u64 = c.iter().sum();
    let pct = |classes: &[ReplyClass]| {
        let k: u64 = classes.iter().map(|&x| c[x as usize]).sum();
        100.0 * k as f64 / n.max(1) as f64
    };
    use ReplyClass::*;
    println!(
        "listers: {} passes ({whole} to the end), {pages} pages; page requests {n}: ok {:.2} %, \
         NotMost {:.2} %, busy/not ready {:.2} %, not sent {:.2} %, lost {:.2} %, unexpected \
         {:.2} %; read {} items and {} absent keys",
        passes.len(),
        pct(&[Ok]),
        pct(&[NotMost, NotMostIndeterminate]),
        pct(&[Unavailable]),
        pct(&[NotSent]),
        pct(&[Lost]),
        pct(&[Unexpected]),
        reads.items,
        reads.absent,
    );
}
