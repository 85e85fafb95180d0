/**
 * Every limit in one place (TigerBeetle style): sizes, queues, batches, connections, timeouts.
 * Units are the last word of each name.
 */
export const limits = {
  // Data
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  tableNameLengthMax: 64,
  scanLimitDefault: 100,
  scanLimitMax: 10_000,
  scanBytesMax: 8 * 1024 * 1024,

  // Append-only log
  logRecordBytesMax: 2 * 1024 * 1024,
  logSegmentBytesMax: 64 * 1024 * 1024,
  logPendingBytesMax: 64 * 1024 * 1024,
  logBatchRecordsMax: 4096,
  /**
   * Records per slice of the log's admitted appends: the unit in which group commit splits a burst
   * into two batches whose fsync and processing overlap (see Log.flushLoop). The local store
   * stages its appends in this size too.
   */
  logSliceRecords: 64,

  // Processes
  /**
   * V8's young-generation semi-space for the request manager processes the dev cluster starts
   * (--max-semi-space-size, MiB; see nodeFlags in cli/dev-supervisor.ts). Memory: up to 3x this.
   */
  requestSemiSpaceMb: 64,

  // Consensus
  heartbeatIntervalMs: 500,
  heartbeatsMissedMax: 3,
  electionTimeoutMs: 1500,
  appendEntriesBatchBytesMax: 1024 * 1024,
  appendEntriesInflightMax: 64,
  proposalQueueMax: 10_000,
  snapshotChunkBytes: 1024 * 1024,
  requestIdsPerClientMax: 1024,

  // Network
  frameBytesMax: 16 * 1024 * 1024,
  connectionsMax: 1024,
  sendQueueBytesMax: 64 * 1024 * 1024,
  reconnectBackoffMinMs: 50,
  reconnectBackoffMaxMs: 2000,

  // HTTP
  httpBodyBytesMax: 1024 * 1024 + 64 * 1024,
  httpInflightMax: 4096,
  httpHeadersTimeoutMs: 10_000,
  httpRequestTimeoutMs: 30_000,
  requestDeadlineMs: 10_000,

  // Request manager HTTP API (src/request)
  httpConnectionsMax: 4096,
  httpKeepAliveTimeoutMs: 5_000,
  httpHeadersCountMax: 64,
  httpSocketIdleTimeoutMs: 60_000,
  httpConnectionsCheckIntervalMs: 1_000,
  httpJsonBodyBytesMax: 64 * 1024,
  httpMetadataBodyBytesMax: 256 * 1024 * 1024,
  httpRetryAfterSeconds: 1,
  tokenRecordsMax: 10_000,
  requestClientIdLengthMax: 64,

  // TypeScript client (src/client)
  clientSocketsMax: 64,
  clientDeadlineMs: 10_000,
  clientRetryBackoffMinMs: 20,
  clientRetryBackoffMaxMs: 1_000,
  clientResponseBytesMax: 512 * 1024 * 1024,

  // Transport (src/transport)
  handshakeTimeoutMs: 5000,
  handshakeFrameBytesMax: 256,
  requestsInflightPerConnectionMax: 4096,
  transportPingIntervalMs: 1000,
  transportIdleTimeoutMs: 5000,
  frameCoalesceBytesMax: 4096,

  // Consensus core (src/consensus): lease margin, directed-mode fallback, fsync stall, entries
  leaseDriftMarginMs: 300,
  directedFallbackMs: 10_000,
  fsyncStallMaxMs: 5_000,
  consensusEntryBytesMax: 2 * 1024 * 1024,
  heartbeatRoundsTrackedMax: 1024,

  // Benchmarks (bench/)
  benchClientsMax: 1024,
  benchDurationSMax: 3600,
  /** Runs of each case per system in `npm run bench` (--rounds). */
  benchRoundsMax: 20,
  benchKeysMax: 10_000_000,
  benchEtcdStartTimeoutMs: 30_000,
  benchEtcdStopTimeoutMs: 10_000,
  benchRequestTimeoutMs: 30_000,

  // Metadata catalog (src/metadata) and control plane (src/control)
  catalogNodesMax: 10_000,
  catalogGroupsMax: 100_000,
  /** Tables that are active or dropping (dropped ones are kept as small tombstones). */
  catalogTablesMax: 100_000,
  catalogShardsMax: 1_000_000,
  catalogTokensMax: 10_000,
  groupVotersMax: 5,
  nodeKeyLengthMax: 128,
  nodeAddressLengthMax: 256,
  catalogSnapshotBytesMax: 256 * 1024 * 1024,
  controlGraceHeartbeats: 4,
  replaceAfterMs: 30_000,
  deepCheckTimeoutMs: 2_000,
  deepCheckIntervalMinMs: 5_000,
  learnerCatchUpEntriesMax: 64,

  // Index engines (src/engine) and state machine (src/statemachine)
  engineScanLimitMax: 100_000,
  engineBatchWritesMax: 100_000,
  engineMetaKeyBytesMax: 256,
  engineMetaValueBytesMax: 64 * 1024,
  engineClearBatchKeysMax: 10_000,
  engineSnapshotPageRecords: 1024,
  dedupClientsMax: 1024,

  // Group host (src/host)
  hostTickIntervalMs: 10,
  hostCheckpointEntries: 10_000,
  hostCompactionMarginEntries: 1_000,
  hostSnapshotBytesMax: 1024 * 1024 * 1024,
  hostAppendRetryMinMs: 50,
  hostAppendRetryMaxMs: 1_000,
  hostReadsPendingMax: 100_000,

  // Metadata manager node (src/metadata node, rpc, client) and its control loop
  /** MM nodes have the fixed ids 1..mmNodeIdMax; the catalog gives other nodes ids above it. */
  mmNodeIdMax: 15,
  mmCallDeadlineMs: 10_000,
  mmCallAttemptMs: 2_000,
  mmCatalogWaitMaxMs: 1_000,
  mmRetryBackoffMaxMs: 500,
  mmCatalogWaitersMax: 10_000,
  /** The catalog state machine writes its snapshot file after this many applied entries... */
  mmSnapshotEntries: 1_000,
  /** ...or this long after the last one, whichever comes first. */
  mmSnapshotIntervalMs: 10_000,
  mmControlTickMs: 100,
  mmCtlCallTimeoutMs: 2_000,
  mmCtlInflightMax: 256,
  mmGroupsTargetMax: 10_000,
  /** A refused campaign order (the voter still hears from the old leader) is retried this often. */
  mmCampaignRetryMs: 50,

  // Storage node (src/storage)
  /** kv.* requests in flight on one storage node (past it: TOO_MANY_REQUESTS). */
  storageInflightMax: 20_000,
  /** Replicas a storage node offers to host (its capacity at registration). */
  storageReplicasMax: 1_000,

  // Single-node store (src/storage/local-store.ts, applier)
  /** Applied writes held in memory before the engines have them; applies wait above this. */
  storeMemtableRecordsMax: 100_000,
  /** Writes per engine transaction when the memtable is flushed (lsm). */
  storeFlushBatchWritesMax: 16_384,
  /**
   * The same for btree: a whole flush in one transaction. LMDB reuses the pages a transaction
   * frees only two transactions later, so large transactions of random keys leave up to ~2
   * transactions' worth of free pages in the file (bounded by the tree's size: a transaction copies
   * each page it touches once; compact() removes them), but write 5-10x faster than transactions of
   * 256 (measured: 256 -> ~22k writes/s, 16,384 -> ~220k writes/s). Each commit writes about every
   * page it touched, so fewer, larger ones write less: 200k puts, 256 writers, flushes of 65,536
   * (4 rounds, in-process A/B): transactions of 16,384 -> 92-139k puts/s, 10-14.6 us CPU per put;
   * 32,768 -> 119-157k, 8.2-11.2 us; 65,536 -> 124-160k, 7.9-10.2 us. The price: handing a
   * transaction to lmdb-js's write thread holds the JS thread ~1 us per write (longest event-loop
   * delay 35-104 / 43-71 / 93-135 ms; the 99th percentile stayed 3-12 ms in all three).
   */
  storeFlushBatchWritesBtreeMax: 65_536,
  /**
   * btree batches of at least this many operations are written through lmdb-js's write thread
   * (asynchronous puts, one transaction per event turn) instead of on the JS thread.
   */
  lmdbOffThreadWritesMin: 64,
  /**
   * How long a failed lmdb-js commit's error waits for the write thread's cause (EIO, ENOSPC)
   * before it is reported without one.
   */
  lmdbCommitErrorWaitMs: 1_000,
  /**
   * An LMDB commit failing with EIO while the file system has less than this free counts as a
   * full disk (DISK_FULL): LMDB reports a short page write as EIO.
   */
  diskFullFreeBytesMax: 64 * 1024 * 1024,
  /**
   * The memtable is flushed to the engines once it holds this many records (or when forced).
   * Measured (bench:storage, btree, 256 writers): 4,096 -> ~100k durable puts/s, 32,768 -> ~125k:
   * fewer, larger LMDB transactions write each dirty page once for more keys, and their background
   * flushes slow the log's fdatasync less (0.65 vs 1.3 ms); 65,536 with the btree transactions
   * above: see storeFlushBatchWritesBtreeMax. Below storeMemtableRecordsMax, so that applies go on
   * (~35k of them) while a flush is written.
   */
  storeFlushRecordsMin: 65_536,
  /** Point reads coalesced into one engine call. */
  storeGetBatchMax: 10_000,
  /**
   * Log entries read per replay chunk (a put-only chunk is one engine transaction per instance).
   * LMDB writes 200k random keys at ~350k/s in transactions of 16,384, ~530k in 65,536, ~550-600k
   * in 100,000 (replay of 200k puts: recover ~617 -> ~584 ms). At most engineBatchWritesMax.
   */
  storeReplayChunkEntriesMax: 100_000,
  /**
   * Entries of the first replay chunk; each next one doubles, up to the most. Replay of 200k puts:
   * the first engine write started after ~90 ms with chunks of 100,000, ~6 ms with 8,192.
   */
  storeReplayChunkEntriesFirst: 8192,
  /** Bytes read per replay chunk (at least one entry). */
  storeReplayChunkBytesMax: 64 * 1024 * 1024,
  /**
   * Bytes of the log's scan buffers (4 MiB windows) kept at open for the replay that follows, so
   * it neither reads nor checks those entries again; the rest is read from the segments.
   */
  storeReplayKeptBytesMax: 128 * 1024 * 1024,
  /** Records read from an engine are copied into shared slabs of this size (one live slab). */
  engineReadSlabBytes: 64 * 1024,
  /** Larger records get an ArrayBuffer of their own. */
  engineReadSlabCopyBytesMax: 4 * 1024,

  // Request manager cluster backend (src/request/router.ts, catalog-cache.ts)
  /**
   * How long a request keeps looking for a group's leader (no leader, unreachable) before it is
   * answered 503 + Retry-After; a write whose outcome is unknown keeps trying until
   * requestDeadlineMs instead. Below the client's deadline, so the client sees the 503 and retries.
   */
  rmNoLeaderWaitMs: 3_000,
  /** Shards one scan page may visit (empty ones included) before it answers a `next` cursor. */
  rmScanShardsPerPageMax: 64,
  /** How long an unknown token is answered "unknown" from memory before the MM is asked again. */
  rmTokenMissCacheMs: 1_000,
  /** Request-id client strings whose u64 hash the RM keeps (cleared when full). */
  rmClientIdCacheMax: 4096,
  /** Readys of one group whose apply half may wait in the host's apply lane (pipeline depth). */
  hostApplyPipelineMax: 4,
  /** Bearer secrets whose sha256 the HTTP API keeps (cleared when full). */
  rmTokenHashCacheMax: 1024,
  /** The cluster part of the request manager's /metrics is fetched from the MM at most this often. */
  rmClusterMetricsCacheMs: 1_000,
  /** A scrape waits at most this long for the cluster state (then: tessera_cluster_scrape_success 0). */
  rmClusterMetricsTimeoutMs: 2_000,
  /**
   * Clients evicted from a group's dedup table whose floor (highest request number seen) is still
   * kept, so a late retry of theirs answers OUTCOME_UNKNOWN instead of running twice (LRU beyond).
   */
  dedupForgottenClientsMax: 65_536,
  /**
   * A (pre-)candidate re-asks the voters that have not granted it this often while its campaign
   * lasts (a voter whose leader stickiness ran out a few ms after the candidate's would otherwise
   * leave the campaign stuck until its timeout).
   */
  voteRetryMs: 50,
  /**
   * The request manager's retry back-off cap while it looks for a group's leader (5, 10, 20, 40,
   * 50 ms...): after a failover it finds the new leader within this of its election.
   */
  rmRetryBackoffMaxMs: 50,
  /** NOT_LEADER hints one request follows at once (no back-off) before it backs off anyway. */
  rmHintsFollowedMax: 3,
  /**
   * Replicated key-value state machine memtable (src/storage/kv-memtable.ts), per group: a
   * background flush to the engines starts once this many bytes or writes are held (measured in
   * the dev cluster, btree, 10k keys: 8,192 -> 4,096 took the p99 of puts at 16 / 64 / 256
   * clients from 18.6 / 28.6 / 63 ms to 15.5 / 23.4 / 56 ms at about the same throughput; the
   * flush's hand-over to LMDB holds the JS thread in proportion to its size, 32,768 gave 49 ms at
   * 16 clients, 2,048 cost ~8% of the throughput in LMDB transactions)...
   */
  kvMemtableFlushBytes: 2 * 1024 * 1024,
  kvMemtableFlushRecords: 4_096,
  /** ...and an apply waits for the flush (back-pressure) while this many bytes are held. */
  kvMemtableBytesMax: 32 * 1024 * 1024,
  /** Table-name path segments the request manager remembers as already checked (cleared when full). */
  rmTableNameCacheMax: 1024,
  /**
   * HTTP response bodies up to this size are written as a latin1 string in the head's socket write
   * (one write instead of a corked writev of head + body); larger ones are written as buffers.
   */
  httpInlineBodyBytesMax: 16 * 1024,
} as const;
