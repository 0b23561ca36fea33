/**
 * The filter chain peers of the benchmark: a chain configuration (the format of
 * `milterkit serve --config`) run by the filter API's milter front-end, served the way the
 * protocol-core peer (milterkit.ts) is, so that the difference between the two is the chain's cost.
 *
 *   node dist/bench/milters/milterkit-chain.js CONFIG SOCKET
 *
 * The configurations are bench/milters/chains/*.yaml.
 */
import { loadConfiguration } from '../../src/cli/chain-config.js';
import { startChain } from '../../src/filter-api/config.js';
import { chainMilter } from '../../src/frontends/milter.js';
import { keepYoungGenerationSmall, MilterServer } from '../../src/index.js';

const [config, socket] = process.argv.slice(2);
if (!config || !socket) {
  console.error('usage: milterkit-chain.js CONFIG unix:/path|inet:PORT@127.0.0.1');
  process.exit(2);
}
// As milterkit serve and the protocol-core peer do, so that the difference is the chain's.
keepYoungGenerationSmall();
const chain = await startChain(await loadConfiguration(config));
const server = new MilterServer({ filter: chainMilter(chain), socket });
await server.listen();
const stop = (): void => {
  // Exit through process.exit so --cpu-prof writes its profile.
  server.close().then(
    () => chain.close().then(() => process.exit(0)),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
