//! The merge of a majority listing (DESIGN §11), pure: Q replicas' pages of one key range
//! (each in key order, tombstones included) become one page of entries, each marked agreed
//! (every page holds it at the same version) or not (a read of the key must settle it).
//!
//! The page rule: a replica whose page stopped early covered the range only up to its last
//! key; beyond the smallest such key another replica's entries cannot be compared with it (it
//! may hold a newer version, or a tombstone, there), so the merged page ends there. A larger
//! cut could skip a key only that replica held (its next page would have shown it). The rule
//! matters only for a page cut by its byte budget: one cut by the limit holds `limit` keys at
//! or before its last, so the merged page is full before any cut applies.
//!
//! Must not import `http` or `api`.

use std::collections::BTreeMap;

/// The range types, as the API reaches them (it reaches storage only through here).
pub use crate::storage::range::{KeyRange, RangeEntry, RangePage};

/// One key of a merged page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The highest version any page held for the key, with its value (`tombstone`: deleted).
    pub entry: RangeEntry,
    /// Every page held exactly that version: the key reads as it is (a majority holds it).
    pub agreed: bool,
}

/// A merged page: its entries in key order, and where the next page starts (`None`: the
/// range ends after them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergedPage {
    pub entries: Vec<Merged>,
    pub resume_after: Option<Vec<u8>>,
}

/// Merges `pages` (one per replica that answered) into at most `limit` entries.
pub fn merge(pages: &[RangePage], limit: usize) -> MergedPage {
    let cut = page_cut(pages);
    let mut keys: BTreeMap<&[u8], (&RangeEntry, usize, bool)> = BTreeMap::new();
    for page in pages {
        for entry in &page.entries {
            if cut.is_some_and(|cut| entry.key.as_slice() > cut) {
                break;
            }
            let slot = keys.entry(&entry.key).or_insert((entry, 0, true));
            if entry.version != slot.0.version {
                slot.2 = false;
                if entry.version > slot.0.version {
                    slot.0 = entry;
                }
            }
            slot.1 += 1;
        }
    }
    let mut merged = MergedPage::default();
    for (key, (entry, holders, same)) in keys {
        if merged.entries.len() >= limit {
            break;
        }
        merged.entries.push(Merged {
            entry: entry.clone(),
            agreed: agreed(same, holders, pages.len()),
        });
        merged.resume_after = Some(key.to_vec());
    }
    let truncated = merged.entries.len() >= limit;
    match cut {
        // The pages cover more than was returned: go on after the last entry.
        _ if truncated => {}
        Some(cut) => merged.resume_after = Some(cut.to_vec()),
        None => merged.resume_after = None,
    }
    merged
}

/// The page rule: entries up to the smallest last key of a page that stopped early.
#[cfg(not(feature = "planted-list-cut-largest"))]
fn page_cut(pages: &[RangePage]) -> Option<&[u8]> {
    pages
        .iter()
        .filter(|p| !p.complete)
        .filter_map(|p| p.entries.last().map(|e| e.key.as_slice()))
        .min()
}

/// The planted bug: the page ends at the largest last key, so keys beyond a page that stopped
/// early, which only that replica's next page would show, are skipped.
#[cfg(feature = "planted-list-cut-largest")]
fn page_cut(pages: &[RangePage]) -> Option<&[u8]> {
    let incomplete = pages.iter().any(|p| !p.complete);
    let last = pages
        .iter()
        .filter_map(|p| p.entries.last().map(|e| e.key.as_slice()))
        .max();
    last.filter(|_| incomplete)
}

/// Whether a key reads as the pages show it: every page holds it, at one version.
#[cfg(not(feature = "planted-list-no-settle"))]
fn agreed(same: bool, holders: usize, pages: usize) -> bool {
    same && holders == pages
}

/// The planted bug: the highest version is taken as it is, never settled by a read (so a
/// version only a minority holds, never acknowledged, can be listed, and no repair happens).
#[cfg(feature = "planted-list-no-settle")]
fn agreed(_same: bool, _holders: usize, _pages: usize) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Meta, Version};

    fn e(key: &str, hlc: u64, value: Option<&str>) -> RangeEntry {
        RangeEntry {
            key: key.as_bytes().to_vec(),
            version: Version { hlc, origin: 2 },
            value: value.map(|v| v.as_bytes().to_vec()),
            meta: Meta::BLIND,
            tombstone: value.is_none(),
        }
    }

    fn page(entries: Vec<RangeEntry>, complete: bool) -> RangePage {
        RangePage { entries, complete }
    }

    fn shown(m: &MergedPage) -> Vec<(String, u64, bool)> {
        m.entries
            .iter()
            .map(|m| {
                let key = String::from_utf8_lossy(&m.entry.key).into_owned();
                (key, m.entry.version.hlc, m.agreed)
            })
            .collect()
    }

    #[cfg(not(feature = "planted-list-no-settle"))]
    #[test]
    fn equal_pages_agree_and_differences_take_the_highest_version() {
        let a = page(vec![e("a", 1, Some("x")), e("b", 5, Some("new"))], true);
        let b = page(vec![e("a", 1, Some("x")), e("b", 3, Some("old"))], true);
        let m = merge(&[a, b], 100);
        assert_eq!(shown(&m), [("a".into(), 1, true), ("b".into(), 5, false)]);
        assert_eq!(m.entries[1].entry.value.as_deref(), Some(&b"new"[..]));
        assert_eq!(m.resume_after, None, "every page reached the end");
    }

    #[cfg(not(feature = "planted-list-no-settle"))]
    #[test]
    fn a_key_one_replica_lacks_is_not_agreed() {
        let a = page(vec![e("a", 1, Some("x")), e("c", 2, Some("y"))], true);
        let b = page(vec![e("c", 2, Some("y"))], true);
        assert_eq!(
            shown(&merge(&[a, b], 100)),
            [("a".into(), 1, false), ("c".into(), 2, true)]
        );
    }

    #[cfg(not(feature = "planted-list-no-settle"))]
    #[test]
    fn a_replica_holding_only_a_tombstone_wins_over_an_older_value() {
        let a = page(vec![e("k", 4, Some("v"))], true);
        let b = page(vec![e("k", 6, None)], true);
        let m = merge(&[a, b], 100);
        assert_eq!(shown(&m), [("k".into(), 6, false)]);
        assert!(m.entries[0].entry.tombstone);
    }

    #[cfg(not(feature = "planted-list-cut-largest"))]
    #[test]
    fn the_page_ends_at_the_smallest_last_key_of_a_page_cut_early() {
        // Replica a stopped after "c": what it holds beyond is unknown, so "d" and "e" from
        // b may be stale there (a deleted "d" would come back).
        let a = page(vec![e("a", 1, Some("1")), e("c", 1, Some("3"))], false);
        let b = page(
            vec![
                e("a", 1, Some("1")),
                e("b", 1, Some("2")),
                e("c", 1, Some("3")),
                e("d", 1, Some("4")),
                e("e", 1, Some("5")),
            ],
            true,
        );
        let m = merge(&[a, b], 100);
        assert_eq!(
            shown(&m),
            [
                ("a".into(), 1, true),
                ("b".into(), 1, false),
                ("c".into(), 1, true)
            ]
        );
        assert_eq!(m.resume_after.as_deref(), Some(&b"c"[..]));
    }

    #[test]
    fn more_keys_than_the_limit_resume_after_the_last_one_returned() {
        let a = page(vec![e("a", 1, Some("1")), e("c", 1, Some("3"))], true);
        let b = page(vec![e("b", 1, Some("2")), e("d", 1, Some("4"))], true);
        let m = merge(&[a, b], 3);
        assert_eq!(m.entries.len(), 3);
        assert_eq!(m.resume_after.as_deref(), Some(&b"c"[..]));
    }
}
