/**
 * Observability against the REAL cluster: `tessera dev` (3 MM, 2 groups of 3 storage nodes, one
 * request manager as processes), a few writes, then GET /metrics must show the cluster-wide node and
 * group families with sensible values, and the dashboard in headless Chromium must show the real
 * MM leader, groups with their leaders and terms, nodes with their heartbeat age, and the table.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { type Exposition, find, parseExposition, value } from '../observability/prom.js';
import { isAlive, readClusterJson, startDev, stopDev, waitFor } from './dev-cluster.js';
import { chromiumPath, launchChromium } from '../support/chromium.js';

const devArgs = ['--port', '0', '--groups', '2', '--spares', '0'];

interface ClusterJson {
  metadata: { leader: number | null; members: number[] };
  nodes: { id: number; role: string; state: string; heartbeat_age_ms: number | null }[];
  groups: {
    id: number;
    members: number[];
    leader: number | null;
    term: number;
    replicas?: { node: number; role: string; applied: number; lag: number | null }[];
  }[];
}

describe('observability on a real dev cluster', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-obs-'));
  let proc: ChildProcess | undefined;
  let browser: BrowserContext | undefined;
  let userDataDir: string | undefined;
  const childPids = new Set<number>();

  afterAll(async () => {
    await browser?.close();
    if (proc !== undefined) await stopDev(proc, 5_000);
    for (const pid of childPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('serves cluster-wide /metrics and a dashboard showing the real groups, leaders and nodes', async () => {
    expect(existsSync(chromiumPath)).toBe(true);
    const dev = await startDev(dir, devArgs, 60_000);
    proc = dev.proc;
    for (const p of readClusterJson(dir)) if (p.pid !== null) childPids.add(p.pid);
    const token = readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
    const c = new TesseraClient({ url: dev.url, token, deadlineMs: 15_000 });
    const getCluster = async (): Promise<ClusterJson> => {
      const r = await fetch(`${dev.url}/v1/cluster`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      return (await r.json()) as ClusterJson;
    };
    const scrape = async (): Promise<Exposition> => {
      const r = await fetch(`${dev.url}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parseExposition(await r.text());
    };
    try {
      await c.createTable('obs', { engine: 'btree' });
      await c.createTable('obs2', { engine: 'lsm' });
      for (let i = 0; i < 20; i++) await c.put(i % 2 === 0 ? 'obs' : 'obs2', `k${i}`, `v${i}`);

      // Both groups led, every storage node reporting, followers caught up: then check it all.
      let cluster = await getCluster();
      let m = await scrape();
      const storage = (): number[] => cluster.nodes.filter((n) => n.role === 'storage').map((n) => n.id);
      await waitFor(
        'metrics of every storage node and a leader in every group',
        async () => {
          cluster = await getCluster();
          m = await scrape();
          const everyNode = storage().every((n) =>
            value(m, 'tessera_node_entries_applied_total', { node: String(n) }),
          );
          const led = cluster.groups.every(
            (g) =>
              g.leader !== null &&
              (value(m, 'tessera_group_leader', { group: String(g.id) }) ?? 0) === g.leader,
          );
          const lags = find(m, 'tessera_group_replication_lag_entries');
          // Heartbeats (500 ms) and the scrape cache (1 s) may still show the state before the 20
          // puts: wait until the applied counters include them (20 puts x 3 replicas at least).
          const applied = storage().reduce(
            (sum, n) => sum + (value(m, 'tessera_node_entries_applied_total', { node: String(n) }) ?? 0),
            0,
          );
          return (
            everyNode && led && applied >= 3 * 20 && lags.length === 6 && lags.every((s) => s.value === 0)
          );
        },
        20_000,
      );
      expect(storage().length).toBe(6);
      expect(value(m, 'tessera_cluster_scrape_success')).toBe(1);
      expect(value(m, 'tessera_metadata_leader')).toBe(cluster.metadata.leader);
      expect(m.types.get('tessera_node_fsync_seconds')).toBe('histogram');
      expect(m.types.get('tessera_node_entries_applied_total')).toBe('counter');
      // The request manager's own request metrics are still there.
      expect(value(m, 'tessera_http_requests_total', { op: 'item.put', code: 'OK' })).toBe(20);

      expect(cluster.groups.length).toBe(2);
      let electionsInGroups = 0;
      for (const g of cluster.groups) {
        const gl = { group: String(g.id) };
        // One leader per group: a member, the only replica reporting itself leader at the group's term.
        expect(g.members).toContain(g.leader);
        const leaders = (g.replicas ?? []).filter((r) => r.role === 'leader');
        expect(leaders.map((r) => r.node)).toEqual([g.leader]);
        expect(value(m, 'tessera_group_term', gl)).toBe(g.term);
        expect(g.term).toBeGreaterThanOrEqual(1);
        expect(value(m, 'tessera_group_members', gl)).toBe(3);
        for (const n of g.members) {
          const ml = { group: String(g.id), node: String(n) };
          expect(value(m, 'tessera_group_replication_lag_entries', ml)).toBe(0);
          expect(value(m, 'tessera_group_applied_index', ml)).toBeGreaterThan(0);
        }
        electionsInGroups += 1;
      }
      let applied = 0;
      let elections = 0;
      for (const n of storage()) {
        const nl = { node: String(n) };
        const age = value(m, 'tessera_node_heartbeat_age_seconds', { node: String(n), role: 'storage' });
        expect(age).toBeGreaterThanOrEqual(0);
        expect(age).toBeLessThan(5);
        expect(value(m, 'tessera_node_up', { node: String(n), role: 'storage' })).toBe(1);
        applied += value(m, 'tessera_node_entries_applied_total', nl) ?? 0;
        elections += value(m, 'tessera_node_elections_won_total', nl) ?? 0;
        // fsync histogram: cumulative buckets end at +Inf = count = log appends, > 0 after writes.
        const count = value(m, 'tessera_node_fsync_seconds_count', nl) ?? 0;
        expect(count).toBeGreaterThan(0);
        expect(value(m, 'tessera_node_fsync_seconds_bucket', { ...nl, le: '+Inf' })).toBe(count);
        expect(value(m, 'tessera_node_log_appends_total', nl)).toBe(count);
        const buckets = find(m, 'tessera_node_fsync_seconds_bucket', nl).map((s) => s.value);
        for (let i = 1; i < buckets.length; i++) expect(buckets[i]).toBeGreaterThanOrEqual(buckets[i - 1]!);
        expect(value(m, 'tessera_node_fsync_seconds_sum', nl)).toBeGreaterThan(0);
      }
      // 20 puts, 2 tables, their assignments and the leaders' no-ops, applied on 3 replicas each.
      expect(applied).toBeGreaterThanOrEqual(3 * 20);
      expect(elections).toBeGreaterThanOrEqual(electionsInGroups);
      expect(value(m, 'tessera_table_shards', { table: 'obs' })).toBe(1);

      // The dashboard, opened from the link `tessera dev` printed.
      userDataDir = mkdtempSync(path.join(tmpdir(), 'tessera-obs-chromium-'));
      browser = await launchChromium(userDataDir);
      const page = await browser.newPage();
      expect(dev.dashboard).toMatch(/\/dashboard#token=tess_/);
      await page.goto(dev.dashboard);
      await checkDashboard(page, cluster);
      // Ops/s while writes go on.
      let i = 0;
      const stop = Date.now() + 2_500;
      while (Date.now() < stop) await c.put('obs', `load${i++}`, 'x');
      await expect
        .poll(async () => Number(await text(page, '#ops-total')), { timeout: 5_000 })
        .toBeGreaterThan(0);
      expect(await text(page, '#ops-body')).toMatch(/item\.put\s+[\d.]+\s+[\d.]+ ms\s+[\d.]+ ms/);
    } finally {
      c.close();
    }
  }, 90_000);
});

// biome-ignore lint/performance/useDomNodeTextContent: the rendered text (cells separated) is what a user sees
const text = (page: Page, sel: string): Promise<string> => page.locator(sel).innerText();

async function checkDashboard(page: Page, cluster: ClusterJson): Promise<void> {
  await expect
    .poll(() => text(page, '#mm-leader'), { timeout: 15_000 })
    .toBe(String(cluster.metadata.leader));
  expect(await text(page, '#mm-members')).toBe(cluster.metadata.members.join(', '));
  // Groups: id, members with the leader starred, leader, term, replication lag per member.
  await expect.poll(() => text(page, '#groups-body'), { timeout: 5_000 }).toMatch(/max \d+/);
  const groups = await text(page, '#groups-body');
  for (const g of cluster.groups) {
    const members = g.members.map((n) => (n === g.leader ? `${n}\\*` : String(n))).join(', ');
    const lag = g.members.map((n) => `${n}:\\d+`).join(' ');
    expect(groups).toMatch(
      new RegExp(`${g.id}\\s+${members}\\s+${g.leader}\\s+${g.term}\\s+max \\d+ · ${lag}`),
    );
  }
  // Nodes: every storage node up, with a heartbeat age, entries applied and elections.
  const nodes = await text(page, '#nodes-body');
  for (const n of cluster.nodes.filter((x) => x.role === 'storage'))
    expect(nodes).toMatch(
      new RegExp(`${n.id}\\s+storage\\s+127\\.0\\.0\\.1:\\d+\\s+(\\d+\\s+)?up\\s+\\d+(\\.\\d)? m?s\\s+\\d+`),
    );
  for (const id of cluster.metadata.members) expect(nodes).toMatch(new RegExp(`${id}\\s+metadata\\s+`));
  const tables = await text(page, '#tables-body');
  expect(tables).toMatch(/obs\s+btree\s+"" \.\. ""\s+\d+\s+1/);
  expect(tables).toMatch(/obs2\s+lsm\s+"" \.\. ""\s+\d+\s+1/);
}
