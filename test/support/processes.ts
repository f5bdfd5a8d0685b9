/**
 * The processes a test started, found through /proc: everything whose command line names a marker
 * (a folder only that test uses), and all their descendants.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmd: string;
}

/** Every live process (zombies are gone already). */
export function liveProcesses(): ProcessInfo[] {
  const procs: ProcessInfo[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      procs.push({ pid: Number(entry), ppid: Number(fields[1]), cmd });
    } catch {
      // the process ended meanwhile
    }
  }
  return procs;
}

/** Live processes whose command line contains `marker`, and all their descendants. */
export function processesOf(marker: string): ProcessInfo[] {
  const procs = liveProcesses();
  const found = new Set(procs.filter((p) => p.cmd.includes(marker)).map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (found.has(p.ppid) && !found.has(p.pid)) { found.add(p.pid); grew = true; }
  }
  return procs.filter((p) => found.has(p.pid));
}

/** Sends SIGKILL to every process of `marker`. */
export function killProcessesOf(marker: string): void {
  for (const { pid } of processesOf(marker)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/** Running: one that has exited but waits to be reaped (a zombie, whose parent died) is not. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits up to `ms` for the processes to end; returns those still alive. */
export async function waitUntilGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && pids.some(isAlive)) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(isAlive);
}

/** Runs a command to its end and gives its exit code and everything it printed, stdout and stderr interleaved. */
export function runToEnd(command: string, args: string[], options: SpawnOptions = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => resolve({ code, out }));
  });
}
