#!/usr/bin/env node
/**
 * The `milterkit` command. Each sub-command lives in `./commands/<name>.js` and exports
 * `run(argv): Promise<number>` (the exit status); they are loaded on demand so that one
 * command's dependencies never slow another's start.
 */
import { ExitStatus } from './exit-status.js';

const commands: Record<string, string> = {
  serve: 'run a milter daemon with a filter module',
  test: 'run a filter module offline on a message file',
  send: 'drive a running milter over its socket with a message file',
  courier: 'run the Courier global filter daemon',
  'check-config': 'check a filter chain configuration file and print the effective chain',
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, text]) => `  ${name.padEnd(12)} ${text}`);
  return `usage: milterkit <command> [options]\n\n${lines.join('\n')}\n\nmilterkit <command> --help shows a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? ExitStatus.USAGE : ExitStatus.OK;
  }
  if (!(name in commands)) {
    process.stderr.write(`milterkit: unknown command "${name}"\n\n${usage()}`);
    return ExitStatus.USAGE;
  }
  const module = (await import(`./commands/${name}.js`)) as { run(argv: string[]): Promise<number> };
  return module.run(rest);
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.stderr.write(`milterkit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = ExitStatus.FAILURE;
  },
);
