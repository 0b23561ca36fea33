/**
 * Packets that arrive while a callback runs (the MTA pipelines headers it was told not to wait
 * for, and D packets always). Bounded by bytes: past the limit the transport is paused, and
 * resumed once half has drained.
 */
export class PacketQueue {
  /** code, payload, more — flat, read from `head`, so taking one is O(1). */
  private items: Array<number | Buffer | boolean> = [];
  private head = 0;
  private bytes = 0;
  private paused = false;

  /** @param transport paused past `maxBytes` and resumed once half has drained */
  constructor(
    private readonly maxBytes: number,
    private readonly transport: { pause?(): void; resume?(): void },
  ) {}

  get length(): number {
    return (this.items.length - this.head) / 3;
  }

  push(code: number, payload: Buffer, more: boolean): void {
    this.items.push(code, payload, more);
    this.bytes += payload.length + 5;
    if (!this.paused && this.bytes > this.maxBytes) {
      this.paused = true;
      this.transport.pause?.();
    }
  }

  /** Takes the oldest packet and hands it to `take`. */
  shift(take: (code: number, payload: Buffer, more: boolean) => void): void {
    const code = this.items[this.head] as number;
    const payload = this.items[this.head + 1] as Buffer;
    const more = this.items[this.head + 2] as boolean;
    this.items[this.head + 1] = false;
    this.head += 3;
    if (this.head === this.items.length) this.clear();
    else this.bytes -= payload.length + 5;
    if (this.paused && this.bytes <= this.maxBytes / 2) {
      this.paused = false;
      this.transport.resume?.();
    }
    take(code, payload, more);
  }

  clear(): void {
    this.items.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}
