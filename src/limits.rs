//! Every bound of the server, as a named constant with its unit last. Nothing here imports
//! anything; relations between bounds are asserted at compile time at the bottom.

/// Largest request head (request line plus headers); larger gets 431 and the connection closes.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Most headers in one request head; more gets 431.
pub const HEADERS_MAX: usize = 64;
/// Default for `MOSTDB_MAX_VALUE_BYTES`: the original takes 10 MiB values.
pub const VALUE_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Smallest `MOSTDB_MAX_VALUE_BYTES` accepted: below this a typo (`16` for `16MiB`) is likelier than intent.
pub const VALUE_BYTES_MAX_LOWEST: usize = 1024;
/// Largest `MOSTDB_MAX_VALUE_BYTES` accepted: a whole value sits in memory, several times over, per request.
pub const VALUE_BYTES_MAX_HIGHEST: usize = 512 * 1024 * 1024;
/// Largest value a peer frame may carry: fixed at the highest `MOSTDB_MAX_VALUE_BYTES` any
/// node may set, so that a node's own limit (raised or lowered at runtime, different from node
/// to node) bounds only what its clients submit and never what its peers may replicate to it.
/// Frames come only from peers that proved the cluster secret, and a reader grows its buffer
/// towards a frame's declared length as the bytes arrive, not on the length prefix's word.
pub const PEER_VALUE_BYTES_MAX: usize = VALUE_BYTES_MAX_HIGHEST;
/// Room in a body beyond the value itself: the key, the JSON punctuation, escapes.
pub const BODY_OVERHEAD_BYTES: usize = 1024 * 1024;
/// Longest time to live a write may ask for (`ttl_ms`): ten years.
pub const TTL_MS_MAX: u64 = 10 * 365 * 24 * 3_600 * 1_000;
/// Largest key, in bytes of UTF-8 (fjall takes at most 65,536).
pub const KEY_BYTES_MAX: usize = 8 * 1024;
/// Initial capacity of a connection's read buffer.
pub const CONN_READ_BUFFER_BYTES: usize = 16 * 1024;
/// A read buffer larger than this is given back after the request that needed it.
pub const CONN_READ_BUFFER_KEEP_BYTES: usize = 256 * 1024;
/// Responses of one batch of pipelined requests are written at the latest at this size.
pub const CONN_WRITE_BUFFER_FLUSH_BYTES: usize = 256 * 1024;
/// Most pipelined requests answered from one read before the answers are written.
pub const PIPELINE_REQUESTS_MAX: usize = 256;
/// A keep-alive connection with no request for this long is closed.
pub const IDLE_TIMEOUT_MS: u64 = 60_000;
/// A request must arrive completely within this long of its first byte (slow clients).
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Writing one batch of answers must finish within this long (a client that stops reading).
pub const WRITE_TIMEOUT_MS: u64 = 30_000;
/// Default of `MOSTDB_MAX_CONNECTIONS`: client connections open at once per node; at the cap
/// the accepting core closes its longest-idle connection, else the new one is closed at once.
pub const CONNECTIONS_MAX_DEFAULT: usize = 16_384;
/// Default of `MOSTDB_MAX_CONNECTIONS_PER_SOURCE`: client connections open at once from one
/// IP address, well below the node-wide cap so one client cannot lock the others out.
pub const CONNECTIONS_PER_SOURCE_MAX_DEFAULT: usize = 1_024;
/// How often the memory watcher looks at the number of open connections.
pub const TRIM_CHECK_INTERVAL_MS: u64 = 1_000;
/// Free memory is given back to the system once this many connections have closed since
/// the peak (a storm is over).
pub const TRIM_CONNECTIONS_DROP: usize = 512;
/// A refused connection is logged at most this often (per kind of refusal and core).
pub const CONNECTION_REFUSAL_LOG_INTERVAL_MS: u64 = 60_000;
/// On SIGTERM/SIGINT, in-flight requests get this long to finish.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// At start, a port still in use is retried for this long before the node gives up: right
/// after a kill -9 the dead process's io_uring holds its listener for a few tens of ms.
pub const PORT_IN_USE_RETRY_MS: u64 = 3_000;
/// Pause between two tries of a port in use.
pub const PORT_IN_USE_POLL_MS: u64 = 20;
/// Jobs queued for one core by the others; senders wait when it is full.
pub const CORE_INBOX_JOBS_MAX: usize = 4_096;
/// How long a sender waits before it tries a full core inbox again.
pub const CORE_INBOX_FULL_POLL_US: u64 = 100;
/// Most threads (cores) a node runs; the core number lives in the low 8 bits of a version's origin.
pub const THREADS_MAX: usize = 256;
/// Machines of up to this many cores run one event loop by default (`config::threads_for`).
pub const SMALL_MACHINE_CORES: usize = 2;
/// Most shards a data directory may be created with.
pub const SHARDS_MAX: u32 = 256;

const _: () = assert!(HEAD_BYTES_MAX >= 1024);
const _: () = assert!(CONNECTIONS_PER_SOURCE_MAX_DEFAULT * 8 <= CONNECTIONS_MAX_DEFAULT);
const _: () = assert!(PORT_IN_USE_POLL_MS < PORT_IN_USE_RETRY_MS);
const _: () = assert!(CONN_READ_BUFFER_BYTES <= CONN_READ_BUFFER_KEEP_BYTES);
const _: () = assert!(KEY_BYTES_MAX <= 65_536);
const _: () = assert!(THREADS_MAX <= 256);
const _: () = assert!(VALUE_BYTES_MAX_LOWEST <= VALUE_BYTES_MAX_DEFAULT);
const _: () = assert!(VALUE_BYTES_MAX_DEFAULT <= VALUE_BYTES_MAX_HIGHEST);

// --- storage (src/storage) ---

/// Memtable size of a shard's keyspace before it is sealed and flushed (fjall's default is
/// 64 MiB; with one database per shard and several shards per node, smaller keeps memory
/// and journal replay bounded).
pub const SHARD_MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;
/// Block cache of each shard's database (fjall's cache is per database).
pub const SHARD_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// A write waits (asynchronously) while its shard has at least this many sealed memtables
/// queued for flush; fjall itself `thread::sleep`s the writer at 4, which would block the loop.
pub const SHARD_SEALED_MEMTABLES_MAX: usize = 2;
/// A write waits (asynchronously) while its shard has at least this many L0 tables; fjall
/// stalls the writer at 20 L0 runs and halts it at 30.
pub const SHARD_L0_TABLES_MAX: usize = 16;
/// How long a waiting write sleeps between looks at the flush backlog.
pub const SHARD_STALL_POLL_MS: u64 = 5;
/// A write that has waited this long in total for the flush backlog fails with `Busy`.
pub const SHARD_STALL_WAIT_MS_MAX: u64 = 10_000;

/// Default of `MOSTDB_DISK_RESERVE_BYTES`: free space on the store's volume below which writes
/// are refused (beyond the bytes still in memtables, which are counted on top). Small enough
/// that a 64 MiB volume stays usable; raise it on big stores, where a compaction rewrites
/// tables of up to several times the memtable size before it frees the old ones.
pub const DISK_RESERVE_BYTES_DEFAULT: u64 = 16 * 1024 * 1024;
/// How often each shard's active journal is handed to the kernel's writeback under
/// `MOSTDB_SYNC=os` (`storage::writeback`): the fsync fjall makes before a flush, holding the
/// journal's lock against inserts, then waits for about this long's writes at most.
pub const JOURNAL_WRITEBACK_INTERVAL_MS: u64 = 10;
/// How often, at most, a shard's directory is looked through for a newer journal (once the
/// one held stopped growing).
pub const JOURNAL_RESCAN_MS: u64 = 200;
/// How often the store's free space is measured (one `statvfs`).
pub const DISK_CHECK_INTERVAL_MS: u64 = 50;
/// Once writes are refused for lack of space, they resume only with this much to spare above
/// the reserve, so a volume at the brim does not flap between refusing and taking writes.
pub const DISK_RESUME_MARGIN_BYTES: u64 = 4 * 1024 * 1024;
/// Bytes a record takes beyond its key and value, counted when a write asks for space.
pub const RECORD_OVERHEAD_BYTES: usize = 64;

// --- hybrid logical clock (src/replication/clock.rs) ---

/// How far ahead of the clock a persisted ceiling is placed.
pub const CLOCK_CEILING_AHEAD_MS: u64 = 2_000;
/// When the clock comes within this of its ceiling, a new ceiling is persisted in the
/// background, so issuing a version never waits for a disk write in the common case.
pub const CLOCK_CEILING_REFRESH_MS: u64 = 1_000;

const _: () = assert!(SHARD_SEALED_MEMTABLES_MAX < 4);
const _: () = assert!(SHARD_L0_TABLES_MAX < 20);
const _: () = assert!(SHARD_STALL_POLL_MS > 0 && SHARD_STALL_POLL_MS < SHARD_STALL_WAIT_MS_MAX);
const _: () = assert!(CLOCK_CEILING_REFRESH_MS < CLOCK_CEILING_AHEAD_MS);

/// Default for `MOSTDB_MAX_CLOCK_SKEW_MS`: a replica refuses a version whose physical part is
/// more than this ahead of its own clock, and no clock observes a value beyond it (DESIGN §14).
pub const MAX_CLOCK_SKEW_MS_DEFAULT: u64 = 60_000;
/// Smallest `MOSTDB_MAX_CLOCK_SKEW_MS`: below it ordinary NTP error and the clock's own lead
/// (its ceiling is written ahead, counters roll into the next ms) would refuse honest writes.
pub const MAX_CLOCK_SKEW_MS_LOWEST: u64 = 5_000;
/// Largest `MOSTDB_MAX_CLOCK_SKEW_MS`: a day; beyond that the bound protects nothing.
pub const MAX_CLOCK_SKEW_MS_HIGHEST: u64 = 86_400_000;
/// Refused versions are logged at most once per this, per node (the counter counts them all).
pub const CLOCK_REFUSAL_LOG_INTERVAL_MS: u64 = 60_000;
/// Weight of the newest wall-clock offset sample in a peer's smoothed offset, in 1/8ths (the
/// rest is the previous estimate): a few heartbeats settle it, one slow answer barely moves it.
pub const CLOCK_OFFSET_NEW_SAMPLE_EIGHTHS: i64 = 2;
/// A wall-clock offset sample further than this from the smoothed estimate replaces it: the
/// peer's clock was stepped (smoothing is for network jitter, which is far smaller).
pub const CLOCK_OFFSET_STEP_MS: u64 = 1_000;
const _: () = assert!(CLOCK_CEILING_AHEAD_MS < MAX_CLOCK_SKEW_MS_LOWEST);
const _: () = assert!(MAX_CLOCK_SKEW_MS_LOWEST <= MAX_CLOCK_SKEW_MS_DEFAULT);
const _: () = assert!(MAX_CLOCK_SKEW_MS_DEFAULT <= MAX_CLOCK_SKEW_MS_HIGHEST);
const _: () = assert!(CLOCK_OFFSET_NEW_SAMPLE_EIGHTHS > 0 && CLOCK_OFFSET_NEW_SAMPLE_EIGHTHS <= 8);

// --- http (src/http) ---

/// Initial capacity of a connection's write buffer (answers of one batch).
pub const CONN_WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// A write buffer larger than this is given back after the batch that needed it.
pub const CONN_WRITE_BUFFER_KEEP_BYTES: usize = 512 * 1024;
/// After answering with `Connection: close`, at most this much of what the client still sends
/// is read and discarded, so that closing does not reset the connection before it reads the answer.
pub const CONN_DRAIN_BYTES_MAX: usize = 256 * 1024;
/// The discarding above stops after this long.
pub const CONN_DRAIN_TIMEOUT_MS: u64 = 2_000;
/// Longest chunk-size line of a chunked body (hex size plus extensions).
pub const CHUNK_LINE_BYTES_MAX: usize = 4 * 1024;
/// Largest trailer section of a chunked body (trailers are read and ignored); more gets 431.
pub const CHUNK_TRAILER_BYTES_MAX: usize = 16 * 1024;

const _: () = assert!(CONN_WRITE_BUFFER_BYTES <= CONN_WRITE_BUFFER_KEEP_BYTES);
const _: () = assert!(CONN_WRITE_BUFFER_FLUSH_BYTES <= CONN_WRITE_BUFFER_KEEP_BYTES);
const _: () = assert!(CHUNK_LINE_BYTES_MAX >= 32);

// --- quorum protocol (src/replication/coordinator) ---

/// Most nodes in a cluster: a coordinator tracks the replicas in a 64-bit set.
pub const REPLICAS_MAX: usize = 64;
/// A write that every replica rejected is issued under a fresh version at most this many
/// times in all (the first attempt included) before it fails definitely (nothing stored).
pub const WRITE_ATTEMPTS_MAX: u32 = 8;
/// A read whose repair met a newer version is started at most this many times in all
/// before it fails (failing a read is always safe).
pub const READ_ATTEMPTS_MAX: u32 = 4;
/// PREPARE rounds of one CAS (DESIGN §10): a CAS preempted by other proposers this often ends
/// in a definite failure (contended).
pub const CAS_ATTEMPTS_MAX: u32 = 4;
/// Bound of the random pause before a CAS's second attempt; it doubles for each later one.
pub const CAS_BACKOFF_BASE_MS: u64 = 4;
/// Keys remembered as contended (a write of theirs was rejected recently); their writes
/// take the safe (2 round trip) path. Past this, the oldest is forgotten.
pub const CONTENDED_KEYS_MAX: usize = 4_096;
/// How long a key stays contended after its last rejection.
pub const CONTENDED_HOLD_MS: u64 = 2_000;

const _: () = assert!(REPLICAS_MAX <= 64);
const _: () = assert!(WRITE_ATTEMPTS_MAX >= 1 && READ_ATTEMPTS_MAX >= 1 && CAS_ATTEMPTS_MAX >= 1);
const _: () = assert!(CONTENDED_KEYS_MAX > 0 && CONTENDED_HOLD_MS > 0);

// --- request bodies (src/api/json.rs) ---

/// Deepest nesting of arrays and objects in a JSON request body (the outermost is level 1);
/// deeper gets 参数有误 with a detail before any parser sees it. The API's bodies are flat
/// objects; the JSON parsers recurse once per level on the core thread's stack, and ~18,500
/// levels overflowed a 2 MiB stack and aborted the process.
pub const JSON_DEPTH_MAX: usize = 32;
/// Entries one page of `GET {ctx}/list` holds at most, and by default (DESIGN §11).
pub const LIST_LIMIT_MAX: usize = 1_000;
pub const LIST_LIMIT_DEFAULT: usize = 100;
/// Bytes of entries one replica's page of a listing holds, about (a first entry is sent
/// whatever its size): a page fits a peer frame.
pub const LIST_PAGE_BYTES_MAX: usize = 256 * 1024;
/// Listings this node serves at once (for its own clients and for peers); beyond it a
/// client gets Busy and a peer "unavailable".
pub const LIST_SCANS_MAX: usize = 8;
/// Watches (`GET {ctx}/watch`) waiting at once on one node; beyond, Busy.
pub const WATCHERS_MAX: usize = 1_024;
/// How long a watch waits at most (`wait_ms`), and by default.
pub const WATCH_WAIT_MS_MAX: u64 = 300_000;
pub const WATCH_WAIT_MS_DEFAULT: u64 = 30_000;
/// Between two quorum reads a watch waits for its key's next store on this node, or this
/// long at most (a change a majority made without this node shows at the next read).
pub const WATCH_RECHECK_MS: u64 = 2_000;
/// The change feed of prefix watches (DESIGN §11): the entries it keeps, the key bytes they
/// hold at most, and how long it goes on recording after the last prefix watch left or a
/// cursor was issued (a client between two polls, or listing before it watches).
pub const CHANGE_FEED_ENTRIES_MAX: usize = 65_536;
pub const CHANGE_FEED_BYTES_MAX: usize = 8 * 1024 * 1024;
pub const CHANGE_FEED_LINGER_MS: u64 = 60_000;
/// Changes one prefix watch answer carries at most.
pub const PREFIX_WATCH_CHANGES_MAX: usize = 100;
/// A shard prunes watch registrations whose waiters left once it holds this many keys.
pub const WATCH_KEYS_PRUNE_AT: usize = 4_096;
/// Arguments one RESP command carries at most (the name included): `MSET` of 511 pairs,
/// `DEL` of 1,023 keys.
pub const RESP_ARGS_MAX: usize = 1_024;
/// An inline command (`PING\r\n`, as telnet sends) is one line of at most this many bytes.
pub const RESP_INLINE_BYTES_MAX: usize = 64 * 1024;
/// What one buffered RESP command may take beyond its largest bulk string (the key, the
/// other arguments, the framing).
pub const RESP_OVERHEAD_BYTES: usize = 1024 * 1024;
/// A RESP connection with nothing to do is closed after this long (client libraries
/// reconnect; Redis itself never closes one by default).
pub const RESP_IDLE_TIMEOUT_MS: u64 = 600_000;
/// `SCAN` cursors a node remembers (the oldest is forgotten beyond; a forgotten cursor
/// starts over, which SCAN's guarantees allow), and for how long.
pub const RESP_SCAN_CURSORS_MAX: usize = 4_096;
pub const RESP_SCAN_CURSOR_TTL_MS: u64 = 600_000;
/// The values one `MGET` (or `EXISTS`) may read in all: its reply is built whole in memory.
pub const RESP_REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Quorum reads one `MGET` or `EXISTS` runs at once (so at most this many values beyond the
/// reply's bound are held while the bound is checked).
pub const RESP_READS_IN_FLIGHT: usize = 16;
/// `KEYS` answers at most this many keys; beyond, an error that points to SCAN.
pub const RESP_KEYS_MAX: usize = 10_000;
/// How often a read-modify-write command (`INCR`, `SET … GET`, `EXPIRE`, …) retries its
/// compare-and-set when another writer got in between, before it answers NOTMOST contended.
pub const RESP_CAS_ATTEMPTS_MAX: usize = 16;
/// Operations one `POST {ctx}/batch` carries at most (DESIGN §11).
pub const BATCH_OPS_MAX: usize = 128;
const _: () = assert!(LIST_LIMIT_DEFAULT <= LIST_LIMIT_MAX && LIST_SCANS_MAX > 0);
const _: () = assert!(LIST_PAGE_BYTES_MAX <= ANTI_ENTROPY_REPLY_BYTES_MAX);
/// The depth scan skips string contents this many bytes at a time.
pub const JSON_SCAN_BLOCK_BYTES: usize = 32;

// At most serde_json's own recursion limit (128): both decoders then agree on every body the
// scan lets through.
const _: () = assert!(JSON_DEPTH_MAX >= 2 && JSON_DEPTH_MAX <= 128);
const _: () = assert!(JSON_SCAN_BLOCK_BYTES.is_power_of_two());

// --- core threads (src/runtime/threads.rs) ---

/// Stack of each core thread, which parses every client request and peer frame and runs every
/// handler. Chosen rather than inherited: std's default (2 MiB, or `RUST_MIN_STACK` from the
/// environment) would make the depth a body can reach depend on how the process was started.
/// Every parser's recursion is bounded (`JSON_DEPTH_MAX`; the others do not recurse), so what
/// the request path needs is fixed: a core stack's resident pages peaked at 432 KiB in a debug
/// build after start-up, 3,000 hostile requests (tests/node/hardening/fuzz_requests.rs) and a quorum
/// set and get. 8 MiB, the main thread's stack on Linux, leaves ~19× that for paths that test
/// does not reach (recovery, anti-entropy, a panic printing its backtrace). Address space
/// only: untouched pages cost no memory; `THREADS_MAX` cores reserve at most 2 GiB of it.
pub const CORE_STACK_BYTES: usize = 8 * 1024 * 1024;

const _: () = assert!(CORE_STACK_BYTES >= 2 * 1024 * 1024);
const _: () = assert!(CORE_STACK_BYTES % 4096 == 0);

// --- peer links (src/replication/peer) ---

/// Bytes of a peer frame beyond its key and value (kind, id, op, lengths, version, flags: 35
/// today), so the largest frame is `max value + KEY_BYTES_MAX + this`.
pub const PEER_FRAME_OVERHEAD_BYTES: usize = 64;
/// Requests one link has in flight (sent or queued, not yet answered); past this, a call is
/// not sent.
pub const PEER_CALLS_IN_FLIGHT_MAX: usize = 4_096;
/// Encoded bytes one link may have queued for its next write; past this, a call is not sent
/// (one call larger than this still goes out when the queue is empty).
pub const PEER_QUEUE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Requests the accepting side of one link runs at once; past this it stops reading. Above
/// `PEER_CALLS_IN_FLIGHT_MAX`, so that a well-behaved caller never meets it (calls that time
/// out free their slot while the replica may still be working on them).
pub const PEER_SERVE_IN_FLIGHT_MAX: usize = 2 * PEER_CALLS_IN_FLIGHT_MAX;
/// A link sends a heartbeat this often (the answer gives round-trip time and the peer's clock).
pub const PEER_PING_INTERVAL_MS: u64 = 300;
/// A link on which nothing arrived for this long is down: its pending calls are lost and it
/// reconnects.
pub const PEER_DOWN_AFTER_MS: u64 = 1_500;
/// The accepting side closes a link on which nothing arrived for this long (the caller pings
/// every `PEER_PING_INTERVAL_MS`).
pub const PEER_SERVE_IDLE_MS: u64 = 5_000;
/// Writing one batch of frames must finish within this long (a peer that stopped reading).
pub const PEER_WRITE_TIMEOUT_MS: u64 = 5_000;
/// First pause before dialling a peer again after a failure; it doubles per failure.
pub const PEER_BACKOFF_FIRST_MS: u64 = 50;
/// Longest pause between two dials of the same peer.
pub const PEER_BACKOFF_MAX_MS: u64 = 2_000;
/// Connecting and the upgrade handshake together must finish within this long.
pub const PEER_HANDSHAKE_TIMEOUT_MS: u64 = 2_000;
/// Largest handshake answer (head and refusal text) a dialler reads.
pub const PEER_HANDSHAKE_BYTES_MAX: usize = 8 * 1024;
/// The refusing side of a peer handshake logs each kind of refusal at warn level at most
/// this often (a misconfigured peer redials every few seconds from each core); the rest at debug.
pub const PEER_REFUSAL_LOG_INTERVAL_MS: u64 = 60_000;
/// After its `101`, the responder waits this long for the dialler's proof of the cluster
/// secret (sent at once, one round trip later); it serves nothing meanwhile, then closes.
pub const PEER_PROOF_TIMEOUT_MS: u64 = 2_000;
/// Without a cluster secret, a dial from an unknown address makes the member names be
/// resolved again at most this often (so a member with a new address gets in).
pub const PEER_ADDRESS_RESOLVE_INTERVAL_MS: u64 = 1_000;
/// How long such a dial waits for that resolution before it is refused.
pub const PEER_ADDRESS_RESOLVE_WAIT_MS: u64 = 1_000;
/// Addresses kept per member name (a name may resolve to many).
pub const PEER_MEMBER_ADDRESSES_MAX: usize = 64;
/// Initial capacity of a link's read and write buffers.
pub const PEER_BUFFER_BYTES: usize = 64 * 1024;
/// A link buffer larger than this is given back once the frame that needed it is done.
pub const PEER_BUFFER_KEEP_BYTES: usize = 1024 * 1024;

const _: () = assert!(PEER_FRAME_OVERHEAD_BYTES >= 35);
const _: () = assert!(
    (VALUE_BYTES_MAX_HIGHEST + KEY_BYTES_MAX + PEER_FRAME_OVERHEAD_BYTES) as u64 <= u32::MAX as u64
);
const _: () = assert!(PEER_SERVE_IN_FLIGHT_MAX >= PEER_CALLS_IN_FLIGHT_MAX);
const _: () = assert!(PEER_CALLS_IN_FLIGHT_MAX <= u32::MAX as usize);
const _: () = assert!(PEER_PING_INTERVAL_MS * 3 <= PEER_DOWN_AFTER_MS);
const _: () = assert!(PEER_DOWN_AFTER_MS < PEER_SERVE_IDLE_MS);
const _: () = assert!(PEER_BACKOFF_FIRST_MS > 0 && PEER_BACKOFF_FIRST_MS <= PEER_BACKOFF_MAX_MS);
const _: () = assert!(PEER_BUFFER_BYTES <= PEER_BUFFER_KEEP_BYTES);
// The dialler sends its proof right after the 101, within its own handshake deadline.
const _: () = assert!(PEER_HANDSHAKE_TIMEOUT_MS <= PEER_PROOF_TIMEOUT_MS);
const _: () = assert!(PEER_PROOF_TIMEOUT_MS <= PEER_SERVE_IDLE_MS);
// A dialler from a member's new address waits for the resolution within its deadline.
const _: () = assert!(PEER_ADDRESS_RESOLVE_WAIT_MS < PEER_HANDSHAKE_TIMEOUT_MS);
const _: () = assert!(PEER_MEMBER_ADDRESSES_MAX > 0);

// --- anti-entropy (src/replication/antientropy) ---

/// A node compares its replicas with each peer about this often (±20 %, so nodes drift apart),
/// and at once when a link to a peer comes up.
pub const ANTI_ENTROPY_INTERVAL_MS: u64 = 5_000;
/// The shortest interval `MOSTDB_ANTI_ENTROPY_INTERVAL_MS` may ask for (each pass scans the
/// store's digests).
pub const ANTI_ENTROPY_INTERVAL_MIN_MS: u64 = 1_000;
/// The longest interval between passes with one peer: a pass that sees nothing but writes in
/// flight (a steady write load) doubles the interval up to this, to spare the scans.
pub const ANTI_ENTROPY_INTERVAL_MAX_MS: u64 = 60_000;
/// How often the anti-entropy task looks whether a link came up or a pass is due.
pub const ANTI_ENTROPY_POLL_MS: u64 = 200;
/// A pass that failed (peer busy or gone mid-pass) is tried again after this long.
pub const ANTI_ENTROPY_RETRY_MS: u64 = 1_000;
/// A difference whose newer version is younger than this (by the physical part of its HLC)
/// is left for a later pass: it is most likely a write still in flight. A pass that left
/// some schedules the next one this much later.
pub const ANTI_ENTROPY_SETTLE_MS: u64 = 1_000;
/// Records one blocking scan job reads before it gives the thread back: the core's blocking
/// pool also runs the group commits' fsyncs, which wait at most one chunk.
pub const ANTI_ENTROPY_SCAN_CHUNK_RECORDS: usize = 4_096;
/// Between two chunks a scan pauses as long as the chunk took times this percentage (100: the
/// scan uses at most half of a blocking thread), so client traffic keeps priority.
pub const ANTI_ENTROPY_SCAN_PAUSE_PERCENT: u64 = 100;
/// The shortest pause between two chunks of a scan.
pub const ANTI_ENTROPY_SCAN_PAUSE_MIN_MS: u64 = 1;
/// Key-page scans a node runs at once (for peers and for itself); past this a peer's
/// request is answered "unavailable" and retried by its next pass.
pub const ANTI_ENTROPY_PAGE_SCANS_MAX: usize = 4;
/// A request for digests waits this long at most for a scan already running to finish.
pub const ANTI_ENTROPY_DIGESTS_WAIT_MS: u64 = 20_000;
/// How often a request waiting for a running digest scan looks whether it finished.
pub const ANTI_ENTROPY_DIGESTS_POLL_MS: u64 = 5;
/// Encoded entries of one key page stop after the entry that reaches this size.
pub const ANTI_ENTROPY_PAGE_BYTES_MAX: usize = 256 * 1024;
/// Records one key-page request reads at most; a page may come back short, with a cursor.
pub const ANTI_ENTROPY_PAGE_SCAN_RECORDS_MAX: usize = 64 * 1024;
/// Largest anti-entropy answer (a frame's bytes beyond its key and value allowance): the
/// digests of every bucket, or a key page with its cursor.
pub const ANTI_ENTROPY_REPLY_BYTES_MAX: usize = 512 * 1024;
/// Entries (per side) one round of a pass compares at once: differing buckets are grouped
/// into rounds by their record counts under this; a single larger bucket is one round.
pub const ANTI_ENTROPY_ROUND_ENTRIES_MAX: u64 = 100_000;
/// A round stops (the pass fails and is retried) when a side lists more than this many
/// entries: its counts changed a lot since the digests were taken.
pub const ANTI_ENTROPY_ROUND_ENTRIES_HARD_MAX: usize = 4 * ANTI_ENTROPY_ROUND_ENTRIES_MAX as usize;
/// Young differences (the peer newer) one pass looks at again once they settled; past this
/// the pass ends early and the next one, soon after, takes the rest.
pub const ANTI_ENTROPY_DEFERRED_PULLS_MAX: usize = 10_000;
/// Copies one pass has in flight at once.
pub const ANTI_ENTROPY_COPIES_IN_FLIGHT_MAX: usize = 64;
/// Consensus reads one pass runs at most for old CAS promises that refused its copies.
pub const ANTI_ENTROPY_SETTLES_PER_PASS_MAX: usize = 64;
/// Value bytes one pass copies before it stops; the next goes on.
pub const ANTI_ENTROPY_PASS_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// A pass stops starting copies after this long; the next pass goes on.
pub const ANTI_ENTROPY_PASS_TIME_MAX_MS: u64 = 60_000;
/// Deadline of one anti-entropy call to a peer (a digest scan of a big store takes a while).
pub const ANTI_ENTROPY_CALL_TIMEOUT_MS: u64 = 30_000;

const _: () = assert!(ANTI_ENTROPY_POLL_MS > 0 && ANTI_ENTROPY_POLL_MS < ANTI_ENTROPY_INTERVAL_MS);
const _: () = assert!(ANTI_ENTROPY_SETTLE_MS < ANTI_ENTROPY_INTERVAL_MS);
const _: () = assert!(ANTI_ENTROPY_INTERVAL_MS <= ANTI_ENTROPY_INTERVAL_MAX_MS);
const _: () = assert!(ANTI_ENTROPY_INTERVAL_MIN_MS <= ANTI_ENTROPY_INTERVAL_MS);
const _: () = assert!(ANTI_ENTROPY_POLL_MS < ANTI_ENTROPY_INTERVAL_MIN_MS);
const _: () = assert!(ANTI_ENTROPY_SETTLE_MS <= ANTI_ENTROPY_INTERVAL_MIN_MS);
const _: () = assert!(ANTI_ENTROPY_SCAN_CHUNK_RECORDS > 0);
const _: () = assert!(ANTI_ENTROPY_PAGE_SCAN_RECORDS_MAX >= ANTI_ENTROPY_SCAN_CHUNK_RECORDS);
const _: () = assert!(ANTI_ENTROPY_DIGESTS_POLL_MS > 0);
const _: () = assert!(ANTI_ENTROPY_DIGESTS_WAIT_MS < ANTI_ENTROPY_CALL_TIMEOUT_MS);
const _: () = assert!(ANTI_ENTROPY_COPIES_IN_FLIGHT_MAX < PEER_CALLS_IN_FLIGHT_MAX);
const _: () = assert!(ANTI_ENTROPY_PAGE_SCANS_MAX > 0);
// A key page is at most its byte allowance, one more entry (key, its length, a version) and
// a cursor (a shard number and a key): it must fit the reply allowance.
const _: () = assert!(
    ANTI_ENTROPY_PAGE_BYTES_MAX + 2 * (KEY_BYTES_MAX + 4 + 16) + 64 <= ANTI_ENTROPY_REPLY_BYTES_MAX
);

// --- the expiry sweeper (src/replication/expiry.rs) ---

/// The shortest pause between two expiry sweeps (a sweep is skipped while the store is
/// unchanged and no expiry came due).
pub const EXPIRY_SWEEP_INTERVAL_MS: u64 = 1_000;
/// Between two sweeps the sweeper waits this many times as long as the last one took (if
/// more than the interval): scanning a big store stays a small share of the time.
pub const EXPIRY_SWEEP_SPACING_FACTOR: u32 = 8;
/// Records one blocking scan job of a sweep reads.
pub const EXPIRY_SWEEP_CHUNK_RECORDS: usize = ANTI_ENTROPY_SCAN_CHUNK_RECORDS;
/// Quorum reads (each writes an expiry's tombstone into a majority) a sweep starts per second
/// at most.
pub const EXPIRY_SWEEP_READS_PER_SEC: u64 = 500;
/// A sweep whose reads fail this many times in a row (no majority) stops until the next one.
pub const EXPIRY_SWEEP_FAILURES_MAX: u32 = 16;

const _: () = assert!(EXPIRY_SWEEP_INTERVAL_MS > 0 && EXPIRY_SWEEP_SPACING_FACTOR > 0);
const _: () = assert!(EXPIRY_SWEEP_READS_PER_SEC > 0 && EXPIRY_SWEEP_FAILURES_MAX > 0);

// --- hinted handoff (src/replication/hints) ---

/// Hints one core keeps for one peer; past this, the oldest are dropped.
pub const HINT_QUEUE_HINTS_MAX: u64 = 250_000;
/// Bytes (keys, values and entry overhead) one core keeps for one peer; past this, the
/// oldest hints are dropped. A node keeps at most cores × peers × this.
pub const HINT_QUEUE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Hints a core buffers in memory before the turn's batch reaches its queue; past this,
/// new hints are dropped (the queue's disk is not keeping up).
pub const HINT_INTAKE_MAX: usize = 16_384;
/// Hint COPYs one core has in flight to one peer at once.
pub const HINT_REPLAY_IN_FLIGHT_MAX: usize = 128;
/// Hints one core replays to one peer per second at most, so that a returning peer
/// is not flooded while it also serves clients.
pub const HINT_REPLAY_PER_SECOND_MAX: u64 = 20_000;
/// How often a replay task looks whether its peer's link is up and hints wait.
pub const HINT_REPLAY_POLL_MS: u64 = 100;
/// Pause after a replay batch that was not fully acknowledged.
pub const HINT_REPLAY_RETRY_MS: u64 = 500;
/// A hint whose COPY got no answer this many times while its link was up is dropped
/// (anti-entropy repairs the key), so that it cannot hold up the rest of the queue.
pub const HINT_REPLAY_ATTEMPTS_MAX: u32 = 8;
/// Block cache of each core's hint log (read once, in order: little use).
pub const HINTS_CACHE_BYTES: u64 = 4 * 1024 * 1024;
/// Memtable size of a hint log.
pub const HINTS_MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
/// Journal size of each hint log (fjall's smallest allowed).
pub const HINTS_JOURNAL_BYTES_MAX: u64 = 64 * 1024 * 1024;

const _: () = assert!(HINT_QUEUE_HINTS_MAX > 0 && HINT_QUEUE_BYTES_MAX > 0);
// A hint stores its key's length and its peer's index in a u16 each.
const _: () = assert!(KEY_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(REPLICAS_MAX <= u16::MAX as usize);
const _: () = assert!(HINT_REPLAY_IN_FLIGHT_MAX > 0);
const _: () = assert!(HINT_REPLAY_IN_FLIGHT_MAX < PEER_CALLS_IN_FLIGHT_MAX);
const _: () = assert!(HINT_REPLAY_PER_SECOND_MAX > 0 && HINT_REPLAY_ATTEMPTS_MAX > 0);
const _: () = assert!(HINTS_JOURNAL_BYTES_MAX >= 64 * 1024 * 1024);

// --- recovery without a vote (src/replication/recovery.rs) ---

/// How often a recovering node asks its peers for their state and tries to copy.
pub const RECOVERY_POLL_MS: u64 = 500;
/// How long a recovering node waits for a heartbeat answer from each peer it takes its promise
/// floor from (DESIGN §10) before it tries again: a few heartbeats.
pub const RECOVERY_FLOOR_WAIT_MS: u64 = 4 * PEER_PING_INTERVAL_MS;
/// How often it looks for that answer.
pub const RECOVERY_FLOOR_POLL_MS: u64 = 20;
/// A node that cannot recover yet says why this often (at warn level).
pub const RECOVERY_LOG_EVERY_MS: u64 = 5_000;
/// Deadline of one status question to a peer.
pub const RECOVERY_STATUS_TIMEOUT_MS: u64 = 2_000;
/// Anti-entropy passes one full pull from one peer may take before it is retried later.
pub const RECOVERY_PULL_PASSES_MAX: usize = 64;
/// Added to the operation deadline a recovering node waits out, for clock granularity and
/// frames still in the sockets.
pub const RECOVERY_DEADLINE_MARGIN_MS: u64 = 500;

const _: () = assert!(RECOVERY_POLL_MS > 0 && RECOVERY_PULL_PASSES_MAX > 0);

// --- TLS (src/tls) ---

/// An accepted connection must finish its TLS handshake within this long (a client that
/// connects and sends nothing holds a connection slot only this long). A dialler's TLS
/// handshake is bounded by `PEER_HANDSHAKE_TIMEOUT_MS` instead, with the upgrade.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Ciphertext read from the socket at once: one full TLS record (16 KiB of data plus
/// header, padding and tag).
pub const TLS_RECORD_BUFFER_BYTES: usize = 17 * 1024;
/// Most ciphertext gathered from rustls for one socket write.
pub const TLS_WRITE_BATCH_BYTES: usize = 64 * 1024;

const _: () = assert!(TLS_RECORD_BUFFER_BYTES >= 16 * 1024 + 256);
const _: () = assert!(TLS_WRITE_BATCH_BYTES >= TLS_RECORD_BUFFER_BYTES);
const _: () = assert!(TLS_HANDSHAKE_TIMEOUT_MS < IDLE_TIMEOUT_MS);

// --- audit log (src/audit) ---

/// Bytes of encoded audit records queued for the writer thread at once; beyond it a record is
/// dropped (counted, and a gap record written), or, with `MOSTDB_AUDIT_STRICT`, waited for.
pub const AUDIT_QUEUE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Records queued at once (the channel's capacity), whatever their size.
pub const AUDIT_QUEUE_RECORDS_MAX: usize = 65_536;
/// With `MOSTDB_AUDIT_STRICT`, how often a write waiting for room in the queue looks again…
pub const AUDIT_STRICT_RETRY_MS: u64 = 1;
/// …and for how long at most; then its record is dropped (counted, logged) and the answer goes.
pub const AUDIT_STRICT_WAIT_MS_MAX: u64 = 5_000;
/// Rotated files kept beside the live one (`PATH.1` … `PATH.N`, the oldest removed).
pub const AUDIT_FILES_KEPT: u32 = 5;
/// How often an idle writer thread looks whether it must reopen its file (SIGHUP).
pub const AUDIT_IDLE_WAKE_MS: u64 = 500;
/// Default `MOSTDB_AUDIT_MAX_BYTES`: a file this large is rotated.
pub const AUDIT_FILE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

const _: () = assert!(AUDIT_STRICT_WAIT_MS_MAX > AUDIT_STRICT_RETRY_MS);
const _: () = assert!(AUDIT_FILES_KEPT >= 1);
