/**
 * A private syslog socket. Sendmail logs only through syslog(3); the suite runs it in its own mount
 * namespace where /dev/log is this socket. glibc first tries a datagram connection, gets EPROTOTYPE
 * from a stream socket and retries with a stream, where each record ends with a NUL byte.
 */
import { appendFileSync, chmodSync, rmSync } from 'node:fs';
import net from 'node:net';

const MAX_KEPT_LINES = 100_000;
const MAX_PENDING_BYTES = 64 * 1024;

export class SyslogListener {
  private readonly server: net.Server;
  private readonly records: string[] = [];

  /** @param path socket path; @param logFile every record is appended there as one line */
  constructor(
    readonly path: string,
    private readonly logFile: string,
  ) {
    this.server = net.createServer((socket) => this.receive(socket));
  }

  async listen(): Promise<void> {
    rmSync(this.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => resolve());
    });
    // Sendmail's delivery processes run as other users and log too.
    chmodSync(this.path, 0o666);
  }

  /** Every record so far (the last 100 000), oldest first. */
  lines(): string[] {
    return [...this.records];
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private receive(socket: net.Socket): void {
    let pending = '';
    socket.on('data', (data) => {
      pending += data.toString('utf8');
      let end: number;
      while ((end = pending.search(/[\0\n]/)) >= 0) {
        this.record(pending.slice(0, end));
        pending = pending.slice(end + 1);
      }
      if (pending.length > MAX_PENDING_BYTES) {
        this.record(pending);
        pending = '';
      }
    });
    socket.on('end', () => {
      if (pending !== '') this.record(pending);
    });
    socket.on('error', () => socket.destroy());
    // Daemons keep the connection open for their whole life; do not let it hold the test run open.
    socket.unref();
  }

  private record(line: string): void {
    if (line === '') return;
    this.records.push(line);
    if (this.records.length > MAX_KEPT_LINES) this.records.splice(0, this.records.length - MAX_KEPT_LINES);
    appendFileSync(this.logFile, `${line}\n`);
  }
}
