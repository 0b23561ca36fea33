/**
 * `milterkit check-config <file>`: checks a configuration file (schema, filters, their options)
 * without starting any filter, and prints the effective chain and what the milter front-end will
 * negotiate. Exit status 0 when the file is good, 1 when it is not, 64 for bad usage.
 */
import { Chain, chainNeeds } from '../../filter-api/chain.js';
import { ConfigError, type Configuration } from '../../filter-api/config.js';
import { milterOptionsFor } from '../../frontends/milter.js';
import { loadConfiguration } from '../chain-config.js';

const help = `usage: milterkit check-config <file.yaml|file.json>

Checks a configuration file and prints the effective chain. Exit status: 0 good, 1 bad, 64 usage.
`;

function describe(configuration: Configuration): string {
  const { chain } = configuration;
  const lines = [`${configuration.file}: ok`, `listen: ${configuration.listen.length > 0 ? configuration.listen.join(', ') : '(default, or --socket)'}`];
  lines.push(`chain: ${chain.filters.length} filters${chain.shadow ? ', shadow (nothing is applied)' : ''}${chain.trusting ? ', trusting (authenticated senders skip the chain)' : ''}`);
  const checked = Chain.check(chain);
  chain.filters.forEach((entry, index) => {
    const name = entry.name ?? entry.filter.name;
    const flags = [entry.for?.length ? `for ${entry.for.join(' ')}` : '', entry.trusting ? 'trusting' : '', entry.testing ? 'testing' : ''].filter(Boolean).join(', ');
    lines.push(`  ${index + 1}. ${name} (${configuration.sources[index]})${flags ? ` — ${flags}` : ''}`);
    if (entry.filter.description) lines.push(`     ${entry.filter.description}`);
    lines.push(`     hooks: ${['connect', 'sender', 'recipient', 'message'].filter((h) => typeof entry.filter[h as 'connect'] === 'function').join(', ')}; edits: ${(entry.filter.edits ?? []).join(', ') || 'none'}`);
    lines.push(`     timeout ${(entry.timeoutMs ?? 30_000) / 1000} s, onError ${entry.onError}, onTimeout ${entry.onTimeout}`);
    lines.push(`     options: ${JSON.stringify(checked[index]!.options)}`);
  });
  const options = milterOptionsFor(chainNeeds(chain.filters, chain.trusting ?? false));
  lines.push(`milter: actions ${options.actions?.join(', ')}; no reply for ${options.noReply?.join(', ') || 'nothing'}`);
  lines.push(`        macros ${Object.entries(options.macros ?? {}).map(([stage, names]) => `${stage}: ${names.join(' ')}`).join('; ')}`);
  return lines.join('\n') + '\n';
}

export async function run(argv: string[]): Promise<number> {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) {
    const asked = argv[0] === '--help' || argv[0] === '-h';
    (asked ? process.stdout : process.stderr).write(help);
    return asked ? 0 : 64;
  }
  try {
    const configuration = await loadConfiguration(argv[0]!);
    process.stdout.write(describe(configuration));
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
}
