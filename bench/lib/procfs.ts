/**
 * What the benchmark reads about a milter from /proc: CPU time and memory of its whole process
 * tree (a milter may fork workers), so every peer is measured the same way.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Kernel clock ticks per second, the unit of utime/stime in /proc/PID/stat. */
export const CLOCK_TICKS: number = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  cpuTicks: number;
  /** stime + cstime: the part spent in the kernel, in clock ticks. */
  systemTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // the process ended between listing and reading
  }
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17.
  const ppid = Number(fields[1]);
  const systemTicks = Number(fields[12]) + Number(fields[14]);
  const cpuTicks = Number(fields[11]) + Number(fields[13]) + systemTicks;
  return { pid, ppid, cpuTicks, systemTicks };
}

/** The pid and every live descendant of it. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(stat.pid);
    children.set(stat.ppid, siblings);
  }
  const tree: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds (user + system) used so far by the tree. Children that already exited and were
 * reaped count through their parent's cutime/cstime, so nothing is counted twice.
 */
export function treeCpuSeconds(rootPid: number): number {
  return treeCpuTimes(rootPid).seconds;
}

/** CPU time used so far by the tree, all of it and the part spent in the kernel, in seconds. */
export interface CpuTimes {
  seconds: number;
  systemSeconds: number;
}

/** {@link treeCpuSeconds}, with the kernel's part beside it. */
export function treeCpuTimes(rootPid: number): CpuTimes {
  let ticks = 0;
  let systemTicks = 0;
  for (const pid of processTree(rootPid)) {
    const stat = readStat(pid);
    ticks += stat?.cpuTicks ?? 0;
    systemTicks += stat?.systemTicks ?? 0;
  }
  return { seconds: ticks / CLOCK_TICKS, systemSeconds: systemTicks / CLOCK_TICKS };
}

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Sum of the peak resident set sizes (VmHWM) of the tree, in KiB. */
export function treePeakRssKiB(rootPid: number): number {
  return processTree(rootPid).reduce((sum, pid) => sum + statusKiB(pid, 'VmHWM'), 0);
}

/** Sum of the current resident set sizes (VmRSS) of the tree, in KiB. */
export function treeRssKiB(rootPid: number): number {
  return processTree(rootPid).reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0);
}

/** Resets VmHWM to the current RSS for the tree, so the next peak belongs to the next cell. */
export function resetPeakRss(rootPid: number): void {
  for (const pid of processTree(rootPid)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      // Not allowed (not our process) or gone: the peak then covers the process lifetime.
    }
  }
}
