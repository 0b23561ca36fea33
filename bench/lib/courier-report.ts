/**
 * The Courier section of the report: requests/s, latency and CPU per request of the milterkit
 * Courier daemon and of Courier::Filter, the ratio against the target, and the replies each
 * gave to every kind of request.
 */
import { median } from './measure.js';
import { COURIER_PEERS, REQUEST_KINDS, type CourierMeasurement, type CourierPeer, type CourierReport } from './courier.js';

const TITLES: Record<CourierPeer, string> = { milterkit: 'milterkit', 'courier-filter': 'Courier::Filter' };
/** The project's target: at least this many times Courier::Filter's requests/s with the same checks. */
const TARGET_RATIO = 3;
const MIX_TITLES: Record<string, string> = {
  plain: 'plain 2 KiB',
  multipart: 'multipart, 2 attachments',
  recipients: '10 recipients',
  mixed: 'all 8 kinds in turn',
};

function cpu(m: CourierMeasurement): string {
  const runs = m.cpuUsPerRequestRuns;
  return runs.length > 1 ? `${median(runs).toFixed(0)} (${Math.min(...runs).toFixed(0)}–${Math.max(...runs).toFixed(0)})` : m.cpuUsPerRequest.toFixed(0);
}

function bad(m: CourierMeasurement): boolean {
  return m.checkFailures > 0 || m.errors > 0;
}

function rate(m: CourierMeasurement | undefined): string {
  if (!m) return '–';
  const text = Math.round(m.requestsPerSec).toLocaleString('en-US');
  return bad(m) ? `${text} ⚠` : text;
}

function oneLine(reply: string | undefined): string {
  return reply === undefined || reply === '' ? '–' : `\`${reply.trim().replace(/\n/g, ' / ').replace(/\|/g, '\\|')}\``;
}

/** The section's markdown lines. */
export function courierSection(courier: CourierReport | undefined, skipped: string | undefined): string[] {
  if (skipped) return ['### Courier: milterkit against Courier::Filter', '', `Not measured: ${skipped}`, ''];
  if (!courier) return [];
  const find = (peer: CourierPeer, mix: string, conns: number) => courier.measurements.find((m) => m.peer === peer && m.cell.mix === mix && m.cell.conns === conns);
  const cells = courier.measurements.filter((m) => m.peer === courier.measurements[0]?.peer).map((m) => m.cell);
  const lines = [
    '### Courier: milterkit against Courier::Filter',
    '',
    courier.setup,
    '',
    `Columns with two values read ${COURIER_PEERS.map((p) => TITLES[p]).join(' / ')}. req/s: requests answered per second; p50/p99/max: from connect to the filter's close; ` +
      'CPU µs/req: user + system time of the filter process per request (the median of the runs, their range); driver: the load driver\'s CPU in % of one core. ⚠ marks wrong verdicts.',
    '',
    '| requests | conns | milterkit req/s | Courier::Filter req/s | milterkit ÷ Courier::Filter | p50 ms | p99 ms | max ms | CPU µs/req | CPU ratio | peak RSS MiB | driver CPU |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const checks: string[] = [];
  for (const { mix, conns } of cells) {
    const mk = find('milterkit', mix, conns);
    const cf = find('courier-filter', mix, conns);
    const pair = (f: (m: CourierMeasurement) => string): string => [mk, cf].map((m) => (m ? f(m) : '–')).join(' / ');
    const ratio = mk && cf && cf.requestsPerSec > 0 ? mk.requestsPerSec / cf.requestsPerSec : undefined;
    const cpuRatio = mk && cf ? median(mk.cpuUsPerRequestRuns) / median(cf.cpuUsPerRequestRuns) : undefined;
    lines.push(
      `| ${MIX_TITLES[mix] ?? mix} | ${conns} | ${rate(mk)} | ${rate(cf)} | ${ratio === undefined ? '–' : `${ratio.toFixed(2)}×`} | ` +
        `${pair((m) => m.p50Ms.toFixed(2))} | ${pair((m) => m.p99Ms.toFixed(2))} | ${pair((m) => m.maxMs.toFixed(0))} | ${pair(cpu)} | ` +
        `${cpuRatio === undefined ? '–' : `${cpuRatio.toFixed(2)}×`} | ${pair((m) => m.peakRssMiB.toFixed(1))} | ${pair((m) => `${Math.round(m.driverCores * 100)}%`)} |`,
    );
    if (ratio !== undefined) {
      checks.push(`| ≥ ${TARGET_RATIO}× Courier::Filter req/s, ${MIX_TITLES[mix] ?? mix}, ${conns} conn${conns === 1 ? '' : 's'} | ${ratio.toFixed(2)}× | ${ratio >= TARGET_RATIO ? 'met' : '**not met**'} |`);
    }
  }
  lines.push('');
  if (checks.length > 0) lines.push('| target | measured | |', '|---|---|---|', ...checks, '');
  const verdicts = COURIER_PEERS.map((peer) => courier.verdicts.find((v) => v.peer === peer));
  if (verdicts.some((v) => v !== undefined)) {
    lines.push(
      '**Verdicts**: one request of each kind to each filter, before the load (the load driver checks every reply, then and under load: ' +
        'its first digit, and the rule a rejection names):',
      '',
      '| request | must get | milterkit | Courier::Filter |',
      '|---|---|---|---|',
      ...REQUEST_KINDS.map(
        (kind) =>
          `| ${kind.name} | ${kind.expect === '2' ? 'accept (2xx)' : `reject (5xx) naming "${kind.keyword}"`} | ${verdicts.map((v) => oneLine(v?.replies[kind.name])).join(' | ')} |`,
      ),
      '',
    );
  }
  for (const v of courier.verdicts.filter((x) => x.wrong > 0)) lines.push(`- ⚠ ${TITLES[v.peer]} gave ${v.wrong} wrong verdicts: ${v.problems}`);
  for (const m of courier.measurements.filter(bad)) {
    lines.push(`- ⚠ ${TITLES[m.peer]}, ${m.cell.mix}, ${m.cell.conns} conns: ${m.checkFailures} wrong replies, ${m.errors} errors. ${m.problems}`);
  }
  for (const skip of courier.skipped) lines.push(`- not measured: ${skip}`);
  lines.push('');
  return lines;
}
