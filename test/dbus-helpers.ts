/** D-Bus test peers: Debian's dbus-daemon (a private bus) and python3-dbus (libdbus) services. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, requirePeer } from './helpers.js';

export { startPrivateBus, type PrivateBus } from '../examples/fixtures/dbus-bus.js';

/** Debian's python3, where apt's python3-dbus and python3-gi live (not a pyenv/venv python3). */
export const systemPython = '/usr/bin/python3';

/** In CI a missing dbus-daemon or python3-dbus fails the test (never a skip). */
export function requireDBusPeers(): void {
  requirePeer('dbus-daemon');
  requirePeer(systemPython);
  const probe = spawnSync(systemPython, ['-c', 'import dbus, dbus.mainloop.glib; from gi.repository import GLib'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`this test needs python3-dbus and python3-gi for ${systemPython} (.ci/run installs them): ${probe.stderr}`);
}

export interface PythonPeer {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Run test/fixtures/dbus-peer.py with `args`; with `waitFor`, resolve once it printed that line. */
export async function runPythonPeer(args: string[], waitFor?: string): Promise<PythonPeer> {
  const child = spawn(systemPython, [join(repoRoot, 'test/fixtures/dbus-peer.py'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  if (waitFor !== undefined) {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (stdout.split('\n').includes(waitFor)) resolve();
      };
      child.stdout!.on('data', check);
      void exited.then((r) => reject(new Error(`dbus-peer.py ${args[0]} exited (${r.code}) before '${waitFor}': ${r.stderr}`)));
    });
  }
  return { child, exited };
}
