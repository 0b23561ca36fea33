"""The pymilter reference peer of the benchmark (Debian's python3-milter).

    /usr/bin/python3 pymilter-peer.py noop|work SOCKET

SOCKET is in libmilter's syntax: unix:/path or inet:PORT@127.0.0.1.
Both jobs implement every callback, so the MTA sends every step to each peer alike.
  noop: every callback continues.
  work: at end of message, add "X-Bench: <body bytes>", or reject the message when its
        Subject contains REJECTME.
"""
import sys

import Milter


class BenchMilter(Milter.Base):
    work_job = False

    def __init__(self):
        self.body_bytes = 0
        self.reject = False

    def connect(self, hostname, family, hostaddr):
        return Milter.CONTINUE

    def hello(self, hostname):
        return Milter.CONTINUE

    def envfrom(self, sender, *args):
        self.body_bytes = 0
        self.reject = False
        return Milter.CONTINUE

    def envrcpt(self, recipient, *args):
        return Milter.CONTINUE

    def data(self):
        return Milter.CONTINUE

    def header(self, name, value):
        if self.work_job and name.lower() == 'subject' and 'REJECTME' in value:
            self.reject = True
        return Milter.CONTINUE

    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        if self.work_job:
            self.body_bytes += len(chunk)
        return Milter.CONTINUE

    def eom(self):
        if not self.work_job:
            return Milter.CONTINUE
        if self.reject:
            return Milter.REJECT
        self.addheader('X-Bench', str(self.body_bytes))
        return Milter.CONTINUE

    def abort(self):
        self.body_bytes = 0
        self.reject = False
        return Milter.CONTINUE

    def close(self):
        return Milter.CONTINUE

    def unknown(self, command):
        return Milter.CONTINUE


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ('noop', 'work'):
        sys.exit('usage: pymilter-peer.py noop|work unix:/path|inet:PORT@127.0.0.1')
    BenchMilter.work_job = sys.argv[1] == 'work'
    Milter.factory = BenchMilter
    Milter.set_flags(Milter.ADDHDRS if BenchMilter.work_job else 0)
    Milter.setbacklog(1024)
    Milter.runmilter('bench-pymilter', sys.argv[2], timeout=600)


if __name__ == '__main__':
    main()
